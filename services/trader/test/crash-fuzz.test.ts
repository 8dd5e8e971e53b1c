import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { KILL_KINDS, runAll, saveEvidence, startScriptedReasoner, type KillKind } from "../bench/crash-fuzz.js";
import { TRADER_MAIN, useTraderStack } from "./support.js";

/**
 * The crash-fuzz harness in the suite: RUNS runs of the built trader, each SIGKILLed at a seeded point of the
 * order lifecycle against the simulator with Alpaca's lifecycle and partial fills, then resumed and checked
 * (see bench/crash-fuzz.ts). Several run at once so the file stays short; `npm run fuzz:trader` runs 300 and
 * more over every kind, and replays a failing one from the `kind:seed` this test prints.
 */
const SUITE_KINDS: readonly KillKind[] = KILL_KINDS;
const RUNS = 30;
const CONCURRENCY = 6;
/** Where a failed run's orders, fills and trader logs are written, as npm run fuzz:trader does. */
const EVIDENCE_DIR = fileURLToPath(new URL("../../../test-artifacts/fuzz/", import.meta.url));

describe("crash fuzz", () => {
  const stack = useTraderStack("trader-crash-fuzz");

  it(
    `${RUNS} runs killed at ${SUITE_KINDS.join(", ")}: positions, client_order_ids, realised P&L and stops hold after every resume`,
    async () => {
      const reasoner = startScriptedReasoner(stack.env);
      stack.stopAfterTest(() => reasoner.close());
      const runs = Array.from({ length: RUNS }, (_, index) => ({ kind: SUITE_KINDS[index % SUITE_KINDS.length]!, seed: `suite-${index}` }));

      const results = await runAll({ env: stack.env, traderMain: TRADER_MAIN, reasoner }, runs, CONCURRENCY);

      const failed = results
        .filter((result) => result.violations.length > 0)
        .map((result) => `${result.kind}:${result.seed} ${result.violations.join("; ")} (evidence: ${saveEvidence(result, EVIDENCE_DIR)})`);
      expect(failed, "replay with FUZZ_SEEDS=<kind:seed> npm run fuzz:trader").toEqual([]);
      // A run that does not meet its kill point within the harness's timeout is still killed (at a random moment)
      // and checked. How many meet theirs depends on how fast the trader trades: on a loaded machine it places fewer
      // orders in that time, and half of a kind's partial_fill runs have been seen to miss (see the campaign's
      // figures for the rate). A third of each kind's runs must meet it, so every kill point is still exercised.
      for (const kind of SUITE_KINDS) {
        const ofKind = results.filter((result) => result.kind === kind);
        expect(ofKind.filter((result) => result.reached).length, kind).toBeGreaterThanOrEqual(Math.ceil(ofKind.length / 3));
      }
    },
    600_000,
  );
});
