import os from "node:os";
import { fileURLToPath } from "node:url";
import { createTestEnvironment, spawnCheckpointer } from "@savepoint/shared/testing";
import { z } from "zod";
import { KILL_KINDS, runAll, saveEvidence, startScriptedReasoner, type KillKind, type RunResult } from "./crash-fuzz.js";

/*
 * npm run fuzz:trader: FUZZ_RUNS crash-fuzz runs (300 by default), spread evenly over the kill kinds, FUZZ_CONCURRENCY
 * at once, against a checkpointer, Redis and Postgres of their own. Prints every failing run with its seed (replay one
 * with FUZZ_SEEDS=<kind>:<seed>), then the figures: runs, kill points reached per kind, mismatches by invariant.
 */

const settingsSchema = z.object({
  FUZZ_RUNS: z.coerce.number().int().min(1).max(100_000).default(300),
  FUZZ_CONCURRENCY: z.coerce.number().int().min(1).max(32).default(4),
  FUZZ_KINDS: z
    .string()
    .default(KILL_KINDS.join(","))
    .transform((value) => value.split(",").map((kind) => kind.trim()))
    .pipe(z.array(z.enum(KILL_KINDS)).min(1)),
  /** A base for the seeds, so a second campaign meets other runs. */
  FUZZ_SEED: z.string().min(1).default("fuzz"),
  /** Replays just these runs: kind:seed, comma-separated, as printed for a failing run. */
  FUZZ_SEEDS: z.string().optional(),
});

const TRADER_MAIN = fileURLToPath(new URL("../../dist/main.js", import.meta.url));
/** Where a failed run's orders, fills and trader logs are written. */
const EVIDENCE_DIR = fileURLToPath(new URL("../../../../test-artifacts/fuzz/", import.meta.url));

const settings = settingsSchema.parse(process.env);
const runs: Array<{ kind: KillKind; seed: string }> = settings.FUZZ_SEEDS
  ? settings.FUZZ_SEEDS.split(",").map((entry) => {
      const [kind, ...seed] = entry.trim().split(":");
      return { kind: z.enum(KILL_KINDS).parse(kind), seed: seed.join(":") };
    })
  : Array.from({ length: settings.FUZZ_RUNS }, (_, index) => ({ kind: settings.FUZZ_KINDS[index % settings.FUZZ_KINDS.length]!, seed: `${settings.FUZZ_SEED}-${index}` }));

const env = await createTestEnvironment("trader-fuzz");
const checkpointer = await spawnCheckpointer(env);
const reasoner = startScriptedReasoner(env);
const started = Date.now();
console.log(`crash fuzz: ${runs.length} runs, ${settings.FUZZ_CONCURRENCY} at once, kinds ${[...new Set(runs.map((run) => run.kind))].join(", ")}; ${os.cpus().length} cores`);
let done = 0;
// Ctrl+C starts no more runs; those in flight end (their traders killed) and the figures are printed.
const stopping = new AbortController();
process.once("SIGINT", () => {
  console.log("stopping: no more runs start; the runs in flight finish");
  stopping.abort();
});
let results: RunResult[];
try {
  results = await runAll({ env, traderMain: TRADER_MAIN, reasoner }, runs, settings.FUZZ_CONCURRENCY, (result) => {
    done += 1;
    if (result.violations.length > 0) {
      console.log(`✗ ${result.kind}:${result.seed} (${result.plan})`);
      for (const violation of result.violations) console.log(`    ${violation}`);
      saveEvidence(result, EVIDENCE_DIR);
    } else if (process.env.FUZZ_VERBOSE) {
      console.log(`✓ ${result.kind}:${result.seed} ${JSON.stringify(result.phases)}`);
    } else if (done % 25 === 0) {
      console.log(`  ${done}/${runs.length} runs done`);
    }
  }, stopping.signal);
} finally {
  await reasoner.close();
  await checkpointer.kill("SIGTERM");
  await env.dispose();
}

const pad = (value: string | number, width: number) => String(value).padStart(width);
console.log(`\n${results.length} runs in ${((Date.now() - started) / 1000).toFixed(0)} s`);
console.log(`${"kill point".padEnd(18)}${pad("runs", 6)}${pad("reached", 9)}${pad("kills", 7)}${pad("restarts", 10)}${pad("failed", 8)}${pad("orders", 8)}${pad("partial", 9)}${pad("s/run", 7)}`);
for (const kind of KILL_KINDS) {
  const of = results.filter((result) => result.kind === kind);
  if (of.length === 0) continue;
  const sum = (pick: (result: RunResult) => number) => of.reduce((total, result) => total + pick(result), 0);
  console.log(
    `${kind.padEnd(18)}${pad(of.length, 6)}${pad(of.filter((result) => result.reached).length, 9)}${pad(sum((result) => result.kills), 7)}` +
      `${pad(sum((result) => result.restarts), 10)}${pad(of.filter((result) => result.violations.length > 0).length, 8)}${pad(sum((result) => result.orders), 8)}` +
      `${pad(sum((result) => result.partialFills), 9)}${pad((sum((result) => result.durationMs) / of.length / 1000).toFixed(1), 7)}`,
  );
}
/** Each violation starts with the invariant it broke. */
const INVARIANTS: Record<string, string> = {
  positions: "positions differ from the broker's",
  client_order_id: "a client_order_id or a trade used twice",
  pnl: "realised P&L differs from the broker's fills",
  stop: "a position without its stop for more than one tick",
  run: "the run itself failed (no resume, no clean stop)",
};
console.log("\nmismatches (runs / occurrences):");
for (const [invariant, meaning] of Object.entries(INVARIANTS)) {
  const hits = results.map((result) => result.violations.filter((violation) => violation.startsWith(`${invariant}:`)).length);
  console.log(`  ${invariant.padEnd(16)}${pad(hits.filter((count) => count > 0).length, 5)} / ${pad(hits.reduce((total, count) => total + count, 0), 4)}  ${meaning}`);
}
process.exitCode = results.some((result) => result.violations.length > 0) ? 1 : 0;
