import { randomBytes } from "node:crypto";
import { z } from "zod";

/**
 * The slice of the Messages API wire format the local model server speaks. Requests are checked the way the
 * API checks them: only the fields `MessageCreateParams` of `@anthropic-ai/sdk` 1.12.0 has (the API refuses
 * extra inputs), only the content block types `ContentBlockParam` lists, tool_use answered by tool_result and
 * tool_result answering a tool_use. Answers, stream events and errors have the API's shapes.
 */

/** `Input tag 'x' found using 'type' does not match any of the expected tags: …`, as the API words it. */
function tagged<const Options extends readonly [z.ZodObject<{ type: z.ZodLiteral<string> }>, ...Array<z.ZodObject<{ type: z.ZodLiteral<string> }>>]>(
  options: Options,
) {
  const tags = options.map((option) => `'${option.shape.type.value}'`).join(", ");
  return z.discriminatedUnion("type", options, {
    error: (issue) => {
      if (issue.code !== "invalid_union" || !("note" in issue) || issue.note !== "No matching discriminator") return undefined;
      const tag = (issue.input as { type?: unknown } | undefined)?.type;
      return `Input tag '${String(tag)}' found using 'type' does not match any of the expected tags: ${tags}`;
    },
  });
}

const cacheControl = z.looseObject({ type: z.literal("ephemeral") }).nullable().optional();
const textBlock = z.strictObject({
  type: z.literal("text"),
  text: z.string(),
  cache_control: cacheControl,
  citations: z.array(z.looseObject({ type: z.string() })).nullable().optional(),
});
const toolUseBlock = z.strictObject({
  type: z.literal("tool_use"),
  id: z.string().min(1),
  name: z.string().min(1),
  input: z.record(z.string(), z.unknown()),
  cache_control: cacheControl,
  caller: z.looseObject({ type: z.string() }).optional(),
  toolset_name: z.string().nullable().optional(),
});
/**
 * Block types the API accepts that the analyst never reads (images, documents, thinking, server tools): their
 * type is checked, their fields are not. A shortcut, as the analyst cannot look at them anyway.
 */
const unread = <const T extends string>(type: T) => z.looseObject({ type: z.literal(type) });
const toolResultBlock = z.strictObject({
  type: z.literal("tool_result"),
  tool_use_id: z.string().min(1),
  content: z
    .union([
      z.string(),
      z.array(tagged([textBlock, unread("image"), unread("search_result"), unread("document"), unread("tool_reference"), unread("browser_state")])),
    ])
    .optional(),
  is_error: z.boolean().optional(),
  cache_control: cacheControl,
  toolset_name: z.string().nullable().optional(),
});
const requestBlock = tagged([
  textBlock,
  toolUseBlock,
  toolResultBlock,
  unread("image"),
  unread("document"),
  unread("search_result"),
  unread("thinking"),
  unread("redacted_thinking"),
  unread("server_tool_use"),
  unread("web_search_tool_result"),
  unread("web_fetch_tool_result"),
  unread("code_execution_tool_result"),
  unread("bash_code_execution_tool_result"),
  unread("text_editor_code_execution_tool_result"),
  unread("tool_search_tool_result"),
  unread("container_upload"),
]);

/** A plain-string content is one text block: read it as such, so every message's content is a list. */
const content = z.preprocess(
  (value) => (typeof value === "string" ? [{ type: "text", text: value }] : value),
  z.array(requestBlock, { error: "must be a string or a list of content blocks" }).min(1, "must not be empty"),
);

