#!/usr/bin/env node
/**
 * `npm run fault-campaign`: repeats issue 12's fault findings against the built services and prints, per
 * item, how often each guarantee held and what was lost, duplicated or repeated. Exits 1 if any did not hold.
 *
 *   node scripts/fault-campaign/run.mjs [--trials N] [--only 1,2,3]
 *
 * Every scenario gets its own database and queue prefix on this machine's Redis and PostgreSQL (REDIS_URL,
 * DATABASE_URL as for the tests); one that kills Redis starts a Redis of its own and kills that, by pid.
 *
 * Adding a scenario: export `async function (context) => Tally` from a module here (context: env, trials,
 * stops) and list it in SCENARIOS with its issue item (and `checkpointers`, the environment overrides of each
 * checkpointer it runs against, if not one with the defaults).
 */
import { parseArgs } from "node:util";
import { createTestEnvironment, stopNewestFirst } from "@savepoint/shared/testing";
import { spawnCheckpointer } from "./harness.mjs";
import { confirmDuringRedisCrash, confirmedUnderBacklog } from "./checkpoint-scenarios.mjs";
import { redisOutage, secondSessionOnAccount, twoResumers } from "./trader-scenarios.mjs";

/**
 * Two checkpointers, one per kind of snapshot queue (SNAPSHOT_LANES), instead of one taking both; the backlog's
 * at the lowest CPU priority (PROCESS_NICENESS), as README.md advises for two on the same cores.
 */
const LANE_PER_PROCESS = [{ SNAPSHOT_LANES: "fire-and-forget", PROCESS_NICENESS: "19" }, { SNAPSHOT_LANES: "confirmed" }];

const SCENARIOS = [
  { item: 1, run: secondSessionOnAccount },
  { item: 2, run: twoResumers },
  { item: 3, run: redisOutage },
  { item: 4, run: confirmDuringRedisCrash },
  // Confirmations first off, then on (the default), so one run compares them.
  { item: 8, run: (context) => confirmedUnderBacklog({ ...context, label: "confirmations first off", baseline: true }), checkpointers: [{ BACKLOG_YIELD_MS: "0" }] },
  { item: 8, run: confirmedUnderBacklog },
  { item: 8, run: (context) => confirmedUnderBacklog({ ...context, lanePerProcess: true }), checkpointers: LANE_PER_PROCESS },
];

function commandLine() {
  const { values } = parseArgs({ options: { trials: { type: "string", default: "5" }, only: { type: "string" } } });
  const trials = Number(values.trials);
  if (!Number.isInteger(trials) || trials < 1 || trials > 100) {
    console.error(`--trials must be a whole number from 1 to 100, got "${values.trials}"\nusage: node scripts/fault-campaign/run.mjs [--trials N] [--only 1,2,3]`);
    process.exit(2);
  }
  const only = values.only ? new Set(values.only.split(",").map(Number)) : null;
  return { trials, only };
}

const { trials, only } = commandLine();
let allHeld = true;
for (const scenario of SCENARIOS) {
  if (only && !only.has(scenario.item)) continue;
  const stops = [];
  const env = await createTestEnvironment(`fault-campaign-${scenario.item}`);
  stops.push(() => env.dispose());
  for (const overrides of scenario.checkpointers ?? [{}]) {
    const checkpointer = await spawnCheckpointer(env, overrides);
    stops.push(() => checkpointer.kill("SIGTERM"));
  }
  const started = Date.now();
  let tally;
  try {
    tally = await scenario.run({ env, trials, stops });
  } catch (error) {
    console.log(`item ${scenario.item}: FAILED to run: ${error.message}`);
    allHeld = false;
    continue;
  } finally {
    await stopNewestFirst(stops).catch((error) => console.log(`item ${scenario.item}: teardown: ${error.message}`));
  }
  allHeld &&= tally.holds;
  const figures = tally.figures.map(([name, value]) => `${name} ${value}`).join(", ");
  console.log(`item ${tally.item}: ${tally.title}: ${figures} (${((Date.now() - started) / 1000).toFixed(0)} s) ${tally.holds ? "HELD" : "DID NOT HOLD"}`);
  for (const failure of tally.failures) console.log(`  - not held: ${failure}`);
}
process.exit(allHeld ? 0 : 1);
