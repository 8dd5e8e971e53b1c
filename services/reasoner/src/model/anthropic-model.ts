import { setTimeout as sleep } from "node:timers/promises";
import Anthropic, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIUserAbortError,
  AuthenticationError,
  NotFoundError,
  PermissionDeniedError,
} from "@anthropic-ai/sdk";
import type { Message, MessageCreateParamsNonStreaming } from "@anthropic-ai/sdk/resources/messages";
import { describeIssues, StartupSettingError, type Logger } from "@savepoint/shared";
import { z } from "zod";
import type { RetryRecord } from "../engine/thought-step.js";
import { classifyFailure, retryDelayMs } from "./retry-policy.js";
import {
  ModelInterruptedError,
  ModelRequestError,
  ModelUnavailableError,
  type AssistantBlock,
  type ModelTurn,
  type ModelTurnRequest,
  type ReasoningModel,
} from "./reasoning-model.js";

export type ModelCallOutcome = "answered" | "retried" | "aborted" | "failed";

export interface AnthropicModelOptions {
  baseURL: string;
  apiKey: string;
  model: string;
  maxTokens: number;
  timeoutMs: number;
  maxRetries: number;
  maxRetryWaitMs: number;
  /** Stream each answer (server-sent events) instead of receiving it in one piece; off unless said. */
  streaming?: boolean;
  logger: Logger;
  /** Called once per HTTP call, however it ended. */
  onCall?: (outcome: ModelCallOutcome) => void;
}

// Only the parts of a Message the reasoner relies on; other block types (thinking, server tools) are skipped.
const messageSchema = z.object({
  model: z.string(),
  stop_reason: z.string().nullable(),
  content: z.array(z.looseObject({ type: z.string() })),
  usage: z.object({ input_tokens: z.number().int().min(0), output_tokens: z.number().int().min(0) }),
});
const textBlockSchema = z.object({ type: z.literal("text"), text: z.string() });
const toolUseBlockSchema = z.object({ type: z.literal("tool_use"), id: z.string().min(1), name: z.string().min(1), input: z.json() });

// The API's error body: `{ type: "error", error: { type, message }, request_id }`.
const apiErrorBodySchema = z.object({ error: z.object({ message: z.string() }) });
const apiErrorMessage = (body: unknown): string | undefined => apiErrorBodySchema.safeParse(body).data?.error.message;

function sdkLogger(logger: Logger) {
  const log = (level: "error" | "warn" | "info" | "debug") => (message: string, ...details: unknown[]) =>
    logger[level]({ component: "anthropic-sdk", details }, message);
  return { error: log("error"), warn: log("warn"), info: log("info"), debug: log("debug") };
}

/**
 * The Messages API through the official SDK, pointed at Anthropic or at the local model server. Retries are
 * done here rather than by the SDK, so each one is recorded (reason, status, wait) in the iteration's step.
 */
export class AnthropicModel implements ReasoningModel {
  private readonly client: Anthropic;

  constructor(private readonly options: AnthropicModelOptions) {
    this.client = new Anthropic({
      apiKey: options.apiKey,
      baseURL: options.baseURL,
      maxRetries: 0,
      timeout: options.timeoutMs,
      logger: sdkLogger(options.logger),
      logLevel: "warn",
    });
  }

  /**
   * One `GET /v1/models/{ANTHROPIC_MODEL}` at start, so a key the API refuses, a model it does not know or an
   * endpoint nobody answers at stops the service with one line naming the setting, instead of failing every
   * run later. Any other answer (an overloaded API, a 5xx) is left to the calls' own retries.
   */
  async checkEndpoint(timeoutMs: number): Promise<void> {
    const { baseURL, model } = this.options;
    try {
      await this.client.models.retrieve(model, {}, { timeout: timeoutMs, maxRetries: 0 });
    } catch (error) {
      if (error instanceof AuthenticationError || error instanceof PermissionDeniedError) {
        throw new StartupSettingError(
          `the model API at ${baseURL} refused ANTHROPIC_API_KEY (status ${error.status}: ${apiErrorMessage(error.error) ?? error.message}); set ANTHROPIC_API_KEY to a key it accepts`,
        );
      }
      if (error instanceof NotFoundError) {
        throw new StartupSettingError(`ANTHROPIC_MODEL=${model} is not a model the API at ${baseURL} knows (status 404); set ANTHROPIC_MODEL to one it lists at GET /v1/models`);
      }
      if (error instanceof APIConnectionError) {
        throw new StartupSettingError(
          `the model API at ${baseURL} is unreachable (${error instanceof APIConnectionTimeoutError ? `no answer within ${timeoutMs} ms` : error.message}); check ANTHROPIC_BASE_URL, or start the local model server (npm run model-server)`,
        );
      }
      this.options.logger.warn({ err: error }, "the model API did not confirm ANTHROPIC_MODEL at start; the calls will retry");
    }
  }

