import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ChainOfThought, RunInterruptedError, type RunOutcome } from "../src/engine/chain-of-thought.js";
import { emptyThinkingState, foldSteps, type ThinkingState } from "../src/engine/thinking-state.js";
import type { ThoughtStep } from "../src/engine/thought-step.js";
import { ModelRequestError } from "../src/model/reasoning-model.js";
import { createModelServer, type ModelServer } from "@savepoint/model-server";
import { marketAnalysisTool } from "../src/tools/market-analysis.js";
import { JobContextMarketData, type MarketSnapshot } from "../src/tools/market-data.js";
import { LessonBook, memoryRecallTool } from "../src/tools/memory-recall.js";
import { positionLookupTool } from "../src/tools/position-lookup.js";
import { market, startModelServer, testModel } from "./support.js";

/**
 * The chain of thought on the local model server through the real Anthropic adapter: its analyst's chain,
 * retries and timeouts over HTTP, an aborted request, a refused key. Every branch of the loop itself is in
 * chain-of-thought.unit.test.ts, on a scripted model.
 */
describe("chain of thought on the local model server", () => {
  let server: ModelServer;
  let url: string;
  let snapshot: MarketSnapshot;
  let sessions = 0;

  const engine = (options: { timeoutMs?: number; maxRetries?: number } = {}) =>
    new ChainOfThought(testModel(url, options), [marketAnalysisTool, positionLookupTool, memoryRecallTool(new LessonBook())],
    );

  async function run(
    sessionId: string,
    maxIterations: number,
    restored: ThinkingState = emptyThinkingState(),
    signal = new AbortController().signal,
    chain = engine(),
  ): Promise<RunOutcome & { reported: ThoughtStep[] }> {
    const reported: ThoughtStep[] = [];
    const outcome = await chain.run(
      { sessionId, agentId: "agent-7", symbol: "AAPL", maxIterations, market: snapshot, restored },
      { signal, onStep: async (step) => void reported.push(step) },
    );
    return { ...outcome, reported };
  }
  const nextSession = () => `engine-${process.pid}-${++sessions}`;

  beforeAll(async () => {
    ({ server, url } = await startModelServer(0));
    snapshot = await new JobContextMarketData().refresh("AAPL", market());
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(() => {
    server.latencyMs = 0;
    server.faults.clear();
  });

  it("reaches a decision within maxIterations, reporting every iteration in order", async () => {
    const sessionId = nextSession();
    const outcome = await run(sessionId, 12);

    expect(outcome.limitReached).toBe(false);
    expect(outcome.reported.map((step) => step.iteration)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(outcome.reported.map((step) => step.type)).toEqual([
      "tool", "tool", "tool", "question", "question", "question", "question", "options", "evaluation", "evaluation", "evaluation", "decision",
    ]);
    expect(outcome.decision).toEqual(outcome.reported.at(-1)!.decision);
    expect(outcome.decision.action).toBe("OPEN_LONG");
    expect(outcome.modelCalls).toBe(12);
    expect(server.ledger.session(sessionId)).toMatchObject({ calls: 12, answered: 12, repeated: 0 });
    // Memories, tool results and questions are what a resumed run gets back from the steps.
    expect(outcome.state.memories.length).toBeGreaterThan(0);
    expect(outcome.state.toolResults.map((entry) => entry.tool)).toEqual(["analyze_market", "lookup_position", "recall_memories"]);
    expect(outcome.state.questions).toHaveLength(4);
  });

  it("resumes from restored steps with only the remaining calls and reaches the same decision", async () => {
    const whole = await run(nextSession(), 12);
    const sessionId = nextSession();
    const resumed = await run(sessionId, 12, foldSteps(whole.reported.slice(0, 5)));

    expect(resumed.reported.map((step) => step.iteration)).toEqual([6, 7, 8, 9, 10, 11, 12]);
    expect(resumed.modelCalls).toBe(7);
    expect(resumed.decision).toEqual(whole.decision);
    expect(server.ledger.session(sessionId).answeredByIteration).toEqual({ 6: 1, 7: 1, 8: 1, 9: 1, 10: 1, 11: 1, 12: 1 });
  });

  it("retries 429 and 529 answers after the wait the server asks for, and records each retry in the step", async () => {
    const sessionId = nextSession();
    server.faults.add({ status: 429, count: 1, retryAfterMs: 40, sessionId });
    server.faults.add({ status: 529, count: 1, retryAfterSeconds: 0, sessionId });
    const outcome = await run(sessionId, 3);

    expect(outcome.reported[0]!.model.calls).toBe(3);
    expect(outcome.reported[0]!.model.retries).toEqual([
      { attempt: 1, reason: "rate_limited", status: 429, requestId: expect.stringMatching(/^req_local_/), waitMs: 40 },
      { attempt: 2, reason: "overloaded", status: 529, requestId: expect.stringMatching(/^req_local_/), waitMs: 0 },
    ]);
    expect(outcome.modelCalls).toBe(5);
    expect(server.ledger.session(sessionId)).toMatchObject({ calls: 5, failed: 2, answered: 3 });
  });

  it("retries a call that runs past its timeout, and records it as a timeout", async () => {
    const sessionId = nextSession();
    server.faults.add({ hangMs: 3_000, count: 1, sessionId });
    const outcome = await run(sessionId, 3, emptyThinkingState(), undefined, engine({ timeoutMs: 300 }));

    expect(outcome.reported[0]!.model.retries).toEqual([expect.objectContaining({ attempt: 1, reason: "timeout", status: null })]);
    expect(outcome.decision.action).toBeDefined();
  });

  it("stops at once when aborted during a model call, without recording the iteration in flight", async () => {
    const sessionId = nextSession();
    server.latencyMs = 10_000;
    const controller = new AbortController();
    const started = Date.now();
    const running = run(sessionId, 5, emptyThinkingState(), controller.signal);
    await expect.poll(() => server.ledger.session(sessionId).calls).toBe(1);
    controller.abort(new Error("shutdown"));

    const error = await running.catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(RunInterruptedError);
    expect((error as RunInterruptedError).atIteration).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect.poll(() => server.ledger.session(sessionId)).toMatchObject({ calls: 1, aborted: 1, answered: 0 });
  });

  it("does not retry a request the API refuses (401), and names the settings to check", async () => {
    const guarded = createModelServer({ latencyMs: 0, apiKey: "the-right-key" });
    const port = await guarded.listen(0);
    const outcomes: string[] = [];
    try {
      const model = testModel(`http://127.0.0.1:${port}`, { apiKey: "a-wrong-key", onCall: (outcome) => outcomes.push(outcome) });
      const refused = new ChainOfThought(model, [marketAnalysisTool]).run(
        { sessionId: nextSession(), agentId: "agent-7", symbol: "AAPL", maxIterations: 3, market: snapshot, restored: emptyThinkingState() },
        { signal: new AbortController().signal, onStep: async () => undefined },
      );
      await expect(refused).rejects.toThrow(ModelRequestError);
      await expect(refused).rejects.toThrow(/status 401.*check ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL and ANTHROPIC_MODEL/);
      expect(outcomes).toEqual(["failed"]);
    } finally {
      await guarded.close();
    }
  });

  it("makes the last iteration a decision, whatever the plan", async () => {
    const outcome = await run(nextSession(), 3);
    expect(outcome.reported.map((step) => step.type)).toEqual(["tool", "options", "decision"]);
  });
});
