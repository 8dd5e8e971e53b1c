import { describe, expect, it } from "vitest";
import { decisionOf, iterationsStored, settledIterations, think, useReasonerStack } from "./support.js";

const ITERATIONS = 200;
/** Far below the run's length: retention by count must not reach an unfinished session. */
const KEEP_COUNT = 10;

describe("runs of any length", () => {
  // The scheduled cleanup fires every 1.2 s, many times during the run, keeping KEEP_COUNT snapshots per session.
  const stack = useReasonerStack("reasoner-long", {
    modelLatencyMs: 5,
    checkpointerEnv: { CLEANUP_KEEP_COUNT: String(KEEP_COUNT), CLEANUP_INTERVAL_MINUTES: "0.02" },
  });

  const cleanups = () => stack.checkpointer.logs.filter((line) => line.msg === "scheduled cleanup done").length;

  it("a 200-iteration chain survives the scheduled cleanup firing mid-run, is interrupted, and resumes exactly", { timeout: 300_000 }, async () => {
    const { reasoner: first } = await stack.startInProcessReasoner();
    const job = await think(stack.producer.queue, "agent-long", ITERATIONS);
    await iterationsStored(stack.env, job.id!, 60, 120_000);
    const cleanupsBefore = cleanups();
    // Two more cleanups while the run goes on: at least one ran entirely after iteration 60.
    await stack.checkpointer.waitForLog((line) => line.msg === "scheduled cleanup done" && cleanups() >= cleanupsBefore + 2, 30_000);
    await first.close();
    const stopped = (await settledIterations(stack.env, job.id!)).length;
    expect(stopped).toBeGreaterThan(60);
    expect(stopped).toBeLessThan(ITERATIONS);
    // Every iteration so far is still there for the resume, however often retention ran.
    const history = await stack.env.query<{ iterations: number[] }>(
      "SELECT jsonb_path_query_array(checkpoint_history, '$[*].iteration') AS iterations FROM agent_reasoning_sessions WHERE session_id = $1",
      [job.id],
    );
    expect(history.rows).toEqual([{ iterations: Array.from({ length: stopped }, (_, i) => i + 1) }]);

    await stack.startInProcessReasoner();
    const result = await decisionOf(job, stack.producer.events, 180_000);

    expect(result).toMatchObject({ resumed: true, resumedAtIteration: stopped, iterations: ITERATIONS, modelCalls: ITERATIONS - stopped, modelCallsSaved: stopped });
    // Each of the 200 iterations answered exactly once, across both attempts.
    const calls = stack.model.ledger.session(job.id!);
    expect(calls).toMatchObject({ answered: ITERATIONS, repeated: 0, aborted: 0 });
    expect(calls.answeredByIteration).toEqual(Object.fromEntries(Array.from({ length: ITERATIONS }, (_, i) => [String(i + 1), 1])));
  });
});
