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

    // As many answers as runs before the first stop, so the restarts tend to fall mid-chain (which runs they
    // caught is read from the logs below, not assumed).
    await pollUntil(async () => stack.model.ledger.all().total.answered, (answered) => answered >= RUNS, 20_000, "a model call answered per run");

    const interruptedAt = new Map<string, number>();
    for (let index = 0; index < WORKERS; index++) {
      const stopping = workers[index]!;
      expect(await stopping.kill("SIGTERM")).toEqual({ code: 0, signal: null });
      for (const line of stopping.logs.filter((line) => line.msg === "run interrupted by shutdown; checkpointed and requeued")) {
        interruptedAt.set(line.sessionId as string, Math.max(interruptedAt.get(line.sessionId as string) ?? 0, line.atIteration as number));
      }
      workers[index] = await stack.spawnReasoner();
    }
    // On a slow machine the last worker to stop may already have finished its runs; the restarts as a whole
    // must have interrupted some.
    expect(interruptedAt.size).toBeGreaterThan(0);

    const decided = await results;
    expect(decided).toHaveLength(RUNS);
    for (const result of decided) expect(result).toMatchObject({ iterations: ITERATIONS, limitReached: false });
    // A run stopped before iteration n resumes from its checkpoint with the n - 1 before it; one stopped before
    // its first (a slow machine) starts afresh, and no run resumes that was never stopped.
    const stoppedMidChain = [...interruptedAt].filter(([, atIteration]) => atIteration > 1).map(([sessionId]) => sessionId);
    expect(decided.filter((result) => result.resumed).map((result) => result.sessionId).sort()).toEqual(stoppedMidChain.sort());
    for (const result of decided.filter((result) => result.resumed)) expect(result.resumedAtIteration).toBe(interruptedAt.get(result.sessionId)! - 1);
    // A stopping worker lets the calls in flight answer (within REASONER_CALL_GRACE_MS) and checkpoints them, so
    // every iteration is answered exactly once however the SIGTERMs fell.
    const { total } = stack.model.ledger.all();
    expect(total.repeated).toBe(0);
    expect(total.answered).toBe(RUNS * ITERATIONS);
  });
});
