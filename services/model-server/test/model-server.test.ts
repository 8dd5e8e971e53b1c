import Anthropic, { OverloadedError, RateLimitError } from "@anthropic-ai/sdk";
import { describe, expect, it } from "vitest";
import { createModelServer } from "../src/server.js";
import { body, useModelServer } from "./support.js";

describe("local model server", () => {
  const running = useModelServer();

  const post = (payload: unknown, headers: Record<string, string> = { "x-api-key": "any-key" }) =>
    fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", ...headers },
      body: JSON.stringify(payload),
    });


  it("answers the SDK (Authorization: Bearer) with a tool_use message, stop_reason and usage", async () => {
    const message = await running.sdk.messages.create(body("sdk-session"));
    expect(message).toMatchObject({
      type: "message",
      role: "assistant",
      model: "claude-sonnet-5-5",
      stop_reason: "tool_use",
      content: [
        { type: "text", text: expect.any(String) },
        { type: "tool_use", id: expect.stringMatching(/^toolu_/), name: "analyze_market", input: { lookback: 20 } },
      ],
      usage: { input_tokens: expect.any(Number), output_tokens: expect.any(Number) },
    });
    expect(message.usage.input_tokens).toBeGreaterThan(0);
  });

  it("accepts the x-api-key header and any anthropic-version", async () => {
    const response = await post(body("x-api-key-session"), { "x-api-key": "sk-anything", "anthropic-version": "2026-10-21" });
    expect(response.status).toBe(200);
    expect(response.headers.get("request-id")).toMatch(/^req_local_/);
  });

  it("refuses a call without a key with the API's authentication_error shape", async () => {
    const response = await post(body("no-key"), {});
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({
      type: "error",
      error: { type: "authentication_error", message: "missing API key: send x-api-key or Authorization: Bearer" },
      request_id: response.headers.get("request-id"),
    });
  });

  it("refuses a wrong key, on the API and the admin routes, when it is configured with one", async () => {
    const guarded = createModelServer({ latencyMs: 0, apiKey: "right-key" });
    const port = await guarded.listen(0);
    try {
      const wrong = new Anthropic({ apiKey: "wrong-key", baseURL: `http://127.0.0.1:${port}`, maxRetries: 0 });
      await expect(wrong.messages.create(body("guarded"))).rejects.toMatchObject({ status: 401, type: "authentication_error" });
      const right = new Anthropic({ apiKey: "right-key", baseURL: `http://127.0.0.1:${port}`, maxRetries: 0 });
      await expect(right.messages.create(body("guarded"))).resolves.toMatchObject({ stop_reason: "tool_use" });
      expect((await fetch(`http://127.0.0.1:${port}/admin/calls`)).status).toBe(401);
      expect((await fetch(`http://127.0.0.1:${port}/admin/calls`, { headers: { "x-api-key": "right-key" } })).status).toBe(200);
    } finally {
      await guarded.close();
    }
  });

  it("refuses an invalid request with invalid_request_error naming the field", async () => {
    const { max_tokens: _omitted, ...incomplete } = body("invalid");
    const response = await post(incomplete);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error", message: expect.stringMatching(/^max_tokens:/) } });
  });

  it("refuses a tool_use that is not answered by a tool_result in the next turn", async () => {
    const response = await post({
      ...body("unanswered"),
      messages: [
        { role: "user", content: "Iteration 1 of 4" },
        { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "analyze_market", input: {} }] },
        { role: "user", content: [{ type: "text", text: "Iteration 2 of 4" }] },
      ],
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toBe(
      "messages.2: tool_use ids were found without tool_result blocks immediately after: toolu_1",
    );
  });

  it("injects a 429 with retry-after-ms and a 529 with retry-after, which the SDK maps to its error classes", async () => {
    running.server.faults.add({ status: 429, count: 1, retryAfterMs: 1234, sessionId: "faulty" });
    running.server.faults.add({ status: 529, count: 1, retryAfterSeconds: 2, sessionId: "faulty" });

    const limited = await running.sdk.messages.create(body("faulty")).catch((error: unknown) => error);
    expect(limited).toBeInstanceOf(RateLimitError);
    expect((limited as RateLimitError).headers.get("retry-after-ms")).toBe("1234");
    expect((limited as RateLimitError).type).toBe("rate_limit_error");

    const overloaded = await running.sdk.messages.create(body("faulty")).catch((error: unknown) => error);
    expect(overloaded).toBeInstanceOf(OverloadedError);
    expect((overloaded as OverloadedError).status).toBe(529);
    expect((overloaded as OverloadedError).headers.get("retry-after")).toBe("2");

    await expect(running.sdk.messages.create(body("faulty"))).resolves.toMatchObject({ stop_reason: "tool_use" });
    expect(running.server.ledger.session("faulty")).toMatchObject({ calls: 3, failed: 2, answered: 1 });
  });

  it("takes the configured latency and counts a call the client abandons as aborted", async () => {
    running.server.latencyMs = 300;
    const started = Date.now();
    await running.sdk.messages.create(body("slow"));
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);

    running.server.latencyMs = 10_000;
    const controller = new AbortController();
    const call = running.sdk.messages.create(body("slow", { messages: [{ role: "user", content: "Iteration 2 of 4: call exactly one tool." }] }), { signal: controller.signal });
    await expect.poll(() => running.server.ledger.session("slow").calls).toBe(2);
    controller.abort();
    await expect(call).rejects.toThrow();
    await expect.poll(() => running.server.ledger.session("slow")).toMatchObject({ calls: 2, answered: 1, aborted: 1, answeredByIteration: { 1: 1 } });
  });

  it("exposes per-session call counts on its admin route, counting a repeated iteration", async () => {
    await running.sdk.messages.create(body("counted"));
    await running.sdk.messages.create(body("counted"));
    const response = await fetch(`${running.url}/admin/calls/counted`);
    expect(await response.json()).toEqual({ calls: 2, streamed: 0, answered: 2, aborted: 0, failed: 0, answeredByIteration: { 1: 2 }, repeated: 1 });
  });

  it("forces the named tool when tool_choice names one", async () => {
    const message = await running.sdk.messages.create({ ...body("forced"), tool_choice: { type: "tool", name: "decide" } });
    expect(message.content.at(-1)).toMatchObject({ type: "tool_use", name: "decide", input: { action: "HOLD", confidence: 0.5 } });
  });
});
