import Anthropic, { AuthenticationError, NotFoundError } from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KNOWN_MODELS } from "../src/known-models.js";
import { createModelServer, type ModelServer } from "../src/server.js";

describe("local model server's Models API, through the SDK", () => {
  let server: ModelServer;
  let url: string;
  const sdk = (apiKey: string) => new Anthropic({ apiKey, baseURL: url, maxRetries: 0, timeout: 30_000 });

  beforeAll(async () => {
    server = createModelServer({ latencyMs: 60_000, apiKey: "the-server-key" });
    url = `http://127.0.0.1:${await server.listen(0)}`;
  });
  afterAll(async () => {
    await server?.close();
  });

  it("retrieves a known model with the API's fields, at once whatever the call latency", async () => {
    const info = await sdk("the-server-key").models.retrieve("claude-sonnet-4-5-20250929");
    expect(info).toMatchObject({
      type: "model",
      id: "claude-sonnet-4-5-20250929",
      display_name: "Claude Sonnet 4.5",
      created_at: "1970-01-01T00:00:00.000Z",
      max_tokens: KNOWN_MODELS.get("claude-sonnet-4-5-20250929")!.maxTokens,
    });
    expect(Number.isNaN(Date.parse(info.created_at))).toBe(false);
  });

  it("refuses an unknown id with 404 not_found_error, and a wrong or missing key with 401", async () => {
    const unknown = await sdk("the-server-key").models.retrieve("claude-sonet-5-5").catch((error: unknown) => error);
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect(unknown).toMatchObject({ status: 404, error: { type: "error", error: { type: "not_found_error", message: "model: claude-sonet-5-5" } } });

    const wrongKey = await sdk("another-key").models.retrieve("claude-sonnet-5-5").catch((error: unknown) => error);
    expect(wrongKey).toBeInstanceOf(AuthenticationError);
    expect(wrongKey).toMatchObject({ status: 401, error: { error: { type: "authentication_error" } } });
    const missing = await fetch(`${url}/v1/models`);
    expect(missing.status).toBe(401);
  });

  it("lists every model in pages the SDK walks, with data, has_more, first_id and last_id", async () => {
    const client = sdk("the-server-key");
    const first = await client.models.list({ limit: 5 });
    expect(first.data.map((model) => model.id)).toEqual([...KNOWN_MODELS.keys()].slice(0, 5));
    expect(first).toMatchObject({ has_more: true, first_id: first.data[0]!.id, last_id: first.data[4]!.id });

    const walked: string[] = [];
    for await (const model of client.models.list({ limit: 7 })) walked.push(model.id);
    expect(walked).toEqual([...KNOWN_MODELS.keys()]);

    const before = await client.models.list({ limit: 2, before_id: first.data[3]!.id });
    expect(before.data.map((model) => model.id)).toEqual([first.data[1]!.id, first.data[2]!.id]);
    expect(before.has_more).toBe(true);

    const tooMany = await fetch(`${url}/v1/models?limit=1001`, { headers: { "x-api-key": "the-server-key" } });
    expect(tooMany.status).toBe(400);
  });
});
