import { describe, expect, it } from "vitest";
import { RateLimiter } from "../src/rate-limit.js";

describe("rate limit", () => {
  it("allows the limit within one minute, refuses the next, and starts over a minute after the window began", () => {
    let now = 1_000_000;
    const limiter = new RateLimiter(3, () => now);
    expect([1, 2, 3, 4].map(() => limiter.take("key-1"))).toEqual([
      { allowed: true, limit: 3, remaining: 2, resetSeconds: 1_060 },
      { allowed: true, limit: 3, remaining: 1, resetSeconds: 1_060 },
      { allowed: true, limit: 3, remaining: 0, resetSeconds: 1_060 },
      { allowed: false, limit: 3, remaining: 0, resetSeconds: 1_060 },
    ]);
    now += 59_999;
    expect(limiter.take("key-1").allowed).toBe(false);
    now += 1;
    expect(limiter.take("key-1")).toEqual({ allowed: true, limit: 3, remaining: 2, resetSeconds: 1_120 });
  });

  it("counts each key apart", () => {
    const limiter = new RateLimiter(1, () => 0);
    expect([limiter.take("a").allowed, limiter.take("b").allowed, limiter.take("a").allowed]).toEqual([true, true, false]);
  });

  it("starts over after a shorter window when given one (a shortcut for tests)", () => {
    let now = 0;
    const limiter = new RateLimiter(1, () => now, 2_000);
    expect([limiter.take("a").allowed, limiter.take("a").allowed]).toEqual([true, false]);
    expect(limiter.take("a").resetSeconds).toBe(2);
    now = 2_000;
    expect(limiter.take("a").allowed).toBe(true);
  });

  it("rounds the reset up to the second", () => {
    const limiter = new RateLimiter(1, () => 1_500);
    expect(limiter.take("a").resetSeconds).toBe(62);
  });
});
