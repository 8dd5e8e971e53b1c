import { UnrecoverableError, Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DecisionRequestError } from "../src/decisions.js";
import { ReasoningClient, ReasoningFailedError, ReasoningTimeoutError } from "../src/reasoning-client.js";
import { thinkJobId } from "../src/schemas/reasoning.js";
import { createTestEnvironment, thinkResult, type TestEnvironment } from "../src/testing/index.js";

const payload = (symbol: string) => ({ agentId: "agent-1", symbol, marketContext: { price: 187.4 } });
const decision = (sessionId: string) => thinkResult({ action: "OPEN_LONG", confidence: 0.8, rationale: "trend up", sessionId, iterations: 3, modelCalls: 3 });

describe("ReasoningClient", () => {
  let env: TestEnvironment;
  let client: ReasoningClient;
  let worker: Worker;
  let releaseSlow: () => void = () => undefined;
  const slow = new Promise<void>((resolve) => (releaseSlow = resolve));

  beforeAll(async () => {
    env = await createTestEnvironment("reasoning-client");
    client = await ReasoningClient.connect({ redisUrl: env.redisUrl, queuePrefix: env.queuePrefix });
    // Stands in for the reasoner: one answer per symbol, so each test names the outcome it needs.
    worker = new Worker(
      "reasoning",
      async (job) => {
        const symbol = (job.data as { symbol: string }).symbol;
        if (symbol === "FAIL") throw new UnrecoverableError("model refused the request");
        if (symbol === "ODD") return { action: "MAYBE" };
        if (symbol === "SLOW") await slow;
        return decision(job.id!);
      },
      { connection: { url: env.redisUrl, maxRetriesPerRequest: null }, prefix: env.queuePrefix, concurrency: 4 },
    );
    await worker.waitUntilReady();
  });
  afterAll(async () => {
    releaseSlow();
    await worker?.close();
    await client?.close();
    await env?.dispose();
  });

  it("requests a decision and returns it, validated", async () => {
    const id = thinkJobId("agent-1", 1);
    expect(await client.decide(id, payload("AAPL"), { timeoutMs: 10_000 })).toEqual(decision(id));
  });

  it("returns the decision of a run that finished before the wait began", async () => {
    const id = thinkJobId("agent-1", 2);
    await client.decide(id, payload("AAPL"), { timeoutMs: 10_000 });
    const again = await client.request(id, payload("AAPL"));
    expect(await again.decision(10_000)).toEqual(decision(id));
  });

  it("throws ReasoningFailedError, with the run's reason, for a run that failed", async () => {
    const failure = client.decide(thinkJobId("agent-1", 3), payload("FAIL"), { timeoutMs: 10_000 });
    await expect(failure).rejects.toBeInstanceOf(ReasoningFailedError);
    await expect(failure).rejects.toThrow("think job think.agent-1.3 gave no decision: model refused the request");
  });

  it("throws ReasoningFailedError for a result that is not a decision, naming the field", async () => {
    await expect(client.decide(thinkJobId("agent-1", 4), payload("ODD"), { timeoutMs: 10_000 })).rejects.toThrow(
      expect.objectContaining({ name: "ReasoningFailedError", message: expect.stringMatching(/returned something that is not a decision \(unexpected result: action: /) as unknown }),
    );
  });

  it("throws ReasoningTimeoutError when no decision comes in time", async () => {
    await expect(client.decide(thinkJobId("agent-1", 5), payload("SLOW"), { timeoutMs: 200 })).rejects.toBeInstanceOf(ReasoningTimeoutError);
  });

  it("throws DecisionRequestError for a job the reasoner would refuse, queuing nothing", async () => {
    await expect(client.request("42", payload("AAPL"))).rejects.toBeInstanceOf(DecisionRequestError);
    await expect(client.request(thinkJobId("agent-1", 6), { ...payload("AAPL"), maxIterations: 1 })).rejects.toBeInstanceOf(DecisionRequestError);
  });
});
