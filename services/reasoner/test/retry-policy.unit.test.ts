import { APIConnectionError, APIConnectionTimeoutError, APIError } from "@anthropic-ai/sdk";
import { describe, expect, it } from "vitest";
import { classifyFailure, retryDelayMs } from "../src/model/retry-policy.js";

const NOW = Date.parse("2026-11-21T12:00:00.000Z");
const answered = (status: number, headers: Record<string, string> = {}) =>
  APIError.generate(status, { type: "error", error: { type: "x", message: `status ${status}` } }, `status ${status}`, new Headers({ "request-id": "req_1", ...headers }));
const streamed = (type: string) => new APIError(undefined, { type: "error", error: { type, message: type } }, type, undefined);

describe("model call failures", () => {
  it.each([
    { name: "429", error: answered(429), reason: "rate_limited", status: 429 },
    { name: "529", error: answered(529), reason: "overloaded", status: 529 },
    { name: "500", error: answered(500), reason: "server_error", status: 500 },
    { name: "409", error: answered(409), reason: "server_error", status: 409 },
    { name: "408", error: answered(408), reason: "timeout", status: 408 },
    { name: "401", error: answered(401), reason: undefined, status: 401 },
    { name: "400", error: answered(400), reason: undefined, status: 400 },
    { name: "400 the server says to retry", error: answered(400, { "x-should-retry": "true" }), reason: "server_error", status: 400 },
    { name: "529 the server says not to retry", error: answered(529, { "x-should-retry": "false" }), reason: undefined, status: 529 },
  ])("an answer of $name is retried as $reason", ({ error, reason, status }) => {
    expect(classifyFailure(error, NOW)).toMatchObject({ reason, status, requestId: "req_1" });
  });

  it.each([
    { name: "a timeout", error: new APIConnectionTimeoutError(), reason: "timeout" },
    { name: "a lost connection", error: new APIConnectionError({ message: "socket hang up" }), reason: "connection" },
    { name: "a stream's rate_limit_error", error: streamed("rate_limit_error"), reason: "rate_limited" },
    { name: "a stream's overloaded_error", error: streamed("overloaded_error"), reason: "overloaded" },
    { name: "a stream's api_error", error: streamed("api_error"), reason: "server_error" },
    { name: "a stream's invalid_request_error", error: streamed("invalid_request_error"), reason: undefined },
    { name: "any other error", error: new Error("bug"), reason: undefined },
  ])("$name is retried as $reason, without a status", ({ error, reason }) => {
    expect(classifyFailure(error, NOW)).toMatchObject({ reason, status: null, retryAfterMs: undefined });
  });

  it.each([
    { name: "retry-after-ms", headers: { "retry-after-ms": "40" }, wait: 40 },
    { name: "retry-after in seconds", headers: { "retry-after": "2" }, wait: 2_000 },
    { name: "retry-after-ms over retry-after", headers: { "retry-after-ms": "40", "retry-after": "2" }, wait: 40 },
    { name: "retry-after as a date", headers: { "retry-after": new Date(NOW + 3_000).toUTCString() }, wait: 3_000 },
    { name: "retry-after as a past date", headers: { "retry-after": new Date(NOW - 3_000).toUTCString() }, wait: 0 },
    { name: "a retry-after that means nothing", headers: { "retry-after": "soon" }, wait: undefined },
    { name: "no header", headers: {}, wait: undefined },
  ] as { name: string; headers: Record<string, string>; wait: number | undefined }[])("reads the wait the server asks for from $name", ({ headers, wait }) => {
    expect(classifyFailure(answered(429, headers), NOW).retryAfterMs).toBe(wait);
  });
});

describe("retry delays", () => {
  it.each([
    { attempt: 1, random: 0, wait: 500 },
    { attempt: 2, random: 0, wait: 1_000 },
    { attempt: 4, random: 0, wait: 4_000 },
    { attempt: 5, random: 0, wait: 8_000 },
    { attempt: 9, random: 0, wait: 8_000 },
    { attempt: 1, random: 1, wait: 375 },
    { attempt: 5, random: 0.5, wait: 7_000 },
  ])("backs off exponentially: attempt $attempt with jitter $random waits $wait ms", ({ attempt, random, wait }) => {
    expect(retryDelayMs(attempt, { retryAfterMs: undefined }, 60_000, () => random)).toBe(wait);
  });

  it("waits what the server asked for, but never longer than the limit", () => {
    expect(retryDelayMs(1, { retryAfterMs: 40 }, 60_000, () => 1)).toBe(40);
    expect(retryDelayMs(1, { retryAfterMs: 90_000 }, 5_000)).toBe(5_000);
    expect(retryDelayMs(9, { retryAfterMs: undefined }, 1_000, () => 0)).toBe(1_000);
  });
});
