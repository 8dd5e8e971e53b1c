import { BadRequestError, NotFoundError } from "@anthropic-ai/sdk";
import { describe, expect, it } from "vitest";
import { KNOWN_MODELS } from "../src/known-models.js";
import { body, useModelServer } from "./support.js";

describe("local model server, as strict as the Messages API", () => {
  const running = useModelServer({ sdkTimeoutMs: 30_000 });

  const post = async (payload: unknown) => {
    const response = await fetch(`${running.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "any-key" },
      body: JSON.stringify(payload),
    });
    return { status: response.status, body: (await response.json()) as { error?: { type: string; message: string } } };
  };


  it("answers for the reasoner's default model and refuses an unknown one with 404 not_found_error", async () => {
    expect(KNOWN_MODELS.has("claude-sonnet-5-5")).toBe(true);
    await expect(running.sdk.messages.create(body("known"))).resolves.toMatchObject({ model: "claude-sonnet-5-5" });
    const typo = await running.sdk.messages.create(body("typo", { model: "claude-sonet-5-5" })).catch((error: unknown) => error);
    expect(typo).toBeInstanceOf(NotFoundError);
    expect(typo).toMatchObject({ status: 404, type: "not_found_error", error: { error: { type: "not_found_error", message: "model: claude-sonet-5-5" } } });
    expect(running.server.ledger.session("typo").calls).toBe(0);
  });

  it("bounds max_tokens by the model's limit with 400 invalid_request_error", async () => {
    const limit = KNOWN_MODELS.get("claude-opus-4-5")!.maxTokens;
    await expect(running.sdk.messages.create(body("bounded", { model: "claude-opus-4-5", max_tokens: limit }))).resolves.toMatchObject({ type: "message" });
    const tooMany = await running.sdk.messages.create(body("bounded", { model: "claude-opus-4-5", max_tokens: 10_000_000 })).catch((error: unknown) => error);
    expect(tooMany).toBeInstanceOf(BadRequestError);
    expect((tooMany as BadRequestError).error).toMatchObject({
      error: { type: "invalid_request_error", message: `max_tokens: 10000000 > ${limit}, which is the maximum allowed number of output tokens for claude-opus-4-5` },
    });
  });

  it("stops at the first stop sequence it writes, with stop_reason stop_sequence and the sequence named", async () => {
    // The analyst's first move is prefaced with "Let me look at the market first."
    const stopped = await running.sdk.messages.create(body("stopped", { stop_sequences: ["first", "market"] }));
    expect(stopped).toMatchObject({ stop_reason: "stop_sequence", stop_sequence: "market", content: [{ type: "text", text: "Let me look at the " }] });
    expect(stopped.content).toHaveLength(1);

    const unmatched = await running.sdk.messages.create(body("unmatched", { stop_sequences: ["no such words"] }));
    expect(unmatched).toMatchObject({ stop_reason: "tool_use", stop_sequence: null });
    expect(unmatched.content.at(-1)).toMatchObject({ type: "tool_use" });

    expect((await post({ ...body("empty-stop"), stop_sequences: [""] })).status).toBe(400);
  });

  it("refuses a content block type the API does not know, naming the tag", async () => {
    const refused = await post({ ...body("unknown-block"), messages: [{ role: "user", content: [{ type: "txt", text: "Iteration 1 of 4" }] }] });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ type: "invalid_request_error", message: expect.stringMatching(/^messages\.0\.content\.0\.type: Input tag 'txt' found using 'type'/) });

    const extraField = await post({ ...body("extra-field"), messages: [{ role: "user", content: [{ type: "text", text: "Iteration 1 of 4", colour: "red" }] }] });
    expect(extraField).toMatchObject({ status: 400, body: { error: { message: expect.stringContaining("colour") } } });
    const extraParameter = await post({ ...body("extra-parameter"), temprature: 0.2 });
    expect(extraParameter).toMatchObject({ status: 400, body: { error: { message: expect.stringContaining("temprature") } } });
  });

  it("refuses a tool_result whose tool_use_id no tool_use of the previous message has", async () => {
    const first = await running.sdk.messages.create(body("tool-ids"));
    const toolUse = first.content.find((block) => block.type === "tool_use")!;
    const answered = (toolUseId: string) =>
      post({
        ...body("tool-ids"),
        messages: [
          { role: "user", content: "Decide.\nIteration 1 of 4: call exactly one tool." },
          { role: "assistant", content: first.content },
          { role: "user", content: [{ type: "tool_result", tool_use_id: toolUseId, content: "{}" }, { type: "text", text: "Iteration 2 of 4" }] },
        ],
      });
    expect((await answered(toolUse.id)).status).toBe(200);
    const unknown = await answered("toolu_01NotAskedForByTheModel");
    expect(unknown.status).toBe(400);
    expect(unknown.body.error?.message).toBe(
      "messages.2.content: unexpected tool_use_id found in tool_result blocks: toolu_01NotAskedForByTheModel. Each tool_result block must have a corresponding tool_use block in the previous message.",
    );
    const inFirstTurn = await post({ ...body("tool-ids"), messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: toolUse.id, content: "{}" }] }] });
    expect(inFirstTurn.status).toBe(400);
  });

  it("gives every tool call its own toolu_ id, across sessions and for the same conversation asked twice", async () => {
    const ids: string[] = [];
    for (const session of ["a", "b", "a", "a"]) {
      const message = await running.sdk.messages.create(body(`unique-${session}`));
      ids.push(...message.content.flatMap((block) => (block.type === "tool_use" ? [block.id] : [])));
      expect(message.id).toMatch(/^msg_01[0-9A-Za-z]{22}$/);
    }
    expect(ids).toHaveLength(4);
    for (const id of ids) expect(id).toMatch(/^toolu_01[0-9A-Za-z]{22}$/);
    expect(new Set(ids).size).toBe(4);
  });

  it("combines consecutive turns of one role into one, as the API does, instead of refusing them", async () => {
    const first = await running.sdk.messages.create(body("combined"));
    const toolUse = first.content.find((block) => block.type === "tool_use")!;
    const answered = await post({
      ...body("combined"),
      messages: [
        { role: "user", content: "Decide." },
        { role: "user", content: "Iteration 1 of 4: call exactly one tool." },
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: toolUse.id, content: "{}" }] },
        { role: "user", content: "Iteration 2 of 4: call exactly one tool." },
      ],
    });
    expect(answered.status).toBe(200);
  });
});
