import { ApiError, FetchError } from "@alpacahq/alpaca-trade-api/rest";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { classifySdkError, describeSdkFailure } from "../src/broker/alpaca-broker.js";
import { BrokerRateLimitedError, BrokerRefusedError, BrokerUnavailableError, classifyPlacementFailure } from "../src/broker/errors.js";
import { RateLimitedError } from "../src/broker/rate-limit.js";

const apiError = (status: number, message: string, code?: number, retryAfterMs?: number) =>
  new ApiError(new Response(null, { status }), status, code, message, undefined, retryAfterMs);
const timeout = Object.assign(new Error("The operation was aborted due to timeout"), { name: "TimeoutError" });
const notANumber = z.object({ qty: z.number() }).safeParse({ qty: "x" }).error!;
const OPERATION = "POST /v2/orders";

describe("the Alpaca adapter's reading of the SDK's errors", () => {
  it.each([
    { name: "a duplicate client_order_id", error: apiError(422, "client_order_id must be unique", 40010001), refusal: "duplicate_client_order_id" },
    { name: "a cancel of a filled order", error: apiError(422, 'order is already in "filled" state', 42210000), refusal: "not_open" },
    { name: "a replace while one is pending", error: apiError(422, 'order is in "pending_replace" state and cannot be replaced until that completes'), refusal: "not_open" },
    { name: "another 422 (invalid prices)", error: apiError(422, "take_profit.limit_price must be >= base_price + 0.01", 42210000), refusal: "invalid" },
    { name: "quantity held by other orders (403)", error: apiError(403, "insufficient qty available for order (requested: 10, available: 0)", 40310000), refusal: "held_for_orders" },
    { name: "insufficient buying power (403)", error: apiError(403, "insufficient buying power", 40310000), refusal: "insufficient_buying_power" },
    { name: "an unknown order (404)", error: apiError(404, "order not found", 40410000), refusal: "not_found" },
    { name: "a bad request (400)", error: apiError(400, "invalid qty"), refusal: "invalid" },
  ])("makes $name a BrokerRefusedError ($refusal) with status and code", ({ error, refusal }) => {
    const refused = classifySdkError(OPERATION, error);
    expect(refused).toBeInstanceOf(BrokerRefusedError);
    expect(refused).toMatchObject({ refusal, status: error.status, code: error.code, operation: OPERATION });
    expect(classifyPlacementFailure(refused)).toBe(refusal === "duplicate_client_order_id" ? "duplicate" : "rejected");
  });

  it.each([
    { name: "a request timeout (408)", error: apiError(408, "timeout") },
    { name: "too early (425)", error: apiError(425, "too early") },
    { name: "a server error (500)", error: apiError(500, "internal error") },
    { name: "unavailable (503)", error: apiError(503, "unavailable") },
    { name: "a network error", error: new FetchError(new Error("socket hang up")) },
    { name: "anything else", error: new Error("boom") },
  ])("makes $name a BrokerUnavailableError: the outcome is unknown", ({ error }) => {
    const unavailable = classifySdkError(OPERATION, error);
    expect(unavailable).toBeInstanceOf(BrokerUnavailableError);
    expect(classifyPlacementFailure(unavailable)).toBe("ambiguous");
  });

  it("makes a 429 a BrokerRateLimitedError, not carried out, with the broker's suggested wait", () => {
    const before = Date.now();
    const limited = classifySdkError(OPERATION, apiError(429, "rate limit exceeded", 42910000, 1_500));
    expect(limited).toBeInstanceOf(BrokerRateLimitedError);
    expect(classifyPlacementFailure(limited)).toBe("rate_limited");
    const { retryAt } = limited as BrokerRateLimitedError;
    expect(retryAt.getTime()).toBeGreaterThanOrEqual(before + 1_500);
    expect(retryAt.getTime()).toBeLessThanOrEqual(Date.now() + 1_500);
  });

  it("makes a request the back-off held back unsent a BrokerRateLimitedError until the limit's reset", () => {
    const until = new Date(Date.now() + 30_000);
    const limited = classifySdkError(OPERATION, new RateLimitedError(until));
    expect(limited).toBeInstanceOf(BrokerRateLimitedError);
    expect(limited).toMatchObject({ retryAt: until, message: `POST /v2/orders not carried out: rate limited (HTTP 429) until ${until.toISOString()}; no request is sent before then` });
    expect(classifyPlacementFailure(limited)).toBe("rate_limited");
  });

  it("names the operation, status, code and Alpaca's message in one line", () => {
    expect(classifySdkError(OPERATION, apiError(403, "insufficient buying power", 40310000)).message).toBe(
      "POST /v2/orders refused: HTTP 403 (code 40310000): insufficient buying power",
    );
  });

  it.each([
    { name: "an answer with a code", error: apiError(503, "unavailable", 50300000), detail: { detail: "HTTP 503 (code 50300000): unavailable", status: 503 } },
    { name: "an answer without a code", error: apiError(404, "order not found"), detail: { detail: "HTTP 404: order not found", status: 404 } },
    { name: "a timeout", error: new FetchError(timeout), detail: { detail: "timed out" } },
    { name: "a network error", error: new FetchError(new Error("connect ECONNREFUSED 127.0.0.1:1")), detail: { detail: "network error: connect ECONNREFUSED 127.0.0.1:1" } },
    { name: "an answer that does not parse", error: notANumber, detail: { detail: expect.stringMatching(/^unexpected response: qty: /) } },
    { name: "an error", error: new Error("boom"), detail: { detail: "boom" } },
    { name: "a thrown string", error: "boom", detail: { detail: "boom" } },
  ])("describes $name in one line", ({ error, detail }) => {
    expect(describeSdkFailure(error)).toEqual(detail);
  });
});
