import type { Broker } from "./broker.js";
import { BrokerRateLimitedError, classifyPlacementFailure, describeBrokerFailure } from "./errors.js";
import type { BrokerOrder } from "./types.js";

/**
 * The outcome of one placement attempt:
 * - placed: the broker accepted it now;
 * - found: the broker already had an order under this client_order_id (placed by an earlier attempt, or by
 *   this one before its answer was lost); it is that order;
 * - rejected: the broker refused it; nothing was placed;
 * - not_placed: the broker's rate limit refused it (429) or held it back unsent; nothing was placed, and the
 *   broker takes orders again at `retryAt`;
 * - unknown: no answer and the lookup found nothing (or failed). The order may still surface, so the caller
 *   must reuse the same client_order_id for its next attempt, never a new one.
 */
export type Placement =
  | { outcome: "placed"; order: BrokerOrder }
  | { outcome: "found"; order: BrokerOrder; cause: "duplicate" | "ambiguous" }
  | { outcome: "rejected"; reason: string }
  | { outcome: "not_placed"; reason: string; retryAt: Date }
  | { outcome: "unknown"; reason: string };

/**
 * Submits an order once. Never resubmits: after an ambiguous failure it looks the order up by its
 * client_order_id, and a miss is reported as unknown rather than as "not placed".
 */
export async function placeOrder(broker: Broker, clientOrderId: string, submit: () => Promise<BrokerOrder>): Promise<Placement> {
  try {
    return { outcome: "placed", order: await submit() };
  } catch (error) {
    const failure = classifyPlacementFailure(error);
    const detail = describeBrokerFailure(error);
    if (failure === "rejected") return { outcome: "rejected", reason: detail };
    // Certainly not placed, so nothing to look up (the lookup would meet the same limit).
    if (failure === "rate_limited") return { outcome: "not_placed", reason: detail, retryAt: (error as BrokerRateLimitedError).retryAt };
    let existing: BrokerOrder | null;
    try {
      existing = await broker.orderByClientOrderId(clientOrderId);
    } catch (lookupError) {
      return { outcome: "unknown", reason: `${detail}; then the lookup by client_order_id failed: ${(lookupError as Error).message}` };
    }
    if (existing) return { outcome: "found", order: existing, cause: failure };
    if (failure === "duplicate") {
      return { outcome: "unknown", reason: `${detail}, yet no order with client_order_id ${clientOrderId} can be found` };
    }
    return { outcome: "unknown", reason: `${detail}; no order with client_order_id ${clientOrderId} is visible yet` };
  }
}
