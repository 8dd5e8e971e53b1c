import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DecisionRequestError, requestDecision } from "../src/decisions.js";
import { thinkJobId } from "../src/schemas/reasoning.js";
import { createTestEnvironment, type TestEnvironment } from "../src/testing/index.js";

const payload = { agentId: "agent-1", symbol: "AAPL", marketContext: { price: 187.4 } };

describe("requestDecision", () => {
  let env: TestEnvironment;
  let reasoning: Queue;
  let other: Queue;

  beforeAll(async () => {
    env = await createTestEnvironment("decisions");
    const connection = { url: env.redisUrl, maxRetriesPerRequest: null };
    reasoning = new Queue("reasoning", { connection, prefix: env.queuePrefix });
    other = new Queue("checkpoints", { connection, prefix: env.queuePrefix });
  });
  afterAll(async () => {
    await reasoning?.close();
    await other?.close();
    await env?.dispose();
  });

  it("queues a think job under its session id, once however often it is sent", async () => {
    const id = thinkJobId("agent-1", 7);
    const first = await requestDecision(reasoning, id, payload);
    const again = await requestDecision(reasoning, id, { ...payload, maxIterations: 20 });
    expect(first.id).toBe("think.agent-1.7");
    expect(again.id).toBe(first.id);
    expect(await reasoning.getJobCounts("wait")).toEqual({ wait: 1 });
    expect((await reasoning.getJob(id))?.data).toEqual(payload);
  });

  it("refuses an all-digit id (BullMQ's own ids, reused after a queue reset), naming the fix", async () => {
    await expect(requestDecision(reasoning, "42", payload)).rejects.toThrow(
      new DecisionRequestError(`invalid think job id: job id "42" is BullMQ's automatic id, which is not unique across queue resets; use thinkJobId(agentId, n)`),
    );
  });

  it("refuses a payload the reasoner would refuse, naming the field", async () => {
    await expect(requestDecision(reasoning, thinkJobId("agent-1", 8), { ...payload, maxIterations: 1 })).rejects.toThrow(
      /^invalid think job: maxIterations: must be ≥ 3/,
    );
  });

  it("refuses any queue but reasoning", async () => {
    await expect(requestDecision(other, thinkJobId("agent-1", 9), payload)).rejects.toThrow('think jobs go on the "reasoning" queue, not "checkpoints"');
  });
});
