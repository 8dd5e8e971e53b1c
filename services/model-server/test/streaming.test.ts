import type Anthropic from "@anthropic-ai/sdk";
import { APIError, NotFoundError } from "@anthropic-ai/sdk";
import type { RawMessageStreamEvent } from "@anthropic-ai/sdk/resources/messages";
import { describe, expect, it } from "vitest";
import { body, useModelServer } from "./support.js";

/** The event types in order, each delta as `content_block_delta:<delta type>`. */
const sequence = (events: Array<{ type: string; delta?: unknown }>) =>
  events.map((event) => (event.type === "content_block_delta" ? `content_block_delta:${(event.delta as { type: string }).type}` : event.type));

/** Consecutive repeats folded into one, so the shape reads regardless of how many pieces a block came in. */
const folded = (types: string[]) => types.filter((type, index) => type !== types[index - 1]);

const TOOL_TURN = [
  "message_start",
  "content_block_start",
  "content_block_delta:text_delta",
  "content_block_stop",
  "content_block_start",
  "content_block_delta:input_json_delta",
  "content_block_stop",
  "message_delta",
  "message_stop",
];

describe("local model server, streaming over server-sent events", () => {
  const running = useModelServer();

  it("sends the API's event sequence on the wire, ping included", async () => {
    const response = await fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "any-key" },
      body: JSON.stringify({ ...body("wire"), stream: true }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(response.headers.get("request-id")).toMatch(/^req_local_/);
    const frames = (await response.text()).split("\n\n").filter(Boolean);
    const events = frames.map((frame) => {
      const [eventLine, dataLine] = frame.split("\n");
      const data = JSON.parse(dataLine!.replace(/^data: /, "")) as { type: string };
      expect(eventLine).toBe(`event: ${data.type}`);
      return data;
    });
    expect(folded(sequence(events))).toEqual([...TOOL_TURN.slice(0, 2), "ping", ...TOOL_TURN.slice(2)]);
    expect(events[0]).toMatchObject({ type: "message_start", message: { content: [], stop_reason: null, stop_sequence: null, usage: { output_tokens: 1 } } });
  });

  it("messages.stream() assembles the same message as a call that is not streamed", async () => {
    const plain = await running.sdk.messages.create(body("assembled"));
    const stream = running.sdk.messages.stream(body("assembled"));
    const events: RawMessageStreamEvent[] = [];
    stream.on("streamEvent", (event) => events.push(event));
    const streamed = await stream.finalMessage();

    expect(folded(sequence(events))).toEqual(TOOL_TURN);
    const withoutIds = (message: Anthropic.Message) => message.content.map((block) => (block.type === "tool_use" ? { ...block, id: "" } : block));
    expect(withoutIds(streamed)).toEqual(withoutIds(plain));
    expect(streamed).toMatchObject({ model: "claude-sonnet-5-5", stop_reason: "tool_use", stop_sequence: null, usage: { output_tokens: plain.usage.output_tokens } });
    expect(streamed.content[1]).toMatchObject({ type: "tool_use", id: expect.stringMatching(/^toolu_01/), name: "analyze_market", input: { lookback: 20 } });
    expect(streamed.id).not.toBe(plain.id);
    expect(running.server.ledger.session("assembled")).toMatchObject({ calls: 2, answered: 2 });
  });

  it("messages.create({ stream: true }) yields the raw events, the tool input as input_json_delta pieces", async () => {
    const stream = await running.sdk.messages.create({ ...body("raw", { tool_choice: { type: "tool", name: "decide" } }), stream: true });
    const events: RawMessageStreamEvent[] = [];
    for await (const event of stream) events.push(event);

    expect(folded(sequence(events))).toEqual(TOOL_TURN);
    const json = events.flatMap((event) => (event.type === "content_block_delta" && event.delta.type === "input_json_delta" ? [event.delta.partial_json] : []));
    expect(json.length).toBeGreaterThan(1);
    expect(JSON.parse(json.join(""))).toMatchObject({ action: "HOLD", confidence: 0.5 });
    expect(events.find((event) => event.type === "message_delta")).toMatchObject({ delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: expect.any(Number) } });
  });

  it("streams a stop at a stop sequence: the text before it, stop_reason stop_sequence, the sequence named", async () => {
    const stream = running.sdk.messages.stream(body("stream-stop", { stop_sequences: ["market"] }));
    const message = await stream.finalMessage();
    expect(message).toMatchObject({ stop_reason: "stop_sequence", stop_sequence: "market", content: [{ type: "text", text: "Let me look at the " }] });
  });

  it("refuses an unknown model with 404 before any event, as the API does", async () => {
    await expect(running.sdk.messages.stream(body("stream-typo", { model: "claude-sonnet-5-55" })).finalMessage()).rejects.toBeInstanceOf(NotFoundError);
  });

  it("reports an error arising mid-stream as an error event, which the SDK raises with its type", async () => {
    running.server.faults.add({ status: 529, midStream: true, sessionId: "mid-stream" });
    const stream = await running.sdk.messages.create({ ...body("mid-stream"), stream: true });
    const seen: string[] = [];
    const failure = await (async () => {
      for await (const event of stream) seen.push(event.type);
    })().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(APIError);
    expect(failure).toMatchObject({ type: "overloaded_error", error: { type: "error", error: { type: "overloaded_error" } } });
    expect(seen).toEqual(["message_start", "content_block_start"]);

    running.server.faults.add({ status: 529, midStream: true, sessionId: "mid-stream" });
    await expect(running.sdk.messages.stream(body("mid-stream")).finalMessage()).rejects.toMatchObject({ type: "overloaded_error" });
    expect(running.server.ledger.session("mid-stream")).toMatchObject({ calls: 2, failed: 2, answered: 0 });
  });

  it("spreads its latency over the events and counts a stream the client abandons as aborted", async () => {
    running.server.latencyMs = 5_000;
    const controller = new AbortController();
    const stream = running.sdk.messages.stream(body("abandoned"), { signal: controller.signal });
    const first = new Promise<string>((resolve) => stream.once("streamEvent", (event) => resolve(event.type)));
    expect(await first).toBe("message_start");
    controller.abort();
    await expect(stream.finalMessage()).rejects.toThrow();
    await expect.poll(() => running.server.ledger.session("abandoned")).toMatchObject({ calls: 1, aborted: 1, answered: 0 });
  });

  it("stalls a stream where a fault says, counting it answered once message_delta is out even if the client leaves", async () => {
    running.server.faults.add({ hangMs: 60_000, stallBefore: "message_stop", sessionId: "stalled-late" });
    const late = new AbortController();
    const lateStream = running.sdk.messages.stream(body("stalled-late"), { signal: late.signal });
    const lateEvents: string[] = [];
    lateStream.on("streamEvent", (event) => lateEvents.push(event.type));
    await expect.poll(() => running.server.ledger.session("stalled-late").answered).toBe(1);
    await expect.poll(() => lateEvents.at(-1)).toBe("message_delta");
    late.abort();
    await expect(lateStream.finalMessage()).rejects.toThrow();
    expect(running.server.ledger.session("stalled-late")).toMatchObject({ calls: 1, streamed: 1, answered: 1, aborted: 0 });

    running.server.faults.add({ hangMs: 60_000, stallBefore: "message_delta", sessionId: "stalled-early" });
    const early = new AbortController();
    const earlyStream = running.sdk.messages.stream(body("stalled-early"), { signal: early.signal });
    const earlyEvents: string[] = [];
    earlyStream.on("streamEvent", (event) => earlyEvents.push(event.type));
    await expect.poll(() => earlyEvents.at(-1)).toBe("content_block_stop");
    early.abort();
    await expect(earlyStream.finalMessage()).rejects.toThrow();
    await expect.poll(() => running.server.ledger.session("stalled-early")).toMatchObject({ calls: 1, streamed: 1, answered: 0, aborted: 1 });
  });
});
