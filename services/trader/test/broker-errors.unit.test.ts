import { ApiError, FetchError } from "@alpacahq/alpaca-trade-api";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { classifyPlacementFailure, describeBrokerFailure } from "../src/broker/errors.js";

const apiError = (status: number, message: string, code?: number) => new ApiError(new Response(null, { status }), status, code, message);
const timeout = Object.assign(new Error("The operation was aborted due to timeout"), { name: "TimeoutError" });
const notANumber = z.object({ qty: z.number() }).safeParse({ qty: "x" }).error!;

describe("broker failures", () => {
  it.each([
    { name: "a duplicate client_order_id", error: apiError(422, "client_order_id must be unique", 40010001), failure: "duplicate" },
    { name: "another 422 (invalid prices)", error: apiError(422, "take_profit.limit_price must be > base_price + 0.01"), failure: "rejected" },
    { name: "insufficient buying power (403)", error: apiError(403, "insufficient buying power"), failure: "rejected" },
    { name: "a bad request (400)", error: apiError(400, "invalid qty"), failure: "rejected" },
    { name: "a request timeout (408)", error: apiError(408, "timeout"), failure: "ambiguous" },
    { name: "too early (425)", error: apiError(425, "too early"), failure: "ambiguous" },
    { name: "rate limited (429)", error: apiError(429, "rate limit exceeded"), failure: "ambiguous" },
    { name: "a server error (500)", error: apiError(500, "internal error"), failure: "ambiguous" },
    { name: "unavailable (503)", error: apiError(503, "unavailable"), failure: "ambiguous" },
    { name: "a network error", error: new FetchError(new Error("socket hang up")), failure: "ambiguous" },
    { name: "anything else", error: new Error("boom"), failure: "ambiguous" },
  ])("classifies $name as $failure", ({ error, failure }) => {
    expect(classifyPlacementFailure(error)).toBe(failure);
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
    expect(describeBrokerFailure(error)).toEqual(detail);
  });
});