  async next(request: ModelTurnRequest, signal: AbortSignal): Promise<ModelTurn> {
    const started = Date.now();
    const retries: RetryRecord[] = [];
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw new ModelInterruptedError("interrupted before the model call");
      let message: unknown;
      try {
        const params: MessageCreateParamsNonStreaming = {
          model: this.options.model,
          max_tokens: this.options.maxTokens,
          system: request.system,
          messages: request.messages,
          tools: request.tools,
          tool_choice: request.toolChoice,
          metadata: { user_id: request.sessionId },
        };
        message = this.options.streaming
          ? await this.streamed(params, signal)
          : await this.client.messages.create(params, { signal, timeout: this.options.timeoutMs, maxRetries: 0 });
      } catch (error) {
        if (error instanceof APIUserAbortError || signal.aborted) {
          this.options.onCall?.("aborted");
          throw new ModelInterruptedError("model call aborted");
        }
        const failure = classifyFailure(error);
        const retryable = failure.reason !== undefined && attempt <= this.options.maxRetries;
        this.options.onCall?.(retryable ? "retried" : "failed");
        if (failure.reason === undefined) {
          throw new ModelRequestError(
            `the model API refused the request (status ${failure.status ?? "none"}): ${failure.message}; check ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL and ANTHROPIC_MODEL`,
          );
        }
        if (!retryable) {
          throw new ModelUnavailableError(
            `the model API failed ${attempt} times in a row (last: ${failure.reason}, status ${failure.status ?? "none"}: ${failure.message})`,
          );
        }
        const waitMs = retryDelayMs(attempt, failure, this.options.maxRetryWaitMs);
        retries.push({ attempt, reason: failure.reason, status: failure.status, requestId: failure.requestId, waitMs });
        await sleep(waitMs, undefined, { signal }).catch(() => {
          throw new ModelInterruptedError("interrupted while waiting to retry the model call");
        });
        continue;
      }
      this.options.onCall?.("answered");
      return this.toTurn(message, attempt, retries, Date.now() - started);
    }
  }

  /**
   * One streamed call, assembled by the SDK's `messages.stream()`. The signal aborts it at once, but an answer
   * that is complete by then (its `message_delta` arrived: every block finished, the stop reason and output
   * tokens known, only the end marker outstanding) is returned rather than thrown away, so the iteration it
   * answers is checkpointed instead of paid for again on resume. The SDK's timeout covers only the wait for
   * the response headers, so the whole stream is held to MODEL_TIMEOUT_MS here and fails as a timeout past it.
   */
  private async streamed(params: MessageCreateParamsNonStreaming, signal: AbortSignal): Promise<Message> {
    const started = Date.now();
    const stream = this.client.messages.stream(params, { timeout: this.options.timeoutMs, maxRetries: 0 });
    let complete: Message | undefined;
    stream.on("streamEvent", (event, snapshot) => {
      if (event.type !== "message_delta") return;
      complete = snapshot;
      this.options.logger.debug({ sessionId: params.metadata?.user_id, ms: Date.now() - started, stopReason: snapshot.stop_reason }, "streamed answer complete");
    });
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      stream.abort();
    }, this.options.timeoutMs);
    const abort = () => stream.abort();
    signal.addEventListener("abort", abort, { once: true });
    try {
      return await stream.finalMessage();
    } catch (error) {
      if (complete) return complete;
      if (timedOut) throw new APIConnectionTimeoutError({ message: `the streamed answer took longer than ${this.options.timeoutMs} ms (MODEL_TIMEOUT_MS)` });
      throw error;
    } finally {
      clearTimeout(deadline);
      signal.removeEventListener("abort", abort);
    }
  }

  private toTurn(raw: unknown, calls: number, retries: RetryRecord[], ms: number): ModelTurn {
    const parsed = messageSchema.safeParse(raw);
    if (!parsed.success) throw new ModelUnavailableError(`the model API answered with a malformed message: ${describeIssues(parsed.error)}`);
    const content: AssistantBlock[] = [];
    for (const block of parsed.data.content) {
      const text = textBlockSchema.safeParse(block);
      if (text.success) content.push(text.data);
      const toolUse = toolUseBlockSchema.safeParse(block);
      if (toolUse.success) content.push(toolUse.data as AssistantBlock);
    }
    return {
      content,
      usage: {
        model: parsed.data.model,
        stopReason: parsed.data.stop_reason,
        calls,
        retries,
        inputTokens: parsed.data.usage.input_tokens,
        outputTokens: parsed.data.usage.output_tokens,
        ms,
      },
    };
  }
}
