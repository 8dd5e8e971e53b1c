import { sessionIdSchema, tradingSymbolSchema } from "@savepoint/shared";
import { Command, CommanderError, Option } from "commander";
import { z } from "zod";
import type { StrategyParams } from "../session/state.js";

/** A bad command line: the message names the flag, what was wrong, and what to do. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Help or version was asked for: print `output` and exit 0. */
export class HelpRequested extends Error {
  override name = "HelpRequested";
  constructor(readonly output: string) {
    super("help requested");
  }
}

/**
 * Which session to trade: a new one, the account's latest active or interrupted one, a named one, or the
 * latest one when there is one and a new one (with these symbols and parameters) otherwise.
 */
export type SessionChoice =
  | { kind: "new"; symbols: string[]; strategy: StrategyParams }
  | { kind: "resume" }
  | { kind: "resume-session"; sessionId: string }
  | { kind: "resume-or-new"; symbols: string[]; strategy: StrategyParams };

export interface TraderOptions {
  session: SessionChoice;
  /**
   * Session-shaping flags given together with --resume, --resume-session, --resume-or-new or --reconcile-only: a resumed
   * session keeps what it started with, so these must match it (the same command line plus --resume works).
   */
  sessionFlags: SessionFlags;
  /** Only compare the session with the broker and print the report; change nothing. */
  reconcileOnly: boolean;
  /** Take the broker account from the session that holds it (--take-over), instead of refusing to start. */
  takeOver: boolean;
  intervalMs: number;
  checkpointIntervalMs: number;
  /** Null: trade until stopped. */
  durationMs: number | null;
}

export interface SessionFlags {
  symbols?: string[];
  strategy?: Partial<StrategyParams>;
}

const DEFAULTS = {
  symbols: "AAPL,MSFT,GOOGL",
  interval: "60",
  checkpointInterval: "30",
  strategy: "rule",
  stopLossPct: "2",
  takeProfitPct: "4",
  positionSize: "10000",
  lookback: "15",
  entryThresholdPct: "0.2",
};

/** Flags (commander's names) that shape a session's strategy, and the parameter each sets. */
const STRATEGY_FLAGS = {
  strategy: "kind",
  stopLossPct: "stopLossPct",
  takeProfitPct: "takeProfitPct",
  positionSize: "positionSize",
  lookback: "lookbackBars",
  entryThresholdPct: "entryThresholdPct",
} as const satisfies Record<string, keyof StrategyParams>;
/** The command-line flag that sets each strategy parameter. */
export const STRATEGY_FLAG_NAMES: Record<keyof StrategyParams, string> = {
  kind: "--strategy",
  stopLossPct: "--stop-loss-pct",
  takeProfitPct: "--take-profit-pct",
  positionSize: "--position-size",
  lookbackBars: "--lookback",
  entryThresholdPct: "--entry-threshold-pct",
};
/** Sets the default of --interval, so a service definition can tune the tick without changing the command. */
export const INTERVAL_VARIABLE = "TRADER_INTERVAL_SECONDS";
const RUN_FLAGS = { duration: "--duration", interval: "--interval", checkpointInterval: "--checkpoint-interval" } as const;

