import { namedError, RedisLease, SessionTakenOverError, type LeaseClaim, type LeaseHolder, type Logger } from "@savepoint/shared";
import { RedisUnavailableError } from "../redis.js";

type Redis = ConstructorParameters<typeof RedisLease>[0];

/** Another live session trades the account: this one must not start (exit 4). */
export class AccountInUseError extends namedError("AccountInUseError") {}

/**
 * The lease was renewed, but too late to cover an order request: less of its time to live is left than the
 * request may take, so it could lapse, and another trader be granted the account, while the order is on its
 * way. No order now; the next check renews it again.
 */
export class LeaseTooShortError extends namedError("LeaseTooShortError") {}

export interface AccountLeaseOptions {
  redis: Redis;
  queuePrefix: string;
  accountId: string;
  sessionId: string;
  epoch: number;
  ttlMs: number;
  /** --take-over: take the account from whichever session holds it. */
  takeOver: boolean;
  /**
   * The longest an order request can take from the ownership check before it to its answer (the broker's
   * timeout and the rate-limit back-off's wait within a request): `confirm()` passes only while at least this
   * much of the lease's time to live is left. Must be less than `ttlMs`.
   */
  orderRequestMs: number;
  logger: Logger;
  /**
   * Test hook: runs within `confirm()` between the renewal's answer and the check of what is left of the
   * lease, where a stalled event loop delays the trader in production. The fencing test stalls the process
   * there until the lease has lapsed and another trader holds the account.
   */
  stallAfterRenewal?: () => void;
}

const seconds = (ms: number) => `${Math.ceil(ms / 1000)} s`;

/**
 * How long a trader must wait, after being granted the lease, before it reads the broker's orders and
 * positions: `waitMs` when it took the account from another session whose lease was still live, since that
 * trader may have checked its lease and sent an order just before, which can reach the broker until one order
 * request later; 0 otherwise (a new account, a lapsed lease, an earlier process of this same session, whose
 * orders carry this session's client_order_ids and are reconciled as its own).
 */
export function takeOverWaitMs(previous: LeaseHolder | null, sessionId: string, waitMs: number): number {
  return previous !== null && previous.owner !== sessionId && previous.expiresInMs > 0 ? waitMs : 0;
}

/**
 * One trading session per broker account: the session holds a fenced lease on its account while it runs, so
 * a second session on the account refuses to start, and a trader whose lease was taken (a newer process of
 * the same session resuming it, or an explicit --take-over) learns it before its next order and stops.
 * The lease is renewed every third of its time to live; a trader that dies loses it when it lapses.
 */
export class AccountLease {
  private renewal: NodeJS.Timeout | undefined;
  private lost: SessionTakenOverError | undefined;
  private outage: string | undefined;

  private constructor(
    private readonly lease: RedisLease,
    private readonly claim: LeaseClaim,
    private readonly token: number,
    private readonly options: AccountLeaseOptions,
    /** Who held the account until this grant, if anyone did (see takeOverWaitMs). */
    readonly previous: LeaseHolder | null,
  ) {}

  /**
   * Takes the account's lease for this session and epoch. Refused (AccountInUseError) when another live
   * session holds it, unless `takeOver`; refused as taken over (SessionTakenOverError) when a later epoch of
   * this same session holds it. A resume supersedes the lease of the session's earlier, dead or fenced process.
   */
  static async acquire(options: AccountLeaseOptions): Promise<AccountLease> {
    const { redis, queuePrefix, accountId, sessionId, epoch, ttlMs, takeOver, logger } = options;
    if (options.orderRequestMs >= ttlMs) {
      throw new RangeError(`the account lease's time to live (${ttlMs} ms) must be longer than an order request may take (${options.orderRequestMs} ms)`);
    }
    const lease = new RedisLease(redis, `${queuePrefix}:trader-account-leases:${accountId}`, ttlMs);
    const claim = { owner: sessionId, generation: epoch };
    let grant;
    try {
      grant = await lease.acquire(claim, { takeOver });
    } catch (error) {
      throw new RedisUnavailableError(`cannot take the lease on account ${accountId}: Redis did not answer (${(error as Error).message})`);
    }
    if (!grant.granted) {
      const { holder } = grant;
      if (holder.owner === sessionId) {
        throw new SessionTakenOverError(
          `another trader has taken over session ${sessionId} (this one holds epoch ${epoch}, epoch ${holder.generation} holds account ${accountId}); stopping without placing any order`,
        );
      }
      throw new AccountInUseError(
        `account ${accountId} is being traded by session ${holder.owner} (epoch ${holder.generation}; its lease lapses in ${seconds(holder.expiresInMs)} unless that trader renews it): ` +
          `stop that trader, resume that session with --resume-session ${holder.owner}, or start with --take-over to take the account from it`,
      );
    }
    const { previous } = grant;
    const at = { accountId, sessionId, epoch, token: grant.token };
    if (previous && previous.owner !== sessionId) {
      logger.warn(
        { ...at, event: "account_taken_over", previous },
        `--take-over: took account ${accountId} from session ${previous.owner} (epoch ${previous.generation}, its lease had ${seconds(previous.expiresInMs)} left); that trader stops before its next order`,
      );
    } else if (previous && previous.generation !== epoch) {
      logger.info({ ...at, previous }, `took account ${accountId}'s lease over from epoch ${previous.generation} of this session`);
    } else {
      logger.info(at, `holding account ${accountId} for session ${sessionId}`);
    }
    return new AccountLease(lease, claim, grant.token, options, previous);
  }

