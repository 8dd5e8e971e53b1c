import { requestDecision, SessionTakenOverError, type SnapshotEnvelope } from "@savepoint/shared";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { REASONER_SERVICE, STATE_SCHEMA_VERSION } from "../src/session/checkpoint-state.js";
import { SessionCheckpoints } from "../src/session/session-checkpoints.js";
import { decisionOf, iterationsStored, market, settledIterations, think, useReasonerStack } from "./support.js";

const ITERATIONS = 8;

describe("checkpoints that must not be resumed", () => {
  const stack = useReasonerStack("reasoner-recovery", { modelLatencyMs: 100, client: true });
  const reasoner = (overrides: Record<string, string> = {}) => stack.startInProcessReasoner(overrides);

  /** A run interrupted by a graceful shutdown after three iterations; returns its job. */
  async function interruptedRun(agentId: string) {
    const { reasoner: first } = await reasoner();
    const job = await think(stack.producer.queue, agentId, ITERATIONS);
    await iterationsStored(stack.env, job.id!, 3);
    await first.close();
    return job;
  }

  const corruptions: Array<[string, Partial<SnapshotEnvelope>, RegExp]> = [
    ["a state that does not match the schema", { state: { thoughts: "garbled" } }, /does not match the state schema/],
    ["an unknown schema version", { schemaVersion: STATE_SCHEMA_VERSION + 1, state: { chain: 1 } }, /has schemaVersion 2; this reasoner reads 1/],
  ];
  it.each(corruptions)("a newest checkpoint with %s makes the next attempt start fresh, with a warning", async (_name, corruption, problem) => {
    const job = await interruptedRun(`agent-corrupt-${corruption.schemaVersion ?? 1}`);
    await stack.client.saveAndConfirm({
      v: 1,
      service: REASONER_SERVICE,
      sessionId: job.id!,
      ownerId: "agent-corrupt",
      epoch: 1,
      seq: 999,
      kind: "iteration",
      status: "active",
      schemaVersion: STATE_SCHEMA_VERSION,
      takenAt: new Date().toISOString(),
      state: {},
      ...corruption,
    });
    const { logs } = await reasoner();
    const result = await decisionOf(job, stack.producer.events);

    expect(result).toMatchObject({ resumed: false, resumedAtIteration: 0, iterations: ITERATIONS, modelCalls: ITERATIONS });
    expect(logs).toContainEqual(
      expect.objectContaining({ level: 40, msg: "checkpoint not resumed; starting fresh", reason: "corrupted", problem: expect.stringMatching(problem) }),
    );
  });

  it("a checkpoint older than REASONER_CHECKPOINT_TTL_MS is not resumed", async () => {
    const job = await interruptedRun("agent-expired");
    const { logs } = await reasoner({ REASONER_CHECKPOINT_TTL_MS: "1" });
    const result = await decisionOf(job, stack.producer.events);

    expect(result).toMatchObject({ resumed: false, iterations: ITERATIONS });
    expect(logs).toContainEqual(expect.objectContaining({ msg: "checkpoint not resumed; starting fresh", reason: "expired" }));
  });

  it("a checkpoint within the TTL is resumed, with memories, tool results and questions and a refreshed market", async () => {
    const job = await interruptedRun("agent-fresh-market");
    // Three iterations, or four when the call in flight at the shutdown answered within its grace.
    const stopped = (await settledIterations(stack.env, job.id!)).length;
    const before = await stack.client.history({ service: REASONER_SERVICE, sessionId: job.id!, limit: 50 });
    await reasoner();
    const result = await decisionOf(job, stack.producer.events);

    expect(result).toMatchObject({ resumed: true, resumedAtIteration: stopped, modelCalls: ITERATIONS - stopped });
    const after = await stack.client.history({ service: REASONER_SERVICE, sessionId: job.id!, limit: 50 });
    const stepOf = (snapshots: typeof before, iteration: number) =>
      snapshots.find((snapshot) => snapshot.kind === "iteration" && snapshot.seq === iteration)?.state.step;
    // The first steps (market analysis, position, memories) are kept as they were, not redone.
    for (let iteration = 1; iteration <= stopped; iteration++) expect(stepOf(after, iteration)).toEqual(stepOf(before, iteration));
    expect(after.filter((snapshot) => snapshot.kind === "iteration" && snapshot.seq <= stopped)).toHaveLength(stopped);
    const marketRead = (epoch: number) =>
      after.find((snapshot) => snapshot.kind === "iteration" && snapshot.epoch === epoch)?.state.run as { marketAsOf: string };
    expect(Date.parse(marketRead(2).marketAsOf)).toBeGreaterThan(Date.parse(marketRead(1).marketAsOf));
  });

  it("a job id used before for a finished run is refused, naming the fix", async () => {
    await reasoner();
    const job = await think(stack.producer.queue, "agent-reused", 3);
    await decisionOf(job, stack.producer.events);
    await job.remove();
    const again = await requestDecision(stack.producer.queue, job.id!, { agentId: "agent-reused", symbol: "AAPL", marketContext: market(), maxIterations: 3 });

    await expect(again.waitUntilFinished(stack.producer.events, 20_000)).rejects.toThrow(/the job id was used for an earlier run.*thinkJobId/);
    expect((await stack.producer.queue.getJob(job.id!))?.attemptsMade).toBe(1);
  });

  it("an attempt fenced off by a newer one gets SessionTakenOverError on its next save", async () => {
    const run = { agentId: "agent-fenced", symbol: "AAPL", maxIterations: 5, worker: "test", marketAsOf: new Date().toISOString() };
    const options = { sessionId: "think.agent-fenced.1", confirmTimeoutMs: 10_000, logger: pino({ level: "silent" }) };
    const older = new SessionCheckpoints(stack.client, { ...options, run: { ...run, attempt: 1 } });
    const newer = new SessionCheckpoints(stack.client, { ...options, run: { ...run, attempt: 2 } });
    expect(await older.claim()).toBe("stored");
    expect(await newer.claim()).toBe("stored");

    await expect(older.saveInterrupt(1, 1, "shutdown", 10_000)).rejects.toBeInstanceOf(SessionTakenOverError);
    const latest = await stack.client.latest({ service: REASONER_SERVICE, sessionId: "think.agent-fenced.1" });
    expect(latest).toMatchObject({ epoch: 2, seq: 0, kind: "event" });
  });
});