export const messagesRequestSchema = z.strictObject({
  model: z.string().min(1, "must name a model"),
  max_tokens: z.number().int().min(1, "must be ≥ 1"),
  messages: z.array(z.strictObject({ role: z.enum(["user", "assistant"]), content })).min(1, "must hold at least one message"),
  system: z.union([z.string(), z.array(textBlock)]).optional(),
  tools: z.array(z.looseObject({ name: z.string().min(1), input_schema: z.looseObject({ type: z.literal("object") }) })).optional(),
  tool_choice: z
    .strictObject({ type: z.enum(["auto", "any", "tool", "none"]), name: z.string().optional(), disable_parallel_tool_use: z.boolean().optional() })
    .optional(),
  metadata: z.strictObject({ user_id: z.string().nullable().optional() }).optional(),
  stream: z.boolean().optional(),
  /** The API stops at the first of these the model writes; an empty one could never be told from no text. */
  stop_sequences: z.array(z.string().min(1, "stop sequences must not be empty")).optional(),
  // Accepted as the API accepts them, without effect on the analyst.
  cache_control: cacheControl,
  container: z.unknown().optional(),
  diagnostics: z.unknown().optional(),
  inference_geo: z.string().nullable().optional(),
  output_config: z.looseObject({}).optional(),
  service_tier: z.enum(["auto", "standard_only"]).optional(),
  speed: z.enum(["standard", "fast"]).nullable().optional(),
  thinking: z.looseObject({ type: z.string() }).optional(),
  user_profile_id: z.string().optional(),
  workspace_id: z.string().optional(),
});
export type MessagesRequest = z.infer<typeof messagesRequestSchema>;
export type RequestMessage = MessagesRequest["messages"][number];
export type RequestBlock = RequestMessage["content"][number];
export type ToolResultBlock = z.infer<typeof toolResultBlock>;

/**
 * The conversation as the model sees it: the API combines consecutive turns of one role into a single turn
 * (Messages API docs: "Consecutive user or assistant turns in your request will be combined into a single
 * turn"), so they are accepted, not refused.
 */
export function combineTurns(request: MessagesRequest): MessagesRequest {
  const messages: RequestMessage[] = [];
  for (const message of request.messages) {
    const last = messages.at(-1);
    if (last?.role === message.role) messages[messages.length - 1] = { role: last.role, content: [...last.content, ...message.content] };
    else messages.push(message);
  }
  return { ...request, messages };
}

/** What the API would refuse in a structurally valid request (its turns combined), or undefined. */
export function conversationProblem(request: MessagesRequest): string | undefined {
  if (request.messages[0]?.role !== "user") return "messages.0.role: the first message must use the user role";
  const toolNames = new Set((request.tools ?? []).map((tool) => tool.name));
  const choice = request.tool_choice;
  if (choice?.type === "tool" && (!choice.name || !toolNames.has(choice.name))) {
    return `tool_choice.name: "${choice.name ?? ""}" is not one of the tools offered`;
  }
  if ((choice?.type === "any" || choice?.type === "tool") && toolNames.size === 0) {
    return `tool_choice.type: "${choice.type}" needs tools`;
  }
  const toolUseIds = new Set<string>();
  for (const [index, message] of request.messages.entries()) {
    const previous = request.messages[index - 1];
    for (const [position, block] of message.content.entries()) {
      if (block.type === "tool_use" && message.role !== "assistant") return `messages.${index}.content.${position}: tool_use blocks can only be in assistant messages`;
      if (block.type === "tool_result" && message.role !== "user") return `messages.${index}.content.${position}: tool_result blocks can only be in user messages`;
      if (block.type === "tool_use") {
        if (toolUseIds.has(block.id)) return `messages.${index}.content.${position}: tool_use ids must be unique; ${block.id} appears twice`;
        toolUseIds.add(block.id);
      }
    }
    const asked = previous?.content.flatMap((block) => (block.type === "tool_use" ? [block.id] : [])) ?? [];
    const answered = new Set(message.content.flatMap((block) => (block.type === "tool_result" ? [block.tool_use_id] : [])));
    const unexpected = [...answered].filter((id) => !asked.includes(id));
    if (unexpected.length) {
      return `messages.${index}.content: unexpected tool_use_id found in tool_result blocks: ${unexpected.join(", ")}. Each tool_result block must have a corresponding tool_use block in the previous message.`;
    }
    const missing = asked.filter((id) => !answered.has(id));
    if (missing.length) return `messages.${index}: tool_use ids were found without tool_result blocks immediately after: ${missing.join(", ")}`;
  }
  return undefined;
}

export type ResponseBlock =
  | { type: "text"; text: string; citations: null }
  | { type: "tool_use"; id: string; name: string; input: Record<string, unknown>; caller: { type: "direct" } };

