import { namedError } from "@savepoint/shared";
import type { MessageParam, Tool, ToolChoice } from "@anthropic-ai/sdk/resources/messages";
import type { ModelUsage } from "../engine/thought-step.js";
import type { JsonValue } from "../tools/agent-tool.js";

export interface ModelTurnRequest {
  system: string;
  messages: MessageParam[];
  tools: Tool[];
  toolChoice: ToolChoice;
  /** Sent as `metadata.user_id`: lets the provider (and the local model server) tell sessions apart. */
  sessionId: string;
}

export type AssistantBlock = { type: "text"; text: string } | { type: "tool_use"; id: string; name: string; input: JsonValue };

/** One answered model turn, with what it cost (retries included). */
export interface ModelTurn {
  content: AssistantBlock[];
  usage: ModelUsage;
}

/** One model round trip per call; retries of transient failures happen inside and are reported in `usage`. */
export interface ReasoningModel {
  next(request: ModelTurnRequest, signal: AbortSignal): Promise<ModelTurn>;
}

/** The signal aborted the call (or the wait before a retry); nothing was answered. */
export class ModelInterruptedError extends namedError("ModelInterruptedError") {}

/** The provider kept failing with retryable errors (429, 529, 5xx, timeouts) past the retry budget. */
export class ModelUnavailableError extends namedError("ModelUnavailableError") {}

/** The provider refused the request itself (bad key, bad request): retrying the same call cannot help. */
export class ModelRequestError extends namedError("ModelRequestError") {}
