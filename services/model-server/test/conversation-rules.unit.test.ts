import { describe, expect, it } from "vitest";
import { combineTurns, conversationProblem, type MessagesRequest, type RequestMessage } from "../src/messages-api.js";

const user = (...content: RequestMessage["content"]): RequestMessage => ({ role: "user", content });
const assistant = (...content: RequestMessage["content"]): RequestMessage => ({ role: "assistant", content });
const text = (value: string) => ({ type: "text" as const, text: value });
const toolUse = (id: string) => ({ type: "tool_use" as const, id, name: "quote", input: {} });
const toolResult = (id: string) => ({ type: "tool_result" as const, tool_use_id: id, content: "ok" });
const request = (messages: RequestMessage[], fields: Partial<MessagesRequest> = {}) =>
  ({ model: "claude-sonnet-5-5", max_tokens: 100, messages, tools: [{ name: "quote", input_schema: { type: "object" } }], ...fields }) as MessagesRequest;

describe("the Messages API's conversation rules", () => {
  it("combines consecutive turns of one role into one, as the API documents", () => {
    expect(combineTurns(request([user(text("a")), user(text("b")), assistant(text("c")), assistant(toolUse("t1")), user(toolResult("t1"))])).messages).toEqual([
      user(text("a"), text("b")),
      assistant(text("c"), toolUse("t1")),
      user(toolResult("t1")),
    ]);
  });

  it.each([
    { name: "a well-formed tool exchange", messages: [user(text("go")), assistant(toolUse("t1")), user(toolResult("t1"), text("next"))], fields: {}, problem: undefined },
    { name: "an assistant turn first", messages: [assistant(text("hi"))], fields: {}, problem: "messages.0.role: the first message must use the user role" },
    { name: "tool_choice naming a tool not offered", messages: [user(text("go"))], fields: { tool_choice: { type: "tool", name: "decide" } }, problem: 'tool_choice.name: "decide" is not one of the tools offered' },
    { name: "tool_choice any without tools", messages: [user(text("go"))], fields: { tools: [], tool_choice: { type: "any" } }, problem: 'tool_choice.type: "any" needs tools' },
    { name: "a tool_use from the user", messages: [user(toolUse("t1"))], fields: {}, problem: "messages.0.content.0: tool_use blocks can only be in assistant messages" },
    { name: "a tool_result from the assistant", messages: [user(text("go")), assistant(toolResult("t1"))], fields: {}, problem: "messages.1.content.0: tool_result blocks can only be in user messages" },
    { name: "a tool_use id used twice", messages: [user(text("go")), assistant(toolUse("t1")), user(toolResult("t1")), assistant(toolUse("t1"))], fields: {}, problem: "messages.3.content.0: tool_use ids must be unique; t1 appears twice" },
    {
      name: "a tool_result for no tool_use of the turn before",
      messages: [user(text("go")), assistant(toolUse("t1")), user(toolResult("t1"), toolResult("t9"))],
      fields: {},
      problem: "messages.2.content: unexpected tool_use_id found in tool_result blocks: t9. Each tool_result block must have a corresponding tool_use block in the previous message.",
    },
    { name: "a tool_use left unanswered", messages: [user(text("go")), assistant(toolUse("t1")), user(text("never mind"))], fields: {}, problem: "messages.2: tool_use ids were found without tool_result blocks immediately after: t1" },
  ])("$name: $problem", ({ messages, fields, problem }) => {
    expect(conversationProblem(request(messages, fields as Partial<MessagesRequest>))).toBe(problem);
  });
});
