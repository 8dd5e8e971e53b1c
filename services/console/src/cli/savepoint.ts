#!/usr/bin/env node
import { Command, CommanderError, Option } from "commander";
import { z } from "zod";

/**
 * `npx savepoint …`: the console's JSON API from a terminal. It talks to a running console rather than to
 * Redis and Postgres itself, so the CLI's actions are the console's (the same checks, refusals, gate
 * CONSOLE_ACTIONS_ENABLED and log line) and it needs no database access.
 */

/** 0 done, 1 the console could not be asked (unreachable, failed), 2 bad command line, 3 refused, 4 not found. */
const EXIT = { failed: 1, usage: 2, refused: 3, notFound: 4 } as const;

class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

const settingsSchema = z.object({
  SAVEPOINT_CONSOLE_URL: z
    .string()
    .default("http://127.0.0.1:8084")
    .refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol), "SAVEPOINT_CONSOLE_URL: must be an http(s) URL such as http://127.0.0.1:8084"),
  CONSOLE_USER: z.string().default("admin"),
  CONSOLE_PASSWORD: z.string({ error: "CONSOLE_PASSWORD: is required: set it to the console's password" }).min(1, "CONSOLE_PASSWORD: is required: set it to the console's password"),
});
type Settings = z.infer<typeof settingsSchema>;

function settings(): Settings {
  const env = Object.fromEntries(Object.entries(process.env).filter(([, value]) => value !== ""));
  const parsed = settingsSchema.safeParse(env);
  if (!parsed.success) throw new CliError(EXIT.usage, parsed.error.issues.map((issue) => issue.message).join("; "));
  return parsed.data;
}

interface ApiFailure {
  error: { code: string; message: string };
}

// The answers are printed field by field as the console's README documents them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Answer = Record<string, any>;

