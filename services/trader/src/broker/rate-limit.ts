import { ApiError } from "@alpacahq/alpaca-trade-api/rest";

/** Alpaca's limit, "200 requests every minute per API key" (alpaca-docs, api-references/trading-api, "Rate Limit"). */
export const ALPACA_REQUESTS_PER_MINUTE = 200;

/** A pause this short is waited out within the request; a longer one fails it at once (RateLimitedError). */
export const MAX_INLINE_WAIT_MS = 2_000;
/** When a 429 names no reset (or one already past, as a clock behind the broker's sees it): 250 ms, doubling. */
const MIN_BACKOFF_MS = 250;
/** Alpaca's window is a minute; no pause is longer. */
const MAX_BACKOFF_MS = 60_000;

/** A request not sent: the broker refused one with 429 and its limit starts over only at `until`. */
export class RateLimitedError extends Error {
  override name = "RateLimitedError";
  constructor(readonly until: Date) {
    super(`rate limited (HTTP 429) until ${until.toISOString()}; no request is sent before then`);
  }
}

export const isRateLimitRefusal = (error: unknown): error is ApiError => error instanceof ApiError && error.status === 429;

/**
 * The back-off after a 429 for every request to one of the broker's APIs (Alpaca limits trading and market
 * data apart). The SDK's own rate limiter keeps requests under the limit; when the broker refuses one anyway
 * (another client on the key, a window counted differently) nothing more is sent until the time the refusal
 * names: `Retry-After`, else `X-RateLimit-Reset` (the SDK reads both into `retryAfterMs`). A short pause is
 * waited out and the request sent again: a 429 means the broker did not act on it, and an order carries its
 * client_order_id, so sending it again cannot place it twice. A longer one fails the request at once with a
 * RateLimitedError, so no tick, and no shutdown, waits a minute for the window to start over.
 */
export class RateLimitBackoff {
  private resumeAt = 0;
  private refusals = 0;

  constructor(private readonly onPause: (until: Date, refusal: ApiError) => void = () => {}) {}

  async send<T>(call: () => Promise<T>): Promise<T> {
    for (;;) {
      const waitMs = this.resumeAt - Date.now();
      if (waitMs > MAX_INLINE_WAIT_MS) throw new RateLimitedError(new Date(this.resumeAt));
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
      try {
        const answer = await call();
        this.refusals = 0;
        return answer;
      } catch (error) {
        if (!isRateLimitRefusal(error)) throw error;
        this.pause(error);
      }
    }
  }

  private pause(refusal: ApiError): void {
    const backoffMs = MIN_BACKOFF_MS * 2 ** this.refusals;
    this.refusals += 1;
    const waitMs = Math.min(MAX_BACKOFF_MS, Math.max(refusal.retryAfterMs ?? 0, backoffMs));
    const until = Date.now() + waitMs;
    if (until <= this.resumeAt) return;
    this.resumeAt = until;
    this.onPause(new Date(until), refusal);
  }
}
