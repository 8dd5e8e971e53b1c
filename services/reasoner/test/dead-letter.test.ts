import { defaultJobOptions, type ThinkPayload } from "@savepoint/shared";
import type { TestEnvironment } from "@savepoint/shared/testing";
import { describe, expect, it } from "vitest";
import {
  decisionOf,
  iterationsStored,
  market,
  nextSessionId,
  pollUntil,
  redrive,
  settledIterations,
  storedIterations,
  useReasonerStack,
} from "./support.js";

const ITERATIONS = 8;

// The seed's monitoring query, unchanged (docs/architecture.md, "Reasoner"): a dead-lettered run waits for a person.
const MONITORING_QUERY = `SELECT agent_id, session_id, started_at, NOW() - started_at as age,
       checkpoint_history::jsonb -> -1 ->> 'iteration' as last_iteration
FROM agent_reasoning_sessions WHERE is_interrupted = true AND completed_at IS NULL
ORDER BY started_at DESC;`;

const deadLetterRow = (env: TestEnvironment, sessionId: string) =>
  env.query(
    `SELECT status, is_interrupted, dead_letter_cause, dead_letter_reason, dead_lettered_at IS NOT NULL AS dead_lettered,
            jsonb_array_length(checkpoint_history) AS iterations
     FROM agent_reasoning_sessions WHERE session_id = $1`,
    [sessionId],
  );

