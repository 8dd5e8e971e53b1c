import { describe, expect, it } from "vitest";
import { decisionOf, iterationsStored, pollUntil, settledIterations, storedIterations, think, useReasonerStack } from "./support.js";

const ITERATIONS = 12;

describe("crashed and frozen reasoner processes", () => {
  const stack = useReasonerStack("reasoner-crash", { modelLatencyMs: 300 });
  const worker = () => stack.spawnReasoner();

  it("after SIGKILL, another worker resumes the stalled run from its last iteration, repeating at most one model call", async () => {
    const doomed = await worker();
    const job = await think(stack.producer.queue, "agent-kill", ITERATIONS);
    await iterationsStored(stack.env, job.id!, 4);
    // Killed first, and only then another worker started: however slow the machine, the run cannot finish first.
    await doomed.kill("SIGKILL");
    const storedAtCrash = (await settledIterations(stack.env, job.id!)).length;
    await worker();

    const result = await decisionOf(job, stack.producer.events);
    expect(result).toMatchObject({ resumed: true, resumedAtIteration: storedAtCrash, iterations: ITERATIONS });
    const calls = stack.model.ledger.session(job.id!);
    expect(calls.repeated).toBeLessThanOrEqual(1);
    expect(calls.answered).toBeLessThanOrEqual(ITERATIONS + 1);
  });

  it("a worker that lost its job (frozen past its lock, then taken over) cannot overwrite the new owner's checkpoints", async () => {
    const frozen = await worker();
    const job = await think(stack.producer.queue, "agent-frozen", ITERATIONS);
    await iterationsStored(stack.env, job.id!, 3);
    frozen.child.kill("SIGSTOP");

    await worker();
    // The new owner's claim (epoch 2) is committed before the frozen worker wakes up.
    await pollUntil(
      () => storedIterations(stack.env, job.id!),
      (rows) => rows.some((row) => row.epoch === 2),
      20_000,
      "an iteration by the new owner",
    );
    const writtenBeforeWaking = (await storedIterations(stack.env, job.id!)).filter((row) => row.epoch === 1);
    frozen.child.kill("SIGCONT");
    // It notices (its lock renewal fails, or its next save is refused as stale) and stops without writing.
    await frozen.waitForLog("lost the run to another worker; stopping without writing");

    const result = await decisionOf(job, stack.producer.events);
    expect(result).toMatchObject({ resumed: true, iterations: ITERATIONS });
    const epochOne = (await storedIterations(stack.env, job.id!)).filter((row) => row.epoch === 1);
    expect(epochOne).toEqual(writtenBeforeWaking);
    const { rows } = await stack.env.query(
      "SELECT jsonb_path_query_array(checkpoint_history, '$[*].iteration') AS iterations, status FROM agent_reasoning_sessions WHERE session_id = $1",
      [job.id],
    );
    expect(rows).toEqual([{ iterations: Array.from({ length: ITERATIONS }, (_, i) => i + 1), status: "completed" }]);
  });
});
