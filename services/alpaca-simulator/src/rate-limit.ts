/**
 * Alpaca's request limit: "200 requests every minute per API key", answered with 429 when exceeded (alpaca-docs,
 * content/api-references/trading-api/_index.md, "Rate Limit"), with the market-data API counted apart as it has
 * its own limit. Every API answer carries `X-RateLimit-Limit`,
 * `X-RateLimit-Remaining` and `X-RateLimit-Reset` (epoch seconds when the window starts over). The window is one
 * real-time minute, never the simulated clock: a client's pace is real.
 */
export const DEFAULT_REQUESTS_PER_MINUTE = 200;

/** Alpaca's window: "every minute". */
export const DEFAULT_RATE_WINDOW_MS = 60_000;

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Epoch seconds at which the current window ends. */
  resetSeconds: number;
}

export class RateLimiter {
  private readonly windows = new Map<string, { startedMs: number; count: number }>();

  constructor(
    private readonly limit: number,
    private readonly nowMs: () => number = Date.now,
    private readonly windowMs = DEFAULT_RATE_WINDOW_MS,
  ) {}

  /** Counts one request of `key` and says whether it is within the limit. */
  take(key: string): RateDecision {
    const now = this.nowMs();
    let window = this.windows.get(key);
    if (!window || now - window.startedMs >= this.windowMs) {
      window = { startedMs: now, count: 0 };
      this.windows.set(key, window);
    }
    const allowed = window.count < this.limit;
    if (allowed) window.count += 1;
    return {
      allowed,
      limit: this.limit,
      remaining: this.limit - window.count,
      resetSeconds: Math.ceil((window.startedMs + this.windowMs) / 1000),
    };
  }
}
