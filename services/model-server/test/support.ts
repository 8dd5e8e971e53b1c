import Anthropic from "@anthropic-ai/sdk";
import type { MessageCreateParamsNonStreaming } from "@anthropic-ai/sdk/resources/messages";
import { afterAll, beforeAll, beforeEach } from "vitest";
import { createModelServer, type ModelServer } from "../src/server.js";

/** The reasoner's two tools, as it declares them. */
const tools = [
  { name: "analyze_market", description: "market", input_schema: { type: "object" as const, properties: {} } },
  { name: "decide", description: "decide", input_schema: { type: "object" as const, properties: {} } },
];

/** A request shaped as the reasoner sends one: its tools, a tool required, the session in metadata.user_id. */
export const body = (userId: string, overrides: Partial<MessageCreateParamsNonStreaming> = {}): MessageCreateParamsNonStreaming => ({
  model: "claude-sonnet-5-5",
  max_tokens: 512,
  messages: [{ role: "user", content: "Decide.\nIteration 1 of 4: call exactly one tool." }],
  tools,
  tool_choice: { type: "any" },
  metadata: { user_id: userId },
  ...overrides,
});

/**
 * For a describe block: a model server without latency on a port of its own, the SDK pointed at it without
 * retries, and the server's latency and faults reset before each test. Read the fields inside the tests.
 */
export function useModelServer(options: { sdkTimeoutMs?: number } = {}): { server: ModelServer; url: string; sdk: Anthropic } {
  const running = {} as { server: ModelServer; url: string; sdk: Anthropic };
  beforeAll(async () => {
    running.server = createModelServer({ latencyMs: 0 });
    running.url = `http://127.0.0.1:${await running.server.listen(0)}`;
    running.sdk = new Anthropic({ apiKey: "placeholder", baseURL: running.url, maxRetries: 0, ...(options.sdkTimeoutMs ? { timeout: options.sdkTimeoutMs } : {}) });
  });
  afterAll(async () => {
    await running.server?.close();
  });
  beforeEach(() => {
    running.server.latencyMs = 0;
    running.server.faults.clear();
  });
  return running;
}
