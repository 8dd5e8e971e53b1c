import { ApiError, FetchError } from "@alpacahq/alpaca-trade-api";
import { describeIssues } from "@savepoint/shared";
import { ZodError } from "zod";

/**
 * A broker read failed after the SDK's retries, or answered something that does not parse. Callers must
 * treat the thing read as unknown: never as empty, flat or unchanged.
 */
export class BrokerReadError extends Error {
  override name = "BrokerReadError";
  constructor(
    readonly operation: string,
    readonly detail: string,
    readonly status?: number,
  ) {
    super(`${operation} failed: ${detail}`);
  }
}

/** What went wrong in a broker call, in one line, with Alpaca's status, code and message when it answered. */
export function describeBrokerFailure(error: unknown): { detail: string; status?: number } {
  if (error instanceof ApiError) {
    const code = error.code === undefined ? "" : ` (code ${error.code})`;
    return { detail: `HTTP ${error.status}${code}: ${error.message}`, status: error.status };
  }
  if (error instanceof FetchError) {
    const cause = error.cause;
    return { detail: cause?.name === "TimeoutError" ? "timed out" : `network error: ${cause?.message ?? error.message}` };
  }
  if (error instanceof ZodError) return { detail: `unexpected response: ${describeIssues(error)}` };
  return { detail: error instanceof Error ? error.message : String(error) };
}

/**
 * How an order placement failed:
 * - duplicate: the broker already has an order with this client_order_id (an earlier attempt got through);
 * - rejected: the broker answered and refused it (buying power, invalid prices …); nothing was placed;
 * - ambiguous: no answer, a timeout or a 5xx; the order may or may not exist, so look it up before anything else.
 */
export type PlacementFailure = "duplicate" | "rejected" | "ambiguous";

const TRANSIENT_STATUSES = new Set([408, 425, 429]);

export function classifyPlacementFailure(error: unknown): PlacementFailure {
  if (!(error instanceof ApiError)) return "ambiguous";
  if (error.status === 422 && /client_order_id must be unique/i.test(error.message)) return "duplicate";
  if (error.status >= 400 && error.status < 500 && !TRANSIENT_STATUSES.has(error.status)) return "rejected";
  return "ambiguous";
}