  /**
   * Renews the lease every third of its time to live until released; `onLost` is called once if another
   * trader holds it. Renewals that fail because Redis is down are logged once per outage and retried.
   */
  keepRenewed(onLost: (error: SessionTakenOverError) => void): void {
    const every = Math.max(1, Math.floor(this.options.ttlMs / 3));
    this.renewal = setInterval(() => {
      this.renew().catch((error: unknown) => {
        if (error instanceof SessionTakenOverError) onLost(error);
      });
    }, every);
    this.renewal.unref();
  }

  /**
   * Before every order: renews the lease and resolves only if this trader still holds it for longer than the
   * order request may take, counted from when the renewal was sent (the lease may lapse `ttlMs` after Redis
   * ran it, and no sooner). Throws SessionTakenOverError when another trader holds it now,
   * RedisUnavailableError when that cannot be known, and LeaseTooShortError when the renewal's answer came
   * too late to cover the order (a stalled process or a slow Redis), since by the time the order reached the
   * broker the lease could have lapsed and been granted to another trader.
   */
  async confirm(): Promise<void> {
    const sentAt = Date.now();
    await this.renew();
    this.options.stallAfterRenewal?.();
    const { accountId, ttlMs, orderRequestMs } = this.options;
    const leftMs = sentAt + ttlMs - Date.now();
    if (leftMs < orderRequestMs) {
      throw new LeaseTooShortError(
        `account ${accountId}'s lease was renewed too late to cover an order: ${Math.max(0, leftMs)} ms of it left, and an order request may take ${orderRequestMs} ms (the trader or Redis stalled); no order until the next check`,
      );
    }
  }

  /** Renews the lease; resolves only if this trader still holds it (see confirm). */
  private async renew(): Promise<void> {
    if (this.lost) throw this.lost;
    const { accountId, logger } = this.options;
    let standing;
    try {
      standing = await this.lease.renew(this.claim, this.token);
    } catch (error) {
      const problem = (error as Error).message;
      if (this.outage === undefined) logger.warn({ accountId, problem }, "cannot renew the account lease: Redis does not answer; no order is placed until it does");
      this.outage = problem;
      throw new RedisUnavailableError(`cannot confirm that this trader still holds account ${accountId}: Redis does not answer (${problem})`);
    }
    if (this.outage !== undefined) {
      logger.info({ accountId }, "account lease renewed: Redis answers again");
      this.outage = undefined;
    }
    if (standing.held) return;
    this.lost = new SessionTakenOverError(this.describeLoss(standing.holder));
    throw this.lost;
  }

  /** Stops renewing and gives the lease up if this trader still holds it. */
  async release(): Promise<void> {
    clearInterval(this.renewal);
    if (this.lost) return;
    try {
      await this.lease.release(this.token);
    } catch (error) {
      this.options.logger.warn(
        { accountId: this.options.accountId, problem: (error as Error).message },
        `account lease not released (Redis does not answer); it lapses within ${seconds(this.options.ttlMs)}`,
      );
    }
  }

  private describeLoss(holder: LeaseHolder | null): string {
    const { sessionId, epoch, accountId } = this.options;
    if (!holder) return `another trader has taken over session ${sessionId}: account ${accountId}'s lease lapsed and was granted again since (this one holds epoch ${epoch}); stopping without placing further orders`;
    if (holder.owner === sessionId) {
      return `another trader has taken over session ${sessionId} (this one holds epoch ${epoch}, epoch ${holder.generation} holds account ${accountId} now); stopping without placing further orders`;
    }
    return `session ${holder.owner} has taken account ${accountId} over from session ${sessionId} (--take-over); stopping without placing further orders`;
  }
}
