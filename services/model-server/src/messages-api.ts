import { z } from "zod";

/**
 * The slice of the Messages API wire format the local model server speaks: requests are checked the way the
 * API checks them (the fields it needs, tool_use answered by tool_result), answers and errors have its shapes.
 */

const block = z.looseObject({ type: z.string() });
const content = z.union([z.string(), z.array(block).min(1, "must not be empty")]);

export const messagesRequestSchema = z.looseObject({
  model: z.string().min(1, "must name a model"),
  max_tokens: z.number().int().min(1, "must be ≥ 1"),
  messages: z.array(z.strictObject({ role: z.enum(["user", "assistant"]), content })).min(1, "must hold at least one message"),
  system: z.union([z.string(), z.array(z.looseObject({ type: z.literal("text"), text: z.string() }))]).optional(),
  tools: z.array(z.looseObject({ name: z.string().min(1), input_schema: z.looseObject({ type: z.literal("object") }) })).optional(),
  tool_choice: z
    .looseObject({ type: z.enum(["auto", "any", "tool", "none"]), name: z.string().optional(), disable_parallel_tool_use: z.boolean().optional() })
    .optional(),
  metadata: z.looseObject({ user_id: z.string().nullable().optional() }).optional(),
  stream: z.boolean().optional(),
});
export type MessagesRequest = z.infer<typeof messagesRequestSchema>;
export type RequestBlock = z.infer<typeof block>;

export const textOf = (value: unknown): string => (typeof value === "string" ? value : "");

/** The blocks of a message, a plain-string content being one text block. */
export function blocksOf(message: MessagesRequest["messages"][number]): RequestBlock[] {
  return typeof message.content === "string" ? [{ type: "text", text: message.content }] : message.content;
}

/** What the API would refuse in a structurally valid request, or undefined. */
export function conversationProblem(request: MessagesRequest): string | undefined {
  if (request.stream) return "stream: streaming is not supported by the local model server; send stream: false";
  if (request.messages[0]?.role !== "user") return "messages.0.role: the first message must use the user role";
  const toolNames = new Set((request.tools ?? []).map((tool) => tool.name));
  const choice = request.tool_choice;
  if (choice?.type === "tool" && (!choice.name || !toolNames.has(choice.name))) {
    return `tool_choice.name: "${choice.name ?? ""}" is not one of the tools offered`;
  }
  if ((choice?.type === "any" || choice?.type === "tool") && toolNames.size === 0) {
    return `tool_choice.type: "${choice.type}" needs tools`;
  }
  for (const [index, message] of request.messages.entries()) {
    if (index > 0 && request.messages[index - 1]!.role === message.role) {
      return `messages.${index}.role: roles must alternate between "user" and "assistant"`;
    }
    if (message.role !== "assistant") continue;
    const asked = blocksOf(message).filter((b) => b.type === "tool_use").map((b) => String(b.id));
    if (asked.length === 0) continue;
    const next = request.messages[index + 1];
    const answered = new Set(next ? blocksOf(next).filter((b) => b.type === "tool_result").map((b) => String(b.tool_use_id)) : []);
    const missing = asked.filter((id) => !answered.has(id));
    if (next && missing.length) {
      return `messages.${index + 1}: tool_use ids were found without tool_result blocks immediately after: ${missing.join(", ")}`;
    }
  }
  return undefined;
}

export type ResponseBlock =
  | { type: "text"; text: string; citations: null }
  | { type: "tool_use"; id: string; name: string; input: Record<string, unknown>; caller: { type: "direct" } };

export type StopReason = "end_turn" | "max_tokens" | "tool_use";

export function messageResponse(id: string, model: string, content: ResponseBlock[], stopReason: StopReason, usage: { input: number; output: number }) {
  return {
    id,
    type: "message" as const,
    role: "assistant" as const,
    model,
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    stop_details: null,
    container: null,
    diagnostics: null,
    usage: {
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
    },
  };
}

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

/** Rough token count (about four characters a token), for `usage`. */
export const estimateTokens = (value: unknown): number => Math.max(1, Math.ceil(JSON.stringify(value ?? "").length / 4));