describe("dead letters: runs that failed for good stay visible, keep their checkpoints, and re-drive from them", () => {
  const stack = useReasonerStack("reasoner-dead-letter", { modelLatencyMs: 80 });

  it("a run that spent its attempts is dead-lettered (Bull Board, the view, a metric) and the re-drive CLI resumes it", async () => {
    const { reasoner } = await stack.startInProcessReasoner({ MODEL_MAX_RETRIES: "0" });
    const sessionId = nextSessionId("agent-spent");
    const payload: ThinkPayload = { agentId: "agent-spent", symbol: "AAPL", marketContext: market(), maxIterations: ITERATIONS };
    // Two attempts a second apart instead of the default five over half a minute; everything else as produced.
    const job = await stack.producer.queue.add("think", payload, {
      ...defaultJobOptions.reasoning,
      jobId: sessionId,
      attempts: 2,
      backoff: { type: "fixed", delay: 200 },
    });
    await iterationsStored(stack.env, sessionId, 3);
    stack.model.faults.add({ status: 500, count: 1_000, sessionId });

    await expect(job.waitUntilFinished(stack.producer.events, 30_000)).rejects.toThrow(/the model API failed 1 times in a row/);
    const stored = (await settledIterations(stack.env, sessionId)).length;
    expect(stored).toBeGreaterThanOrEqual(3);
    const failed = (await stack.producer.queue.getJob(sessionId))!;
    expect(await failed.getState()).toBe("failed");
    expect(failed.progress).toMatchObject({ phase: "dead-lettered", iteration: stored });
    const { logs } = await stack.producer.queue.getJobLogs(sessionId);
    expect(logs).toContainEqual(expect.stringMatching(/^attempt failed after iteration \d+: .*; it is retried \(1 of 2 attempts spent\)/));
    expect(logs.at(-1)).toMatch(
      new RegExp(`^dead-lettered \\(attempts_exhausted\\): .*re-drive it from the last one with: npm run redrive -w @savepoint/reasoner -- ${sessionId.replaceAll(".", "\\.")}$`),
    );
    expect((await deadLetterRow(stack.env, sessionId)).rows).toEqual([
      {
        status: "interrupted",
        is_interrupted: true,
        dead_letter_cause: "attempts_exhausted",
        dead_letter_reason: expect.stringMatching(/the model API failed 1 times in a row \(last: server_error, status 500/),
        dead_lettered: true,
        iterations: stored,
      },
    ]);
    expect((await stack.env.query(MONITORING_QUERY)).rows).toContainEqual(expect.objectContaining({ session_id: sessionId, last_iteration: String(stored) }));
    expect((await reasoner.metrics.deadLetters.get()).values).toEqual([expect.objectContaining({ labels: { cause: "attempts_exhausted" }, value: 1 })]);

    stack.model.faults.clear();
    const answeredBefore = stack.model.ledger.session(sessionId).answered;
    const redriven = await redrive(stack.env, sessionId);
    expect(redriven).toEqual({ code: 0, output: `re-driven ${sessionId}: back in the reasoning queue; attempt 3 resumes it from its last checkpoint` });
    const result = await decisionOf(job, stack.producer.events);

    expect(result).toMatchObject({ resumed: true, resumedAtIteration: stored, iterations: ITERATIONS });
    expect(stack.model.ledger.session(sessionId)).toMatchObject({ answered: answeredBefore + ITERATIONS - stored, repeated: 0 });
    expect((await deadLetterRow(stack.env, sessionId)).rows).toEqual([
      { status: "completed", is_interrupted: false, dead_letter_cause: null, dead_letter_reason: null, dead_lettered: false, iterations: ITERATIONS },
    ]);
  });

  it("a run whose worker crashed more than REASONER_MAX_STALLED_COUNT times is dead-lettered by the next worker, then re-driven", async () => {
    const settings = { REASONER_MAX_STALLED_COUNT: "1" };
    const first = await stack.spawnReasoner(settings);
    const sessionId = nextSessionId("agent-crashy");
    const job = await stack.producer.queue.add(
      "think",
      { agentId: "agent-crashy", symbol: "AAPL", marketContext: market(), maxIterations: ITERATIONS } satisfies ThinkPayload,
      { ...defaultJobOptions.reasoning, jobId: sessionId },
    );
    await iterationsStored(stack.env, sessionId, 2);
    await first.kill("SIGKILL");
    const second = await stack.spawnReasoner(settings);
    await pollUntil(() => storedIterations(stack.env, sessionId), (rows) => rows.some((row) => row.epoch === 2), 20_000, "an iteration by the second worker");
    await second.kill("SIGKILL");
    const stored = (await settledIterations(stack.env, sessionId)).length;
    const third = await stack.spawnReasoner(settings);

    await expect(job.waitUntilFinished(stack.producer.events, 30_000)).rejects.toThrow("job stalled more than allowable limit");
    await third.waitForLog("run dead-lettered; its checkpoints are kept for a re-drive");
    const rows = await pollUntil(() => deadLetterRow(stack.env, sessionId).then((result) => result.rows), (found) => found[0]?.dead_lettered === true);
    expect(rows).toEqual([
      {
        status: "interrupted",
        is_interrupted: true,
        dead_letter_cause: "stalled",
        dead_letter_reason: "the worker running it crashed (stalled) more than 1 times",
        dead_lettered: true,
        iterations: stored,
      },
    ]);
    // Written after the snapshot, by the worker that failed the job.
    await pollUntil(
      async () => (await stack.producer.queue.getJobLogs(sessionId)).logs.at(-1) ?? "",
      (last) => /^dead-lettered \(stalled\): the worker running it crashed \(stalled\) more than 1 times\. Its checkpoints are kept/.test(last),
    );
    const httpPort = (await third.waitForLog("reasoner starting")).httpPort;
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(metrics).toMatch(/savepoint_reasoner_dead_letters_total\{[^}]*cause="stalled"[^}]*\} 1/);

    expect((await redrive(stack.env, sessionId)).code).toBe(0);
    const result = await decisionOf(job, stack.producer.events);
    expect(result).toMatchObject({ resumed: true, resumedAtIteration: stored, iterations: ITERATIONS });
    // Each SIGKILL can cost the call it cut off, nothing more.
    expect(stack.model.ledger.session(sessionId).repeated).toBeLessThanOrEqual(2);
  });

  it("the re-drive CLI refuses, in one line, a session that is not dead-lettered", async () => {
    expect(await redrive(stack.env, "think.nobody.1")).toEqual({
      code: 1,
      output: `no think job "think.nobody.1" in the reasoning queue (QUEUE_PREFIX ${stack.env.queuePrefix}); check the session id and QUEUE_PREFIX (failed jobs are kept for 7 days)`,
    });
  });
});
