import { describe, expect, it } from "vitest";
import { BrokerRateLimitedError, BrokerRefusedError, BrokerUnavailableError } from "../src/broker/errors.js";
import { placeOrder } from "../src/broker/placement.js";
import { ScriptedBroker } from "./scripted-broker.js";

const ID = "trader-1:AAPL:1";
const OPERATION = "POST /v2/orders";
const buyingPower = new BrokerRefusedError(OPERATION, "insufficient_buying_power", 403, 40310000, "insufficient buying power");
const duplicate = new BrokerRefusedError(OPERATION, "duplicate_client_order_id", 422, 40010001, "client_order_id must be unique");
const RESET = new Date("2026-01-05T15:31:00.000Z");
const rateLimited = new BrokerRateLimitedError(OPERATION, `rate limited (HTTP 429) until ${RESET.toISOString()}; no request is sent before then`, RESET);
const request = { clientOrderId: ID, symbol: "AAPL", side: "buy" as const, qty: 10, takeProfit: 110, stopLoss: 90 };

/** The broker after a submission: whether the order reached it, and what the submission answered. */
async function place(options: { reached: boolean; failure?: unknown; lookupFails?: boolean }) {
  const broker = new ScriptedBroker();
  if (options.lookupFails) broker.failNext("orderByClientOrderId", new Error("HTTP 503"));
  const placement = await placeOrder(broker, ID, async () => {
    const order = options.reached ? await broker.submitBracket(request) : undefined;
    if (options.failure !== undefined) throw options.failure;
    return order!;
  });
  return { broker, placement };
}

describe("placing an order", () => {
  it("is placed when the broker accepts it, without a lookup", async () => {
    const { broker, placement } = await place({ reached: true });
    expect(placement).toEqual({ outcome: "placed", order: broker.orders[0] });
    expect(broker.calls).toEqual(["submitBracket"]);
  });

  it.each([
    { name: "refused (buying power)", reached: false, failure: buyingPower, outcome: { outcome: "rejected", reason: buyingPower.message }, lookups: 0 },
    // Alpaca refuses a rate-limited request before creating the order, so there is nothing to look up.
    { name: "rate limited (429)", reached: false, failure: rateLimited, outcome: { outcome: "not_placed", reason: rateLimited.message, retryAt: RESET }, lookups: 0 },
    { name: "ambiguous, and the order is at the broker", reached: true, failure: new BrokerUnavailableError(OPERATION, "network error: socket hang up"), outcome: { outcome: "found", cause: "ambiguous" }, lookups: 1 },
    { name: "a duplicate of an order placed before a restart", reached: true, failure: duplicate, outcome: { outcome: "found", cause: "duplicate" }, lookups: 1 },
    {
      name: "ambiguous, and the order is not visible",
      reached: false,
      failure: new BrokerUnavailableError(OPERATION, "HTTP 503: unavailable", 503),
      outcome: { outcome: "unknown", reason: `POST /v2/orders failed: HTTP 503: unavailable; no order with client_order_id ${ID} is visible yet` },
      lookups: 1,
    },
    {
      name: "a duplicate the broker cannot show",
      reached: false,
      failure: duplicate,
      outcome: { outcome: "unknown", reason: `${duplicate.message}, yet no order with client_order_id ${ID} can be found` },
      lookups: 1,
    },
  ])("is $outcome.outcome when the submission is $name", async ({ reached, failure, outcome, lookups }) => {
    const { broker, placement } = await place({ reached, failure });
    expect(placement).toMatchObject(outcome);
    if (placement.outcome === "found") expect(placement.order.clientOrderId).toBe(ID);
    expect(broker.calls.filter((call) => call === "orderByClientOrderId")).toHaveLength(lookups);
    // Never submitted twice, whatever happened.
    expect(broker.calls.filter((call) => call === "submitBracket").length).toBeLessThanOrEqual(1);
  });

  it("is unknown, naming both failures, when the lookup after an ambiguous failure fails too", async () => {
    const { placement } = await place({ reached: false, failure: new Error("socket hang up"), lookupFails: true });
    expect(placement).toEqual({ outcome: "unknown", reason: "socket hang up; then the lookup by client_order_id failed: HTTP 503" });
  });
});