export type StopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/**
 * An id in the API's form (`msg_01…`, `toolu_01…`: a prefix, "01", 22 base-62 characters), random so that two
 * answers never share one, as on the API, whatever sessions or conversations they belong to.
 */
export function newId(prefix: "msg" | "toolu"): string {
  const bytes = randomBytes(22);
  return `${prefix}_01${Array.from(bytes, (byte) => BASE62[byte % 62]).join("")}`;
}

export interface Usage {
  input: number;
  output: number;
}

function usageOf(usage: Usage) {
  return {
    input_tokens: usage.input,
    output_tokens: usage.output,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    cache_creation: null,
    inference_geo: null,
    output_tokens_details: null,
    server_tool_use: null,
    service_tier: "standard",
    speed: null,
  };
}

export interface GeneratedMessage {
  id: string;
  model: string;
  content: ResponseBlock[];
  stopReason: StopReason;
  stopSequence: string | null;
  usage: Usage;
}

export function messageResponse(message: GeneratedMessage) {
  return {
    id: message.id,
    type: "message" as const,
    role: "assistant" as const,
    model: message.model,
    content: message.content,
    stop_reason: message.stopReason,
    stop_sequence: message.stopSequence,
    stop_details: null,
    container: null,
    diagnostics: null,
    usage: usageOf(message.usage),
  };
}

/** Pieces of about `size` characters, the way a model streams its output a few tokens at a time. */
function pieces(text: string, size: number): string[] {
  const out: string[] = [];
  for (let start = 0; start < text.length; start += size) out.push(text.slice(start, start + size));
  return out;
}

export type StreamEvent = { type: string } & Record<string, unknown>;

/**
 * The server-sent events the API streams for a message, in its order: `message_start` (the message with no
 * content, no stop reason, one output token), then per block `content_block_start`, its deltas (`text_delta`,
 * or `input_json_delta` with the tool input's JSON in pieces) and `content_block_stop`, a `ping` after the
 * first block starts, then `message_delta` (stop reason, stop sequence, output tokens) and `message_stop`.
 */
export function streamEvents(message: GeneratedMessage): StreamEvent[] {
  const events: StreamEvent[] = [
    {
      type: "message_start",
      message: { ...messageResponse(message), content: [], stop_reason: null, stop_sequence: null, usage: usageOf({ input: message.usage.input, output: 1 }) },
    },
  ];
  for (const [index, block] of message.content.entries()) {
    if (block.type === "text") {
      events.push({ type: "content_block_start", index, content_block: { type: "text", text: "", citations: null } });
      if (index === 0) events.push({ type: "ping" });
      for (const text of pieces(block.text, 12)) events.push({ type: "content_block_delta", index, delta: { type: "text_delta", text } });
    } else {
      events.push({ type: "content_block_start", index, content_block: { ...block, input: {} } });
      if (index === 0) events.push({ type: "ping" });
      for (const partial of pieces(JSON.stringify(block.input), 24)) {
        events.push({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: partial } });
      }
    }
    events.push({ type: "content_block_stop", index });
  }
  if (message.content.length === 0) events.push({ type: "ping" });
  events.push({
    type: "message_delta",
    delta: { stop_reason: message.stopReason, stop_sequence: message.stopSequence, stop_details: null, container: null },
    usage: {
      input_tokens: message.usage.input,
      output_tokens: message.usage.output,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens_details: null,
      server_tool_use: null,
    },
  });
  events.push({ type: "message_stop" });
  return events;
}

/** One event on the wire: `event: <type>` and its JSON `data`. */
export const sseFrame = (event: StreamEvent): string => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;

export const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  529: "overloaded_error",
};

export function errorBody(status: number, message: string, requestId: string) {
  return { type: "error" as const, error: { type: ERROR_TYPES[status] ?? "api_error", message }, request_id: requestId };
}

/** Rough token count (about four characters a token), for `usage` and the `max_tokens` budget. */
export const estimateTokens = (value: unknown): number => Math.max(1, Math.ceil(JSON.stringify(value ?? "").length / 4));