async function call(method: "GET" | "POST", path: string, body?: object): Promise<Answer> {
  const { SAVEPOINT_CONSOLE_URL: base, CONSOLE_USER: user, CONSOLE_PASSWORD: password } = settings();
  let response: Response;
  try {
    response = await fetch(new URL(path, base), {
      method,
      headers: {
        authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`,
        accept: "application/json",
        ...(body ? { "content-type": "application/json" } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  } catch (error) {
    const { cause } = error as { cause?: { code?: string; message?: string } };
    const why = cause?.code ?? cause?.message ?? (error as Error).message;
    throw new CliError(EXIT.failed, `cannot reach the console at ${base} (${why}); start it, or set SAVEPOINT_CONSOLE_URL`);
  }
  if (response.status === 401) throw new CliError(EXIT.refused, `the console at ${base} refused CONSOLE_USER ${user} and CONSOLE_PASSWORD; check them`);
  const answer = (await response.json().catch(() => null)) as Answer | ApiFailure | null;
  if (!answer) throw new CliError(EXIT.failed, `the console at ${base} answered ${response.status} without JSON; is SAVEPOINT_CONSOLE_URL a Savepoint console?`);
  if (!response.ok) {
    const { code, message } = (answer as ApiFailure).error ?? { code: "failed", message: `HTTP ${response.status}` };
    const exitCode = response.status === 404 ? EXIT.notFound : response.status >= 500 && code !== "unavailable" ? EXIT.failed : EXIT.refused;
    throw new CliError(exitCode, `${code}: ${message}`);
  }
  return answer;
}

const print = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const json = (value: unknown) => print(JSON.stringify(value, null, 2));

function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) print(row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd());
}

const time = (iso: string | null) => (iso ? `${iso.slice(0, 19).replace("T", " ")}Z` : "—");
const usd = (value: number | null | undefined) => (value === null || value === undefined ? "—" : `$${value.toFixed(2)}`);

async function sessions(options: { service?: string; status?: string; owner?: string; limit: string; after?: string; json?: boolean }): Promise<void> {
  const query = new URLSearchParams();
  for (const name of ["service", "status", "owner", "limit", "after"] as const) if (options[name]) query.set(name, options[name]);
  const answer = await call("GET", `/api/sessions?${query}`);
  if (options.json) return json(answer);
  if (answer.sessions.length === 0) return print("no sessions match");
  table([
    ["SERVICE", "SESSION", "OWNER", "STATUS", "EPOCH.SEQ", "UPDATED", "CHECKPOINTS", "RESUMES"],
    ...answer.sessions.map((session: Answer) => [
      session.service, session.sessionId, session.ownerId ?? "—", session.status, `${session.latest.epoch}.${session.latest.seq}`, time(session.updatedAt),
      String(session.checkpoints), String(session.resumes),
    ]),
  ]);
  if (answer.next) print(`more: savepoint sessions --after ${answer.next}${options.service ? ` --service ${options.service}` : ""}${options.status ? ` --status ${options.status}` : ""}${options.owner ? ` --owner ${options.owner}` : ""}`);
}

async function show(service: string, sessionId: string, options: { json?: boolean }): Promise<void> {
  const id = encodeURIComponent(sessionId);
  const view = service === "trader" ? await call("GET", `/api/trading/${id}`) : service === "reasoner" ? await call("GET", `/api/reasoning/${id}`) : await call("GET", `/api/sessions/${encodeURIComponent(service)}/${id}`);
  if (options.json) return json(view);
  const { session } = view;
  print(`${session.service} ${session.sessionId}: ${session.status}, owner ${session.ownerId ?? "—"}, latest ${session.latest.epoch}.${session.latest.seq}, ${session.checkpoints} checkpoints, ${session.resumes} resume(s), updated ${time(session.updatedAt)}`);
  if (service === "trader") {
    const values = view.equity.map((point: Answer) => point.portfolioValue).filter((value: number | null) => value !== null);
    print(`equity: ${usd(values[0])} → ${usd(values.at(-1))} over ${view.equity.length} snapshots; realized P&L ${usd(view.realizedPl)}, ${view.closedTrades} closed trade(s)`);
    for (const position of view.positions) print(`  position ${position.symbol} ${position.side} ${position.qty} @ ${usd(position.entryPrice)} (${position.origin})`);
    for (const resume of view.resumes) print(`  resume ${resume.fromEpoch} → ${resume.toEpoch} after ${Math.round(resume.downtimeMs / 1000)} s: ${resume.positionsOpened.length} adopted, ${resume.positionsClosed.length} gone, ${resume.closedTradesAdded} trade(s) booked`);
  } else if (service === "reasoner") {
    if (view.forkOf) print(`forked from ${view.forkOf.sessionId} at iteration ${view.forkOf.iteration}`);
    if (view.deadLettered) print(`dead-lettered: savepoint redrive ${session.sessionId}`);
    for (const step of view.iterations) {
      const what = step.decision ? `${step.decision.action} (${step.decision.confidence}): ${step.decision.rationale}` : step.question ? step.question.question : step.text ?? step.toolCalls.map((tool: Answer) => tool.name).join(", ");
      print(`  ${String(step.iteration).padStart(3)} ${step.type.padEnd(10)} epoch ${step.epoch} ${step.worker}  ${what}`);
    }
    for (const resume of view.resumes) print(`  resume ${resume.fromEpoch} → ${resume.toEpoch} on ${resume.worker ?? "?"} at iteration ${resume.resumedAtIteration ?? "—"}: ${resume.modelCallsSaved} model call(s) saved`);
  } else {
    for (const entry of view.timeline) print(`  ${entry.epoch}.${entry.seq} ${entry.kind} ${entry.status} ${time(entry.takenAt)}`);
  }
}

async function fork(sessionId: string, iteration: string, options: { json?: boolean }): Promise<void> {
  if (!/^\d+$/.test(iteration)) throw new CliError(EXIT.usage, `iteration: must be a whole number (got ${JSON.stringify(iteration)}); run savepoint fork --help`);
  const answer = await call("POST", "/api/actions/fork", { sessionId, iteration: Number(iteration) });
  if (options.json) return json(answer);
  print(`forked ${sessionId} at iteration ${answer.forkOf.iteration}: new run ${answer.sessionId} (savepoint show reasoner ${answer.sessionId})`);
}

async function redrive(sessionId: string, options: { json?: boolean }): Promise<void> {
  const answer = await call("POST", "/api/actions/redrive", { sessionId });
  if (options.json) return json(answer);
  print(`re-driven ${sessionId}: back in the reasoning queue; attempt ${answer.nextAttempt} resumes it from its last checkpoint`);
}

async function stop(sessionId: string, options: { reason?: string; json?: boolean }): Promise<void> {
  const answer = await call("POST", "/api/actions/stop", { sessionId, ...(options.reason ? { reason: options.reason } : {}) });
  if (options.json) return json(answer);
  print(`stopped ${sessionId} (epoch ${answer.epoch}): final checkpoint ${answer.status}${answer.confirmed ? "" : ", not confirmed"}`);
}

function program(): Command {
  const jsonOption = () => new Option("--json", "print the console's JSON answer");
  const root = new Command("savepoint")
    .description("Savepoint sessions from a terminal, through the console's API (SAVEPOINT_CONSOLE_URL, CONSOLE_USER, CONSOLE_PASSWORD)")
    .helpOption("-h, --help")
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeOut: (text) => process.stdout.write(text), writeErr: () => undefined });
  root
    .command("sessions")
    .description("list sessions, most recently written first")
    .option("--service <name>", "only this service's (trader, reasoner, …)")
    .option("--status <status>", "only active, interrupted, completed or stopped ones")
    .option("--owner <id>", "only this owner's (account or agent id)")
    .option("--limit <n>", "at most this many (1-500)", "50")
    .option("--after <cursor>", "the page after this cursor (printed under the previous page)")
    .addOption(jsonOption())
    .action(sessions);
  root.command("show").description("one session: its facts, and a trader's equity and resumes or a run's iterations").argument("<service>").argument("<session-id>").addOption(jsonOption()).action(show);
  root
    .command("fork")
    .description("start a new reasoning run from the first <iteration> steps of a run (the run itself is untouched)")
    .argument("<session-id>")
    .argument("<iteration>")
    .addOption(jsonOption())
    .action(fork);
  root.command("redrive").description("send a dead-lettered reasoning run back to work from its last checkpoint").argument("<session-id>").addOption(jsonOption()).action(redrive);
  root
    .command("stop")
    .description("stop a running trading session gracefully (final checkpoint, status stopped)")
    .argument("<session-id>")
    .option("--reason <text>", "why, for the trader's log")
    .addOption(jsonOption())
    .action(stop);
  for (const command of root.commands) command.exitOverride().configureOutput({ writeOut: (text) => process.stdout.write(text), writeErr: () => undefined });
  return root;
}

const cli = program();
const args = process.argv.slice(2);
if (args.length === 0) {
  process.stderr.write(cli.helpInformation());
  process.exit(EXIT.usage);
}
try {
  await cli.parseAsync(args, { from: "user" });
} catch (error) {
  if (error instanceof CommanderError) {
    if (error.code === "commander.helpDisplayed") process.exit(0);
    console.error(`savepoint: ${error.message.replace(/^error: /, "")}; run savepoint --help`);
    process.exit(EXIT.usage);
  }
  if (error instanceof CliError) {
    console.error(`savepoint: ${error.message}`);
    process.exit(error.exitCode);
  }
  console.error(`savepoint: ${(error as Error).message}`);
  process.exit(EXIT.failed);
}
