import { errors } from "@alpacahq/alpaca-trade-api/rest";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MAX_INLINE_WAIT_MS, RateLimitBackoff, RateLimitedError } from "../src/broker/rate-limit.js";

/**
 * The back-off after a 429, on refusals built by the SDK itself from an answer with Alpaca's headers (the SDK
 * reads Retry-After, else X-RateLimit-Reset, into retryAfterMs). rate-limits.test.ts provokes real 429s at
 * the simulator.
 */

const refusal = (headers: Record<string, string>) =>
  errors.buildApiError(new Response(JSON.stringify({ code: 42910000, message: "rate limit exceeded" }), { status: 429, headers }));

/** A call that is refused with each of `refusals` in turn, then answers "ok"; `sent` counts what reached it. */
function broker(...refusals: Array<Record<string, string>>) {
  const counter = { sent: 0 };
  const call = async () => {
    const headers = refusals[counter.sent++];
    if (headers) throw await refusal(headers);
    return "ok";
  };
  return { counter, call };
}

describe("rate-limit back-off", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("waits out a short Retry-After and sends the request again", async () => {
    const backoff = new RateLimitBackoff();
    const { counter, call } = broker({ "Retry-After": "1" });
    const answer = backoff.send(call);
    await vi.advanceTimersByTimeAsync(999);
    expect(counter.sent).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await answer).toBe("ok");
    expect(counter.sent).toBe(2);
  });

  it("sends nothing until X-RateLimit-Reset when it is far, failing requests at once meanwhile", async () => {
    const pauses: Date[] = [];
    const backoff = new RateLimitBackoff((until) => pauses.push(until));
    const reset = Math.ceil(Date.now() / 1000) + 30;
    const { counter, call } = broker({ "X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": String(reset) });
    await expect(backoff.send(call)).rejects.toThrow(RateLimitedError);
    expect(pauses.map((until) => until.getTime())).toEqual([reset * 1000]);
    await expect(backoff.send(call)).rejects.toThrow(`rate limited (HTTP 429) until ${new Date(reset * 1000).toISOString()}; no request is sent before then`);
    expect(counter.sent).toBe(1);

    await vi.advanceTimersByTimeAsync(reset * 1000 - Date.now() - MAX_INLINE_WAIT_MS);
    // Within the inline wait of the reset: the request waits for it, then goes.
    const answer = backoff.send(call);
    await vi.advanceTimersByTimeAsync(MAX_INLINE_WAIT_MS);
    expect(await answer).toBe("ok");
    expect(counter.sent).toBe(2);
  });

  it("backs off 250 ms, doubling, when the refusal names no time, until the wait is too long to hold the request", async () => {
    const backoff = new RateLimitBackoff();
    const { counter, call } = broker({}, {}, {}, {}, {}, {});
    const answer = backoff.send(call).catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(250 + 500 + 1_000 + 2_000);
    expect(await answer).toBeInstanceOf(RateLimitedError);
    expect(counter.sent).toBe(5);
  });

  it("passes any other refusal through untouched", async () => {
    const backoff = new RateLimitBackoff();
    const forbidden = await errors.buildApiError(new Response(JSON.stringify({ code: 40310000, message: "insufficient buying power" }), { status: 403 }));
    await expect(backoff.send(() => Promise.reject(forbidden))).rejects.toBe(forbidden);
  });
});
