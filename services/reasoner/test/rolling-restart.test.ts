import type { ServiceProcess } from "@savepoint/shared/testing";
import { describe, expect, it } from "vitest";
import { decisionOf, pollUntil, think, useReasonerStack } from "./support.js";

const RUNS = 20;
const ITERATIONS = 14;
const WORKERS = 3;

describe("rolling restart", () => {
  const stack = useReasonerStack("reasoner-rolling", { modelLatencyMs: 400 });
  const workers: ServiceProcess[] = [];

  it(`restarting each of ${WORKERS} workers in turn under ${RUNS} concurrent runs finishes every run, paying no model call twice`, { timeout: 120_000 }, async () => {
    for (let index = 0; index < WORKERS; index++) workers.push(await stack.spawnReasoner());
    const jobs = await Promise.all(Array.from({ length: RUNS }, (_, index) => think(stack.producer.queue, `agent-${index}`, ITERATIONS)));
    const results = Promise.all(jobs.map((job) => decisionOf(job, stack.producer.events, 110_000)));
    await pollUntil(() => stack.producer.queue.getActiveCount(), (active) => active === RUNS, 20_000, "every run active");

    let interruptions = 0;
    for (let index = 0; index < WORKERS; index++) {
      const stopping = workers[index]!;
      expect(await stopping.kill("SIGTERM")).toEqual({ code: 0, signal: null });
      interruptions += stopping.logs.filter((line) => line.msg === "run interrupted by shutdown; checkpointed and requeued").length;
      workers[index] = await stack.spawnReasoner();
    }
    // On a slow machine the last worker to stop may already have finished its runs; the restarts as a whole
    // must have interrupted some.
    expect(interruptions).toBeGreaterThan(0);

    const decided = await results;
    expect(decided).toHaveLength(RUNS);
    for (const result of decided) expect(result).toMatchObject({ iterations: ITERATIONS, limitReached: false });
    expect(decided.filter((result) => result.resumed).length).toBeGreaterThan(0);
    // A stopping worker lets the calls in flight answer (within REASONER_CALL_GRACE_MS) and checkpoints them, so
    // every iteration is answered exactly once however the SIGTERMs fell.
    const { total } = stack.model.ledger.all();
    expect(total.repeated).toBe(0);
    expect(total.answered).toBe(RUNS * ITERATIONS);
  });
});