function program(defaultInterval: string): Command {
  return new Command("trader")
    .description("Paper-trades on Alpaca (or the bundled simulator) with crash-safe session checkpoints")
    .addOption(new Option("--symbols <list>", "comma-separated tickers to trade, e.g. AAPL,MSFT").default(DEFAULTS.symbols))
    .addOption(new Option("--duration <minutes>", "stop after this many minutes (default: until stopped)"))
    .addOption(new Option("--interval <seconds>", `seconds between trading ticks (default: ${INTERVAL_VARIABLE}, else ${DEFAULTS.interval})`).default(defaultInterval))
    .addOption(new Option("--checkpoint-interval <seconds>", "seconds between periodic checkpoints").default(DEFAULTS.checkpointInterval))
    .addOption(new Option("--resume", "resume the account's latest active or interrupted session"))
    .addOption(new Option("--resume-session <id>", "resume the session with this id"))
    .addOption(new Option("--resume-or-new", "resume the account's latest active or interrupted session if there is one, else start a new one"))
    .addOption(new Option("--reconcile-only", "compare the session with the broker, print the report and exit; changes nothing"))
    .addOption(new Option("--take-over", "take the broker account from the session trading it (that trader stops before its next order) instead of refusing to start"))
    .addOption(new Option("--strategy <kind>", "rule (momentum on one-minute bars) or reasoner (asks the reasoning queue)").default(DEFAULTS.strategy))
    .addOption(new Option("--stop-loss-pct <percent>", "stop-loss distance from the entry price").default(DEFAULTS.stopLossPct))
    .addOption(new Option("--take-profit-pct <percent>", "take-profit distance from the entry price").default(DEFAULTS.takeProfitPct))
    .addOption(new Option("--position-size <dollars>", "dollars per position (whole shares)").default(DEFAULTS.positionSize))
    .addOption(new Option("--lookback <bars>", "rule strategy: momentum window in one-minute bars").default(DEFAULTS.lookback))
    .addOption(new Option("--entry-threshold-pct <percent>", "rule strategy: momentum needed to enter, either way").default(DEFAULTS.entryThresholdPct))
    .helpOption("-h, --help")
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
}

const number = (flag: string, what: string) =>
  z.string().transform((value, context) => {
    const parsed = value.trim() === "" ? Number.NaN : Number(value);
    if (!Number.isFinite(parsed)) {
      context.addIssue({ code: "custom", message: `${flag}: must be ${what} (got ${JSON.stringify(value)})` });
      return z.NEVER;
    }
    return parsed;
  });
const positive = (flag: string, what: string) =>
  number(flag, what).refine((value) => value > 0, `${flag}: must be ${what} greater than 0`);

const symbolList = z.string().transform((value, context) => {
  const symbols = [...new Set(value.split(",").map((symbol) => symbol.trim().toUpperCase()).filter((symbol) => symbol !== ""))];
  const bad = symbols.filter((symbol) => !tradingSymbolSchema.safeParse(symbol).success);
  if (symbols.length === 0 || bad.length > 0) {
    context.addIssue({
      code: "custom",
      message: `--symbols: must be tickers separated by commas, such as AAPL,MSFT (${symbols.length === 0 ? "none given" : `not a ticker: ${bad.join(", ")}`})`,
    });
    return z.NEVER;
  }
  return symbols;
});

const flagsSchema = z.object({
  symbols: symbolList,
  duration: positive("--duration", "a number of minutes").optional(),
  interval: positive("--interval", "a number of seconds"),
  checkpointInterval: positive("--checkpoint-interval", "a number of seconds"),
  resume: z.boolean().optional(),
  resumeOrNew: z.boolean().optional(),
  resumeSession: z
    .string()
    .refine((value) => sessionIdSchema.safeParse(value).success, "--resume-session: must be a session id of 1-128 characters from A-Z, a-z, 0-9, '_', '.', '-'")
    .optional(),
  reconcileOnly: z.boolean().optional(),
  takeOver: z.boolean().optional(),
  strategy: z.enum(["rule", "reasoner"], "--strategy: must be rule or reasoner"),
  stopLossPct: positive("--stop-loss-pct", "a percentage").refine((value) => value < 100, "--stop-loss-pct: must be below 100"),
  takeProfitPct: positive("--take-profit-pct", "a percentage").refine((value) => value <= 1_000, "--take-profit-pct: must be at most 1000"),
  positionSize: positive("--position-size", "an amount of dollars"),
  lookback: positive("--lookback", "a number of bars").refine((value) => Number.isInteger(value) && value <= 500, "--lookback: must be a whole number of bars, at most 500"),
  entryThresholdPct: number("--entry-threshold-pct", "a percentage").refine((value) => value >= 0 && value <= 100, "--entry-threshold-pct: must be between 0 and 100"),
});

/**
 * Parses and validates the trader's command line (without the leading `node main.js`); `env` may hold
 * TRADER_INTERVAL_SECONDS, the default of --interval. Every problem is reported at once; conflicting flags
 * are named together with the way out.
 */
