/**
 * The broker port's own errors: what the session layer and any Broker implementation speak, with no broker
 * SDK behind them. The Alpaca adapter (alpaca-broker.ts) turns the SDK's errors into these.
 */

/**
 * A broker read failed after the adapter's retries, or answered something that does not parse. Callers must
 * treat the thing read as unknown: never as empty, flat or unchanged. `retryAt` is set when the broker's rate
 * limit refused it (429): the broker takes requests again then.
 */
export class BrokerReadError extends Error {
  override name = "BrokerReadError";
  constructor(
    readonly operation: string,
    readonly detail: string,
    readonly status?: number,
    readonly retryAt?: Date,
  ) {
    super(`${operation} failed: ${detail}`);
  }
}

/**
 * Why the broker refused a request, as far as the trader acts on it:
 * - duplicate_client_order_id: an order under this client_order_id exists already (an earlier attempt got through);
 * - not_open: the order is final (filled, canceled …) or has a cancel or replace in progress, so it cannot be
 *   canceled or replaced now;
 * - held_for_orders: the quantity is held by other open orders (Alpaca's 403 with `held_for_orders`);
 * - insufficient_buying_power: the account cannot pay for it;
 * - not_found: no such order or position;
 * - invalid: anything else the broker refused (prices, quantities, the asset …).
 */
export type BrokerRefusal = "duplicate_client_order_id" | "not_open" | "held_for_orders" | "insufficient_buying_power" | "not_found" | "invalid";

/** The broker answered and refused the request: nothing was done. */
export class BrokerRefusedError extends Error {
  override name = "BrokerRefusedError";
  constructor(
    readonly operation: string,
    readonly refusal: BrokerRefusal,
    readonly status: number,
    readonly code: number | string | undefined,
    readonly brokerMessage: string,
  ) {
    super(`${operation} refused: HTTP ${status}${code === undefined ? "" : ` (code ${code})`}: ${brokerMessage}`);
  }
}

/**
 * The broker gave no usable answer to a request that changes something (no answer, a timeout, 408/425, a 5xx,
 * or an answer that does not parse): it may or may not have done it, so look before doing anything else.
 */
export class BrokerUnavailableError extends Error {
  override name = "BrokerUnavailableError";
  constructor(
    readonly operation: string,
    readonly detail: string,
    readonly status?: number,
  ) {
    super(`${operation} failed: ${detail}`);
  }
}

/**
 * The broker's rate limit kept a request that changes something from being carried out: the broker answered
 * 429, which Alpaca does before acting on a request (no order is created), or the request was held back unsent
 * until the limit's reset after an earlier 429. Nothing was done; the broker takes requests again at `retryAt`.
 */
export class BrokerRateLimitedError extends Error {
  override name = "BrokerRateLimitedError";
  constructor(
    readonly operation: string,
    readonly detail: string,
    readonly retryAt: Date,
  ) {
    super(`${operation} not carried out: ${detail}`);
  }
}

/**
 * How an order placement failed:
 * - duplicate: the broker already has an order with this client_order_id (an earlier attempt got through);
 * - rejected: the broker answered and refused it (buying power, invalid prices …); nothing was placed;
 * - rate_limited: the broker's rate limit refused it (429) or held it back unsent; nothing was placed;
 * - ambiguous: no answer, a timeout or a 5xx; the order may or may not exist, so look it up before anything else.
 */
export type PlacementFailure = "duplicate" | "rejected" | "rate_limited" | "ambiguous";

export function classifyPlacementFailure(error: unknown): PlacementFailure {
  if (error instanceof BrokerRateLimitedError) return "rate_limited";
  if (!(error instanceof BrokerRefusedError)) return "ambiguous";
  return error.refusal === "duplicate_client_order_id" ? "duplicate" : "rejected";
}

/** When the broker takes requests again, for a request its rate limit refused or held back; undefined for any other failure. */
export const rateLimitedUntil = (error: unknown): Date | undefined =>
  error instanceof BrokerRateLimitedError || error instanceof BrokerReadError ? error.retryAt : undefined;

/** What went wrong in a broker call, in one line. */
export const describeBrokerFailure = (error: unknown): string => (error instanceof Error ? error.message : String(error));
