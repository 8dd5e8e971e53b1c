import type { ThinkResult } from "@savepoint/shared";
import type { Job } from "bullmq";
import { describe, expect, it } from "vitest";
import { decisionOf, iterationsStored, settledIterations, storedIterations, think, useReasonerStack } from "./support.js";

// The seed's monitoring query, unchanged (docs/architecture.md, "Reasoner").
const MONITORING_QUERY = `SELECT agent_id, session_id, started_at, NOW() - started_at as age,
       checkpoint_history::jsonb -> -1 ->> 'iteration' as last_iteration
FROM agent_reasoning_sessions WHERE is_interrupted = true AND completed_at IS NULL
ORDER BY started_at DESC;`;

const ITERATIONS = 12;

describe("graceful shutdown and resume, across reasoner processes", () => {
  const stack = useReasonerStack("reasoner-graceful", { modelLatencyMs: 400 });
  const worker = () => stack.spawnReasoner();

  describe("one run interrupted once", () => {
    let job: Job;
    let stoppedAt: number;

    it("SIGTERM while an answer is on its way keeps it: the iteration is checkpointed, then a confirmed interrupt, and a clean exit", async () => {
      const first = await worker();
      job = await think(stack.producer.queue, "agent-term", ITERATIONS);
      await iterationsStored(stack.env, job.id!, 4);
      // SIGTERM lands while the next call is in the server's hands: its answer comes back after the signal.
      await expect.poll(() => stack.model.ledger.session(job.id!)).toMatchObject({ calls: 5, answered: 4 });
      const exit = await first.kill("SIGTERM");
      stoppedAt = (await settledIterations(stack.env, job.id!)).length;

      expect(exit).toEqual({ code: 0, signal: null });
      expect(stoppedAt).toBe(5);
      expect(stack.model.ledger.session(job.id!)).toMatchObject({ aborted: 0, answered: stoppedAt });
      const { rows } = await stack.env.query(
        "SELECT kind, status, seq::int AS seq, state->>'atIteration' AS at FROM checkpoints WHERE session_id = $1 ORDER BY epoch DESC, seq DESC LIMIT 1",
        [job.id],
      );
      expect(rows).toEqual([{ kind: "interrupt", status: "interrupted", seq: stoppedAt + 1, at: String(stoppedAt + 1) }]);
      expect(await job.getState()).toBe("waiting");
    });

    it("the monitoring query lists the interrupted session with its last iteration", async () => {
      const { rows } = await stack.env.query(MONITORING_QUERY);
      expect(rows).toEqual([
        { agent_id: "agent-term", session_id: job.id, started_at: expect.any(Date), age: expect.anything(), last_iteration: String(stoppedAt) },
      ]);
    });

    it("another worker resumes and finishes with zero repeated model calls", async () => {
      const second = await worker();
      const result = await decisionOf(job, stack.producer.events);

      expect(result).toMatchObject({ resumed: true, resumedAtIteration: stoppedAt, iterations: ITERATIONS, modelCalls: ITERATIONS - stoppedAt });
      expect(stack.model.ledger.session(job.id!)).toMatchObject({ answered: ITERATIONS, repeated: 0 });
      const httpPort = (await second.waitForLog("reasoner starting")).httpPort;
      const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      expect(metrics).toMatch(/savepoint_reasoner_runs_total\{[^}]*start="resumed"[^}]*\} 1/);
      expect(metrics).toMatch(new RegExp(`savepoint_reasoner_model_calls_saved_total\\{[^}]*\\} ${stoppedAt}\\b`));
    });

    it("completion marks the session complete, with its whole history in order", async () => {
      const { rows } = await stack.env.query(
        `SELECT is_interrupted, completed_at IS NOT NULL AS completed, status, checkpoint_state->>'event' AS event,
                jsonb_path_query_array(checkpoint_history, '$[*].iteration') AS iterations
         FROM agent_reasoning_sessions WHERE session_id = $1`,
        [job.id],
      );
      expect(rows).toEqual([
        { is_interrupted: false, completed: true, status: "completed", event: "completed", iterations: Array.from({ length: ITERATIONS }, (_, i) => i + 1) },
      ]);
      expect((await stack.env.query(MONITORING_QUERY)).rows).toEqual([]);
    });
  });

  it("a call that does not answer within REASONER_CALL_GRACE_MS is aborted, and done again (once) on resume", async () => {
    const first = await stack.spawnReasoner({ REASONER_CALL_GRACE_MS: "0" });
    const job = await think(stack.producer.queue, "agent-no-grace", ITERATIONS);
    await iterationsStored(stack.env, job.id!, 3);
    await expect.poll(() => stack.model.ledger.session(job.id!)).toMatchObject({ calls: 4, answered: 3 });
    await first.kill("SIGTERM");
    const stopped = (await settledIterations(stack.env, job.id!)).length;
    expect(stack.model.ledger.session(job.id!)).toMatchObject({ aborted: 1, answered: stopped });

    await worker();
    const result = await decisionOf(job, stack.producer.events);
    expect(result).toMatchObject({ resumed: true, resumedAtIteration: stopped, iterations: ITERATIONS });
    expect(stack.model.ledger.session(job.id!)).toMatchObject({ answered: ITERATIONS, repeated: 0 });
  });

  it("several restarts in a row always resume from the latest checkpoint", async () => {
    const job = await think(stack.producer.queue, "agent-restarts", ITERATIONS);
    const stops: number[] = [];
    for (const target of [2, 5, 8]) {
      const current = await worker();
      await iterationsStored(stack.env, job.id!, target);
      await current.kill("SIGTERM");
      stops.push((await settledIterations(stack.env, job.id!)).length);
      const start = current.logs.find((line) => line.sessionId === job.id && (line.msg === "starting run" || line.msg === "resuming run from checkpoint"));
      expect(start?.resumedAtIteration).toBe(stops.length === 1 ? 0 : stops[stops.length - 2]);
    }
    await worker();
    const result: ThinkResult = await decisionOf(job, stack.producer.events);

    expect(result).toMatchObject({ resumed: true, resumedAtIteration: stops.at(-1), iterations: ITERATIONS });
    expect(stack.model.ledger.session(job.id!)).toMatchObject({ answered: ITERATIONS, repeated: 0 });
    const epochs = new Set((await storedIterations(stack.env, job.id!)).map((row) => row.epoch));
    expect([...epochs]).toEqual([1, 2, 3, 4]);
  });
});