export function parseCommandLine(args: string[], env: Record<string, string | undefined> = {}): TraderOptions {
  const intervalFromEnv = env[INTERVAL_VARIABLE]?.trim() ? env[INTERVAL_VARIABLE] : undefined;
  const command = program(intervalFromEnv ?? DEFAULTS.interval);
  try {
    command.parse(args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.help") throw new HelpRequested(command.helpInformation());
      throw new UsageError(`${error.message.replace(/^error: /, "")}; run with --help for the options`);
    }
    throw error;
  }
  const raw = command.opts<Record<string, unknown>>();
  const given = (name: string) => command.getOptionValueSource(name) === "cli";
  const parsed = flagsSchema.safeParse(raw);
  // A bad interval that came from the environment is reported under the variable's name.
  const underItsName = (message: string) => (intervalFromEnv !== undefined && !given("interval") ? message.replace(/^--interval:/, `${INTERVAL_VARIABLE}:`) : message);
  const problems = parsed.success ? [] : parsed.error.issues.map((issue) => underItsName(issue.message));

  if (raw.resume === true && raw.resumeSession !== undefined) {
    problems.push("--resume and --resume-session conflict: --resume picks the account's latest active or interrupted session, --resume-session ID a given one; use one of them");
  }
  const reconcileOnly = raw.reconcileOnly === true;
  if (raw.resumeOrNew === true) {
    const conflicting = [raw.resume === true && "--resume", raw.resumeSession !== undefined && "--resume-session", reconcileOnly && "--reconcile-only"].filter((flag) => flag !== false);
    if (conflicting.length > 0) {
      problems.push(
        `--resume-or-new conflicts with ${conflicting.join(", ")}: --resume-or-new resumes the account's latest active or interrupted session or starts a new one; ` +
          "use --resume to require a session, --resume-session ID for a given one, or --reconcile-only alone to compare one with the broker",
      );
    }
  }
  const runFlags = [...Object.entries(RUN_FLAGS).filter(([name]) => given(name)).map(([, flag]) => flag), ...(raw.takeOver === true ? ["--take-over"] : [])];
  if (reconcileOnly && runFlags.length > 0) {
    problems.push(`${runFlags.join(", ")} cannot be combined with --reconcile-only, which only reads the broker and the session, prints the report and exits`);
  }
  if (problems.length > 0 || !parsed.success) {
    throw new UsageError(`invalid command line:\n${problems.map((problem) => `  ${problem}`).join("\n")}\nRun with --help for the options.`);
  }

  const flags = parsed.data;
  const strategy: StrategyParams = {
    kind: flags.strategy,
    stopLossPct: flags.stopLossPct,
    takeProfitPct: flags.takeProfitPct,
    positionSize: flags.positionSize,
    lookbackBars: flags.lookback,
    entryThresholdPct: flags.entryThresholdPct,
  };
  const session: SessionChoice =
    flags.resumeSession !== undefined
      ? { kind: "resume-session", sessionId: flags.resumeSession }
      : flags.resume || reconcileOnly
        ? { kind: "resume" }
        : { kind: flags.resumeOrNew ? "resume-or-new" : "new", symbols: flags.symbols, strategy };
  const strategyGiven = Object.fromEntries(
    (Object.keys(STRATEGY_FLAGS) as Array<keyof typeof STRATEGY_FLAGS>).filter((name) => given(name)).map((name) => [STRATEGY_FLAGS[name], strategy[STRATEGY_FLAGS[name]]]),
  );
  return {
    session,
    sessionFlags: {
      ...(given("symbols") ? { symbols: flags.symbols } : {}),
      ...(Object.keys(strategyGiven).length > 0 ? { strategy: strategyGiven } : {}),
    },
    reconcileOnly,
    takeOver: flags.takeOver === true,
    intervalMs: Math.round(flags.interval * 1000),
    checkpointIntervalMs: Math.round(flags.checkpointInterval * 1000),
    durationMs: flags.duration === undefined ? null : Math.round(flags.duration * 60_000),
  };
}
