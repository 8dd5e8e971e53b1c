import { APIConnectionError, APIConnectionTimeoutError, APIError } from "@anthropic-ai/sdk";
import type { RetryRecord } from "../engine/thought-step.js";

export interface CallFailure {
  /** Why it may be retried; undefined when retrying the same request cannot help. */
  reason: RetryRecord["reason"] | undefined;
  status: number | null;
  requestId: string | null;
  /** What the server asked for (retry-after-ms, else retry-after). */
  retryAfterMs: number | undefined;
  message: string;
}

const INITIAL_DELAY_MS = 500;
const MAX_BACKOFF_MS = 8_000;

function retryAfterMs(headers: Headers | undefined, now: number): number | undefined {
  const millis = Number.parseFloat(headers?.get("retry-after-ms") ?? "");
  if (Number.isFinite(millis) && millis >= 0) return millis;
  const header = headers?.get("retry-after");
  if (!header) return undefined;
  const seconds = Number.parseFloat(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1_000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function reasonForStatus(status: number): RetryRecord["reason"] | undefined {
  if (status === 429) return "rate_limited";
  if (status === 529) return "overloaded";
  if (status === 408) return "timeout";
  if (status === 409 || status >= 500) return "server_error";
  return undefined;
}

function reasonForErrorType(type: string | null): RetryRecord["reason"] | undefined {
  if (type === "rate_limit_error") return "rate_limited";
  if (type === "overloaded_error") return "overloaded";
  if (type === "api_error") return "server_error";
  return undefined;
}

/** What a failed Messages API call means for retrying it (the SDK's own policy, with the reason named). */
export function classifyFailure(error: unknown, now = Date.now()): CallFailure {
  if (error instanceof APIConnectionTimeoutError) {
    return { reason: "timeout", status: null, requestId: null, retryAfterMs: undefined, message: error.message };
  }
  if (error instanceof APIConnectionError) {
    return { reason: "connection", status: null, requestId: null, retryAfterMs: undefined, message: error.message };
  }
  if (error instanceof APIError && error.status === undefined) {
    // An error event inside a stream: no HTTP status, only the error's type (the API's for 429, 529 and 5xx).
    return { reason: reasonForErrorType(error.type), status: null, requestId: error.requestID ?? null, retryAfterMs: undefined, message: error.message };
  }
  if (error instanceof APIError && typeof error.status === "number") {
    const headers = error.headers instanceof Headers ? error.headers : undefined;
    const shouldRetry = headers?.get("x-should-retry");
    const byStatus = reasonForStatus(error.status);
    const reason = shouldRetry === "false" ? undefined : (byStatus ?? (shouldRetry === "true" ? "server_error" : undefined));
    return {
      reason,
      status: error.status,
      requestId: error.requestID ?? null,
      retryAfterMs: retryAfterMs(headers, now),
      message: error.message,
    };
  }
  return { reason: undefined, status: null, requestId: null, retryAfterMs: undefined, message: (error as Error)?.message ?? String(error) };
}

/**
 * Wait before retry number `attempt` (1-based): what the server asked for when it said, else exponential
 * from 0.5 s to 8 s with up to 25 % jitter; never more than `maxWaitMs`.
 */
export function retryDelayMs(attempt: number, failure: Pick<CallFailure, "retryAfterMs">, maxWaitMs: number, random = Math.random): number {
  const base =
    failure.retryAfterMs ?? Math.min(INITIAL_DELAY_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS) * (1 - random() * 0.25);
  return Math.round(Math.min(base, maxWaitMs));
}
