import { Writable } from "node:stream";
import { createModelServer, KNOWN_MODELS, type ModelServer } from "@savepoint/model-server";
import { parseEnv, type Logger } from "@savepoint/shared";
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { reasonerEnvSchema } from "../src/config.js";
import { ModelInterruptedError, type ModelTurn, type ModelTurnRequest } from "../src/model/reasoning-model.js";
import { decisionOf, testModel, think, useReasonerStack } from "./support.js";

const request = (sessionId: string): ModelTurnRequest => ({
  system: "You are a trading analyst.",
  messages: [{ role: "user", content: "Decide.\nIteration 1 of 3: call exactly one tool." }],
  tools: [
    { name: "analyze_market", description: "market", input_schema: { type: "object", properties: {} } },
    { name: "decide", description: "decide", input_schema: { type: "object", properties: {} } },
  ],
  toolChoice: { type: "any" },
  sessionId,
});

/** A turn's content with its tool_use ids blanked: ids are unique per answer, the rest is deterministic. */
const withoutIds = (turn: ModelTurn) => turn.content.map((block) => (block.type === "tool_use" ? { ...block, id: "" } : block));

describe("the model adapter with MODEL_STREAMING", () => {
  let server: ModelServer;
  let url: string;
  let sessions = 0;
  const nextSession = () => `streaming-${process.pid}-${++sessions}`;
  const model = (options: { streaming: boolean; timeoutMs?: number; maxRetries?: number; logger?: Logger }) =>
    testModel(url, { maxRetries: 0, maxRetryWaitMs: 1_000, ...options });
  const never = new AbortController().signal;

  beforeAll(async () => {
    server = createModelServer({ latencyMs: 0 });
    url = `http://127.0.0.1:${await server.listen(0)}`;
  });
  afterAll(async () => {
    await server?.close();
  });
  beforeEach(() => {
    server.latencyMs = 0;
    server.faults.clear();
  });

  it("asks by default for a model the model server knows, as the API would", () => {
    expect(KNOWN_MODELS.has(parseEnv(reasonerEnvSchema, {}).ANTHROPIC_MODEL)).toBe(true);
  });

  it("gets the same turn streamed as in one piece", async () => {
    const plainSession = nextSession();
    const streamedSession = nextSession();
    const plain = await model({ streaming: false }).next(request(plainSession), never);
    const streamed = await model({ streaming: true }).next(request(streamedSession), never);

    expect(withoutIds(streamed)).toEqual(withoutIds(plain));
    expect(streamed.content.at(-1)).toMatchObject({ type: "tool_use", name: "analyze_market", input: { lookback: 20 } });
    expect(streamed.usage).toMatchObject({ stopReason: "tool_use", calls: 1, outputTokens: plain.usage.outputTokens });
    expect(server.ledger.session(plainSession)).toMatchObject({ calls: 1, streamed: 0, answered: 1 });
    expect(server.ledger.session(streamedSession)).toMatchObject({ calls: 1, streamed: 1, answered: 1 });
  });

  it("keeps a streamed answer that is complete when the signal lands, though its stream has not ended", async () => {
    const sessionId = nextSession();
    server.faults.add({ hangMs: 60_000, stallBefore: "message_stop", sessionId });
    const shutdown = new AbortController();
    // The adapter's own word that the answer is complete, so the signal lands after that, not merely after the
    // server sent it; a call that fails first ends the wait too, and the failure shows below.
    let answerComplete!: () => void;
    const complete = new Promise<void>((resolve) => (answerComplete = resolve));
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        if ((JSON.parse(chunk.toString()) as { msg?: string }).msg === "streamed answer complete") answerComplete();
        done();
      },
    });
    const call = model({ streaming: true, logger: pino({ level: "debug" }, sink) }).next(request(sessionId), shutdown.signal);
    call.catch(answerComplete);
    await complete;
    shutdown.abort(new Error("shutdown"));

    const turn = await call;
    expect(turn.content.at(-1)).toMatchObject({ type: "tool_use", name: "analyze_market", input: { lookback: 20 } });
    expect(turn.usage.stopReason).toBe("tool_use");
    expect(server.ledger.session(sessionId)).toMatchObject({ calls: 1, answered: 1, aborted: 0 });
  });

  it("keeps a complete streamed answer whose stream then goes quiet past MODEL_TIMEOUT_MS, without asking again", async () => {
    const sessionId = nextSession();
    server.faults.add({ hangMs: 60_000, stallBefore: "message_stop", sessionId });
    const turn = await model({ streaming: true, timeoutMs: 2_000, maxRetries: 2 }).next(request(sessionId), never);

    expect(turn.content.at(-1)).toMatchObject({ type: "tool_use", name: "analyze_market" });
    expect(turn.usage).toMatchObject({ calls: 1, retries: [] });
    expect(server.ledger.session(sessionId)).toMatchObject({ calls: 1, answered: 1 });
  });

  it("is interrupted, and the call counted abandoned, when the signal lands before the answer is complete", async () => {
    const sessionId = nextSession();
    server.faults.add({ hangMs: 60_000, stallBefore: "message_delta", sessionId });
    const shutdown = new AbortController();
    const call = model({ streaming: true }).next(request(sessionId), shutdown.signal);
    await expect.poll(() => server.ledger.session(sessionId).calls).toBe(1);
    shutdown.abort(new Error("shutdown"));

    await expect(call).rejects.toBeInstanceOf(ModelInterruptedError);
    await expect.poll(() => server.ledger.session(sessionId)).toMatchObject({ calls: 1, answered: 0, aborted: 1 });
  });

  it("retries a stream that goes quiet mid-answer past MODEL_TIMEOUT_MS, as a timeout", async () => {
    const sessionId = nextSession();
    server.faults.add({ hangMs: 60_000, stallBefore: "content_block_delta", sessionId });
    const turn = await model({ streaming: true, timeoutMs: 1_500, maxRetries: 1 }).next(request(sessionId), never);

    expect(turn.usage.retries).toEqual([expect.objectContaining({ attempt: 1, reason: "timeout", status: null })]);
    expect(turn.content.at(-1)).toMatchObject({ type: "tool_use", name: "analyze_market" });
  });

  it("retries an overloaded_error that arrives as an error event mid-stream", async () => {
    const sessionId = nextSession();
    server.faults.add({ status: 529, midStream: true, sessionId });
    const turn = await model({ streaming: true, maxRetries: 1 }).next(request(sessionId), never);

    expect(turn.usage.retries).toEqual([expect.objectContaining({ attempt: 1, reason: "overloaded", status: null })]);
    expect(server.ledger.session(sessionId)).toMatchObject({ calls: 2, streamed: 2, failed: 1, answered: 1 });
  });
});

describe("a reasoning run with MODEL_STREAMING on and off", () => {
  const stack = useReasonerStack("reasoner-streaming", { modelLatencyMs: 20 });

  it.each([
    ["true", 1],
    ["false", 0],
  ])("MODEL_STREAMING=%s completes the run with a decision", async (streaming, streamedPerCall) => {
    await stack.startInProcessReasoner({ MODEL_STREAMING: streaming });
    const job = await think(stack.producer.queue, `agent-streaming-${streaming}`, 6);
    const result = await decisionOf(job, stack.producer.events);

    expect(["OPEN_LONG", "OPEN_SHORT", "CLOSE", "HOLD"]).toContain(result.action);
    expect(result.iterations).toBe(6);
    const calls = stack.model.ledger.session(job.id!);
    expect(calls).toMatchObject({ calls: 6, answered: 6, repeated: 0, streamed: 6 * streamedPerCall });
  });
});
