import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { CheckpointTimeoutError, SessionTakenOverError, type CheckpointClient, type Logger, type RedisTarget, type SessionStatus } from "@savepoint/shared";
import type { Broker } from "./broker/broker.js";
import { BrokerRateLimitedError, BrokerReadError, BrokerRefusedError, BrokerUnavailableError, describeBrokerFailure } from "./broker/errors.js";
import { isOrderFinal, type BrokerAccount, type BrokerOrder } from "./broker/types.js";
import { STRATEGY_FLAG_NAMES, UsageError, type SessionChoice, type SessionFlags, type TraderOptions } from "./cli/options.js";
import type { TraderMetrics } from "./metrics.js";
import { connectRedis } from "./redis.js";
import { AccountLease, takeOverWaitMs } from "./session/account-lease.js";
import { readFullView } from "./session/broker-view.js";
import { RestoreError, SessionCheckpoints, TRADER_SERVICE, type RestoredSession } from "./session/checkpoints.js";
import { MAX_CLIENT_ORDER_ID_LENGTH, otherSessionEntry } from "./session/client-order-ids.js";
import { reconcile, ReconciliationError, type Change } from "./session/reconcile.js";
import type { ReconciliationReport } from "./session/report.js";
import { logReconciliation, logResume } from "./session/resume-log.js";
import { resumeRecord, type ResumeRecord } from "./session/resume-record.js";
import { TradingState, type StrategyParams } from "./session/state.js";
import { TradingSession, type SessionEnd } from "./session/trading-session.js";
import { RuleStrategy } from "./strategy/rule-strategy.js";
import type { Strategy } from "./strategy/strategy.js";

/** The trader cannot start: the message says why and what to do. Nothing was traded. */
export class StartupError extends Error {
  override name = "StartupError";
}

export interface TraderContext {
  broker: Broker;
  client: CheckpointClient;
  logger: Logger;
  metrics?: TraderMetrics;
  /** The Redis (one, or a cluster) of the account lease and of the reasoner strategy's `reasoning` queue. */
  redis: { target: RedisTarget; queuePrefix: string };
  /** How long the reasoner strategy waits for one decision. */
  reasoningTimeoutMs: number;
  /** The account lease's time to live: how long after a trader dies its account stays locked. */
  accountLeaseMs: number;
  /** The longest an order request can take (config.ts, orderRequestMs): the lease must outlive it, checked before each order. */
  orderRequestMs: number;
  /**
   * After taking the account from another live session (--take-over), how long to wait before reading the
   * broker (config.ts, takeOverSettleMs): an order that session already sent may reach the broker until then.
   */
  takeOverSettleMs: number;
  /**
   * Aborted by SIGTERM or SIGINT while the trader starts: the take-over wait ends at once and starting fails
   * with the signal's reason, the lease released, nothing traded (runService then exits 0).
   */
  signal?: AbortSignal;
  /** How often a tick checks that the session's bracket legs still work; LEGS_CHECK_INTERVAL_MS unless a test shortens it. */
  legsCheckIntervalMs?: number;
  /** Test hook: a stall of the process after each renewal of the account lease before an order (AccountLeaseOptions). */
  stallAfterLeaseRenewal?: () => void;
}

export interface TraderOutcome {
  end: SessionEnd;
  /** 0 after a clean stop or completion, 1 when the session failed or its final checkpoint did, 3 when taken over. */
  exitCode: number;
  /** The final checkpoint's status and whether it was confirmed; null when another trader took the session over. */
  final: { status: SessionStatus; confirmed: boolean } | null;
}

/**
 * How a stop leaves the session: `interrupted` (a shutdown: --resume continues it) or `stopped` (a person
 * ended it, from the console or the CLI: --resume and --resume-or-new leave it, --resume-session continues it).
 */
export type StopStatus = Extract<SessionStatus, "interrupted" | "stopped">;

/** How often reconciliation on start is tried before giving up, and the pause between tries. */
const RECONCILE_ATTEMPTS = 3;
const RECONCILE_BACKOFF_MS = 500;
/** The final checkpoint gets this long to be confirmed on shutdown. */
const FINAL_CHECKPOINT_TIMEOUT_MS = 10_000;
/** How often a read at start that the broker's rate limit refuses waits for the limit's reset before starting fails. */
const STARTUP_RATE_LIMIT_WAITS = 3;
/** At the end of the session (--duration), working entry orders get this long to be canceled or filled, and what they left unprotected to be closed. */
const SETTLE_ENTRIES_TIMEOUT_MS = 10_000;

/** How long the broker gets to complete the cancels of entry orders other sessions left working, and the pause between looks. */
const OTHER_ENTRIES_TIMEOUT_MS = 10_000;
const OTHER_ENTRIES_POLL_MS = 200;
/** The longest wait for the rate limit's reset before a cancel is sent again: Alpaca's window is a minute. */
const MAX_RATE_LIMIT_WAIT_MS = 60_000;

/** `trader-20260105-150000-1a2b3c`: sortable by start time, unique by its random tail. */
export function newSessionId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `trader-${stamp}-${randomBytes(3).toString("hex")}`;
}

/**
 * A trading session from start to end: opens a new session or resumes one (restore, fence, reconcile with
 * the broker, confirmed first checkpoint), trades, and on the way out writes the confirmed final checkpoint.
 */
export class Trader {
  private running: Promise<TraderOutcome> | undefined;
  private stopStatus: StopStatus | undefined;

  private constructor(
    readonly session: TradingSession,
    readonly checkpoints: SessionCheckpoints,
    private readonly strategy: Strategy,
    private readonly lease: AccountLease,
    private readonly redis: Redis,
    private readonly logger: Logger,
  ) {}

  get sessionId(): string {
    return this.checkpoints.owner.sessionId;
  }

  get state(): TradingState {
    return this.session.state;
  }

  static async open(options: TraderOptions, context: TraderContext): Promise<Trader> {
    const { broker, client, logger } = context;
    const account = await readAccount(broker, logger);
    let sessionId: string;
    let state: TradingState;
    let epoch: number;
    let restoredFrom: ResumeRecord["restoredFrom"] | undefined;
    const start = await sessionToStart(client, options.session, account, logger);
    if (!("snapshot" in start)) {
      await checkSymbols(broker, start.symbols, logger);
      const clock = await readAtStartup("read the market clock", () => broker.clock(), logger);
      sessionId = newSessionId();
      state = new TradingState({
        sessionStartedAt: new Date().toISOString(),
        brokerSessionStartedAt: clock.timestamp.toISOString(),
        symbols: start.symbols,
        strategy: start.strategy,
      });
      epoch = await client.claimEpoch(TRADER_SERVICE, sessionId, 0);
      logger.info({ sessionId, accountId: account.id, symbols: state.identity.symbols, strategy: state.identity.strategy }, `✓ New session: ${sessionId}`);
    } else {
      const restored = start;
      checkSessionFlags(options.sessionFlags, restored);
      logResume(logger, restored);
      sessionId = restored.snapshot.sessionId;
      state = restored.state;
      restoredFrom = { epoch: restored.snapshot.epoch, seq: restored.snapshot.seq, takenAt: restored.snapshot.takenAt };
      // Above every earlier owner's epoch, and distinct from any other trader resuming the same session now.
      epoch = await client.claimEpoch(TRADER_SERVICE, sessionId, restored.snapshot.epoch + 1);
    }

    let redis: Redis;
    try {
      redis = await connectRedis(context.redis.target, "trader-account-lease", (error) => logger.debug({ problem: error.message }, "account lease connection: Redis error"));
    } catch (error) {
      throw new StartupError((error as Error).message);
    }
    let lease: AccountLease;
    try {
      lease = await AccountLease.acquire({
        redis,
        queuePrefix: context.redis.queuePrefix,
        accountId: account.id,
        sessionId,
        epoch,
        ttlMs: context.accountLeaseMs,
        takeOver: options.takeOver,
        orderRequestMs: context.orderRequestMs,
        logger,
        stallAfterRenewal: context.stallAfterLeaseRenewal,
      });
    } catch (error) {
      redis.disconnect();
      throw error;
    }
    let session: TradingSession | undefined;
    // A trader that loses the lease before its session runs finds out at its first order (confirm throws).
    lease.keepRenewed((error) => session?.takeOver(error));
    let strategy: Strategy | undefined;
    const checkpoints = new SessionCheckpoints(client, { sessionId, ownerId: account.id, epoch }, logger, (error) => session?.takeOver(error));
    try {
      await waitOutTakenOverOrders(lease, sessionId, context);
      const canceled = await cancelOtherSessionsEntries(broker, sessionId, logger, { signal: context.signal });
      strategy = await createStrategy(state, sessionId, context);
      const trading = new TradingSession({ broker, strategy, checkpoints, ownership: lease, logger, metrics: context.metrics }, state, {
        sessionId,
        intervalMs: options.intervalMs,
        checkpointIntervalMs: options.checkpointIntervalMs,
        durationMs: options.durationMs,
        legsCheckIntervalMs: context.legsCheckIntervalMs,
      });
      // Recent bars are market data, read beside the reconciliation rather than after it: the slowest read of a
      // start (every symbol's last half hour or more). The session reaches the lease's and the checkpoints'
      // take-over callbacks only once reconciled, as before.
      const warmUp = trading.warmUp().catch((error: Error) =>
        logger.warn({ problem: error.message }, "could not load recent bars; the strategy warms up from live bars instead"),
      );
      const report = await reconcileOnStart(broker, state, sessionId, logger, canceled);
      logReconciliation(logger, report);
      // In the state, so the first checkpoint below carries it, and every one after it.
      if (restoredFrom) state.recordResume(resumeRecord(report, epoch, restoredFrom));
      session = trading;
      await Promise.all([firstCheckpoint(checkpoints, state, logger), warmUp]);
    } catch (error) {
      await strategy?.close();
      await lease.release();
      redis.disconnect();
      throw error;
    }
    logger.info(
      { event: "trading_started", sessionId, epoch, symbols: state.identity.symbols, positions: state.positions.size, intervalMs: options.intervalMs },
      `Trading ${state.identity.symbols.length} symbols every ${options.intervalMs / 1000}s (session ${sessionId}, epoch ${epoch})`,
    );
    return new Trader(session, checkpoints, strategy, lease, redis, logger);
  }

  /** Trades until the duration ends, `stop()` is called or the session is taken over; then checkpoints and cleans up. */
  run(): Promise<TraderOutcome> {
    this.running ??= this.session.run().then((end) => this.finish(end));
    return this.running;
  }

  /** Stops trading after the step in progress and resolves once the final checkpoint is confirmed. The first stop's status holds. */
  stop(cause: string, status: StopStatus = "interrupted"): Promise<TraderOutcome> {
    this.stopStatus ??= status;
    this.session.stop(cause);
    return this.run();
  }

  private async finish(end: SessionEnd): Promise<TraderOutcome> {
    const { logger, checkpoints } = this;
    try {
      if (end.reason === "taken_over") {
        logger.error({ sessionId: this.sessionId, epoch: checkpoints.owner.epoch }, end.error.message);
        return { end, exitCode: 3, final: null };
      }
      const completed = end.reason === "completed";
      if (end.reason === "stopped") await this.session.syncBeforeStop();
      if (end.reason === "failed") {
        logger.fatal({ sessionId: this.sessionId, err: end.error }, "trading stopped by an unexpected error; writing the final checkpoint so --resume can continue");
      } else {
        logger.info({ sessionId: this.sessionId, reason: end.reason }, completed ? "✓ Session duration reached; finishing" : "⟳ Shutting down gracefully...");
      }
      // A completed session must not leave an entry that the broker could still fill after its final snapshot.
      if (completed) await this.session.settleEntries(SETTLE_ENTRIES_TIMEOUT_MS);
      logger.info({ sessionId: this.sessionId }, "Creating final checkpoint...");
      let exitCode = end.reason === "failed" ? 1 : 0;
      const status: SessionStatus = completed ? "completed" : end.reason === "stopped" ? (this.stopStatus ?? "interrupted") : "interrupted";
      let confirmed = true;
      try {
        await checkpoints.createConfirmedCheckpoint(this.state, completed ? "final" : "shutdown", status, FINAL_CHECKPOINT_TIMEOUT_MS);
      } catch (error) {
        if (error instanceof SessionTakenOverError) {
          logger.error({ sessionId: this.sessionId }, error.message);
          return { end: { reason: "taken_over", error }, exitCode: 3, final: null };
        }
        exitCode = 1;
        confirmed = false;
        logger.error(
          { sessionId: this.sessionId, problem: (error as Error).message },
          "final checkpoint not confirmed; --resume restores the last stored checkpoint and reconciles the rest with the broker",
        );
      }
      logger.info({ sessionId: this.sessionId, checkpoints: checkpoints.created }, `Total checkpoints created: ${checkpoints.created}`);
      try {
        const deleted = await checkpoints.cleanupOldCheckpoints();
        logger.info({ sessionId: this.sessionId, deleted }, `Cleaned up ${deleted} old checkpoints`);
      } catch (error) {
        logger.warn({ sessionId: this.sessionId, problem: (error as Error).message }, "old checkpoints not cleaned up; the checkpointer's retention will");
      }
      return { end, exitCode, final: { status, confirmed } };
    } finally {
      await this.strategy.close();
      await this.lease.release();
      this.redis.disconnect();
    }
  }
}

type Redis = Awaited<ReturnType<typeof connectRedis>>;

/**
 * --reconcile-only: compares the account's latest active or interrupted session (or the named one) with the
 * broker and reports what a resume would change. Nothing is written and no order is placed.
 */
export async function reconcileOnly(options: TraderOptions, context: TraderContext): Promise<ReconciliationReport> {
  const { broker, client, logger } = context;
  const account = await readAccount(broker, logger);
  if (options.session.kind === "new" || options.session.kind === "resume-or-new") throw new UsageError("--reconcile-only needs a session to compare: the latest one, or --resume-session ID");
  let restored: RestoredSession | undefined;
  try {
    restored = await restore(client, options.session, account);
    checkSessionFlags(options.sessionFlags, restored);
  } catch (error) {
    if (!(error instanceof StartupError && options.session.kind === "resume")) throw error;
    logger.warn({ accountId: account.id }, "no active or interrupted session to reconcile; comparing the broker with an empty session");
  }
  const clock = await readAtStartup("read the market clock", () => broker.clock(), logger);
  const state =
    restored?.state.clone() ??
    new TradingState({
      sessionStartedAt: clock.timestamp.toISOString(),
      brokerSessionStartedAt: clock.timestamp.toISOString(),
      symbols: [],
      strategy: { kind: "rule", stopLossPct: 2, takeProfitPct: 4, positionSize: 10_000, lookbackBars: 15, entryThresholdPct: 0.2 },
    });
  return reconcileOnStart(broker, state, restored?.snapshot.sessionId ?? null, logger);
}

function readAccount(broker: Broker, logger: Logger): Promise<BrokerAccount> {
  return readAtStartup("read the broker account", () => broker.account(), logger, "Check APCA_API_BASE_URL and the API keys (or that the simulator is running).");
}

/**
 * A broker read the trader cannot start without. One refused by the broker's rate limit (429) waits for the
 * limit's reset, saying until when, and is sent again, up to STARTUP_RATE_LIMIT_WAITS times: the trader has
 * nothing else to do, and Alpaca's window starts over within a minute. Starting fails in one line when the limit
 * still refuses it after that, or when the read fails otherwise (`advice` says what to check).
 */
export async function readAtStartup<T>(what: string, read: () => Promise<T>, logger: Logger, advice = "Try again once the broker answers."): Promise<T> {
  for (let waits = 0; ; waits++) {
    try {
      return await read();
    } catch (error) {
      if (!(error instanceof BrokerReadError) || error.retryAt === undefined) {
        throw new StartupError(`cannot ${what}: ${(error as Error).message}. ${advice}`);
      }
      const retryAt = error.retryAt.toISOString();
      if (waits === STARTUP_RATE_LIMIT_WAITS) {
        throw new StartupError(
          `cannot ${what}: the broker's rate limit (HTTP 429) still refuses requests after ${waits} waits for its reset, now until ${retryAt}. ` +
            "Something else uses these API keys' requests (Alpaca allows 200 a minute per key), or BROKER_REQUESTS_PER_MINUTE is above the account's limit: stop the other client or lower it, then start again.",
        );
      }
      const waitMs = Math.max(0, error.retryAt.getTime() - Date.now());
      logger.warn(
        { event: "rate_limited_at_start", retryAt, waitMs },
        `cannot ${what} yet: the broker's rate limit is reached (HTTP 429); waiting for its reset and trying again at ${retryAt} (in ${Math.ceil(waitMs / 1000)} s)`,
      );
      await delay(waitMs);
    }
  }
}

/** Every symbol must be a tradable asset at the broker; unknown ones are named together. */
async function checkSymbols(broker: Broker, symbols: string[], logger: Logger): Promise<void> {
  const assets = await Promise.all(
    symbols.map(async (symbol) => ({ symbol, asset: await readAtStartup(`look up symbol ${symbol} at the broker`, () => broker.asset(symbol), logger) })),
  );
  const unknown = assets.filter(({ asset }) => asset === null).map(({ symbol }) => symbol);
  const untradable = assets.filter(({ asset }) => asset !== null && (!asset.tradable || asset.status !== "active")).map(({ symbol }) => symbol);
  const problems = [
    ...(unknown.length > 0 ? [`unknown symbol${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}: the broker has no such asset`] : []),
    ...(untradable.length > 0 ? [`${untradable.join(", ")} cannot be traded at the broker (inactive or not tradable)`] : []),
  ];
  if (problems.length > 0) throw new UsageError(`--symbols: ${problems.join("; ")}; check the tickers`);
}

/** The session to resume, or the symbols and parameters of a new one (--resume-or-new finding nothing to resume). */
async function sessionToStart(client: CheckpointClient, choice: SessionChoice, account: BrokerAccount, logger: Logger): Promise<RestoredSession | NewSession> {
  switch (choice.kind) {
    case "new":
      return choice;
    case "resume-or-new": {
      const latest = await findSession(client, { kind: "resume" }, account);
      if (latest) return latest;
      logger.info({ accountId: account.id }, `no active or interrupted trader session for account ${account.id}; starting a new one`);
      return choice;
    }
    default:
      return restore(client, choice, account);
  }
}

async function restore(client: CheckpointClient, choice: ResumeChoice, account: BrokerAccount): Promise<RestoredSession> {
  const restored = await findSession(client, choice, account);
  if (!restored) {
    throw new StartupError(
      choice.kind === "resume"
        ? `no active or interrupted trader session for account ${account.id}; start a new session (without --resume), or use --resume-or-new`
        : `no checkpoint of trader session ${choice.sessionId}; check the id (the trading_sessions view lists them)`,
    );
  }
  return restored;
}

type NewSession = Extract<SessionChoice, { kind: "new" | "resume-or-new" }>;
type ResumeChoice = Extract<SessionChoice, { kind: "resume" | "resume-session" }>;

/** The chosen session's latest checkpoint, checked to belong to this account; null when there is none. */
async function findSession(client: CheckpointClient, choice: ResumeChoice, account: BrokerAccount): Promise<RestoredSession | null> {
  let restored: RestoredSession | null;
  try {
    restored = await SessionCheckpoints.restoreFromLatestCheckpoint(client, choice.kind === "resume" ? { ownerId: account.id } : { sessionId: choice.sessionId });
  } catch (error) {
    if (error instanceof RestoreError || error instanceof CheckpointTimeoutError) throw new StartupError(error.message);
    throw error;
  }
  if (!restored) return null;
  if (restored.snapshot.ownerId !== undefined && restored.snapshot.ownerId !== account.id) {
    throw new StartupError(
      `session ${restored.snapshot.sessionId} belongs to account ${restored.snapshot.ownerId}, but the broker keys are for account ${account.id}; use that account's keys`,
    );
  }
  if (restored.snapshot.sessionId.length + 24 > MAX_CLIENT_ORDER_ID_LENGTH) {
    throw new StartupError(`session id ${restored.snapshot.sessionId} is too long to name its orders within Alpaca's ${MAX_CLIENT_ORDER_ID_LENGTH}-character client_order_id`);
  }
  return restored;
}

/** Flags given with --resume must describe the session being resumed: it keeps what it started with. */
function checkSessionFlags(flags: SessionFlags, { snapshot, state }: RestoredSession): void {
  const { identity } = state;
  const problems: string[] = [];
  if (flags.symbols && flags.symbols.join(",") !== identity.symbols.join(",")) {
    problems.push(`--symbols ${flags.symbols.join(",")} (the session trades ${identity.symbols.join(",")})`);
  }
  for (const [name, value] of Object.entries(flags.strategy ?? {}) as Array<[keyof StrategyParams, unknown]>) {
    if (identity.strategy[name] !== value) problems.push(`${STRATEGY_FLAG_NAMES[name]} ${String(value)} (the session uses ${String(identity.strategy[name])})`);
  }
  if (problems.length > 0) {
    throw new UsageError(
      `${problems.join("; ")}: session ${snapshot.sessionId} keeps the symbols and strategy parameters it started with; drop these flags to resume it, or start a new session without --resume`,
    );
  }
}

async function createStrategy(state: TradingState, sessionId: string, context: TraderContext): Promise<Strategy> {
  const { strategy } = state.identity;
  if (strategy.kind === "rule") return new RuleStrategy(strategy);
  // Loaded only for the reasoner, so a rule session does not pay for it in start-up time.
  const { ReasonerStrategy } = await import("./strategy/reasoner-strategy.js");
  return ReasonerStrategy.connect({
    redis: context.redis.target,
    queuePrefix: context.redis.queuePrefix,
    timeoutMs: context.reasoningTimeoutMs,
    agentId: sessionId,
    nextRun: (symbol) => `${symbol}.${state.nextDecisionRun(symbol)}`,
    logger: context.logger,
  });
}

/**
 * After --take-over of a live session: waits, before reading the broker, until no order that session sent
 * before it lost the lease can still reach the broker (it fails its next ownership check, and each order
 * request it has sent is aborted at BROKER_TIMEOUT_MS), so reconciliation sees every order it placed.
 */
async function waitOutTakenOverOrders(lease: AccountLease, sessionId: string, context: TraderContext): Promise<void> {
  const waitMs = takeOverWaitMs(lease.previous, sessionId, context.takeOverSettleMs);
  if (waitMs === 0) return;
  context.logger.info(
    { event: "take_over_wait", previous: lease.previous, waitMs },
    `--take-over: waiting ${(waitMs / 1000).toFixed(1)} s before reading the broker: an order session ${lease.previous!.owner} sent just before losing the account can reach the broker until then (BROKER_TIMEOUT_MS + 2 s + TRADER_TAKEOVER_MARGIN_MS)`,
  );
  try {
    await delay(waitMs, undefined, { signal: context.signal });
  } catch (error) {
    if (!context.signal?.aborted) throw error;
    context.logger.info(
      { event: "take_over_wait_aborted", previous: lease.previous },
      "--take-over: told to stop during the wait; stopping before reading the broker, nothing traded, the account's lease given up",
    );
    throw context.signal.reason;
  }
}

/**
 * Entry orders other trader sessions left working on the account, once this session holds it (after the wait
 * when it took the account from a live session): nobody watches them any more, and one filling later would open
 * a position beside this session's own that it learns of only by adoption. Each is canceled (a bracket's legs go
 * with its entry), and the trader waits until the broker has completed every cancel (pending_cancel, then
 * canceled) or filled the order, so that reconciliation, which reads the broker next, adopts whatever filled:
 * a bracket filled whole with its working legs, the filled part of one canceled part-filled without them.
 * Starting fails, nothing traded, when the broker has not settled them within `timeoutMs`; the
 * next start finds them again. Returned as the report's changes, with the listing when it canceled nothing
 * (`stillOpen`): reconciliation's view, read next, reuses it rather than listing the same orders again.
 */
export async function cancelOtherSessionsEntries(
  broker: Broker,
  sessionId: string,
  logger: Logger,
  { signal, timeoutMs = OTHER_ENTRIES_TIMEOUT_MS }: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<OtherSessionsEntries> {
  // The first read of reconciling the account: a 5xx burst is ridden out as reconciliation's own reads are.
  const open = await retryingReads(
    () => broker.openOrders(),
    logger,
    (attempt, error) => new StartupError(`cannot list the account's open orders after ${attempt} attempts: ${error.message}. Nothing was traded. Try again once the broker answers.`),
  );
  const working = open.filter((order) => otherSessionEntry(sessionId, order.clientOrderId)?.symbol === order.symbol && !isOrderFinal(order));
  if (working.length === 0) return { changes: [], stillOpen: open };
  for (const order of working) {
    const at = { symbol: order.symbol, clientOrderId: order.clientOrderId, orderId: order.id, status: order.status, qty: order.qty, filledQty: order.filledQty };
    if (order.status !== "pending_cancel") {
      await cancelAtStartup(broker, order, logger, signal);
    }
    logger.warn(
      { event: "other_session_entry_canceled", ...at, session: otherSessionEntry(sessionId, order.clientOrderId)!.sessionId },
      `canceling entry order ${order.clientOrderId}: another session left it working on the account this session now holds, and nobody watches it; reconciliation adopts what it filled`,
    );
  }
  const settled = new Map<string, BrokerOrder>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const order of working) {
      if (settled.has(order.id)) continue;
      const now = await readAtStartup(`read entry order ${order.clientOrderId}`, () => broker.order(order.id), logger);
      if (isOrderFinal(now)) settled.set(order.id, now);
    }
    if (settled.size === working.length) break;
    if (Date.now() >= deadline) {
      const unsettled = working.filter((order) => !settled.has(order.id)).map((order) => order.clientOrderId);
      throw new StartupError(
        `the broker has not completed the cancel of ${unsettled.join(", ")} (entry orders another session left working on the account) within ${timeoutMs / 1000} s. ` +
          "Nothing was traded: one could still fill. Start again once the broker has canceled or filled them.",
      );
    }
    await delay(OTHER_ENTRIES_POLL_MS, undefined, { signal });
  }
  const changes = working.map((order): Change => {
    const { status, filledQty } = settled.get(order.id)!;
    return { kind: "other_session_entry_canceled", symbol: order.symbol, clientOrderId: order.clientOrderId, status, filledQty };
  });
  return { changes };
}

/**
 * Cancels one entry order another session left working. A DELETE of an order is idempotent, so it is sent again
 * where a read would be: after a refusal by the broker's rate limit (429, which Alpaca answers before acting)
 * once the limit has reset, up to STARTUP_RATE_LIMIT_WAITS times, and after a transient failure (no answer, a
 * timeout, a 5xx) with reconciliation's attempts and back-off (RECONCILE_ATTEMPTS). Each wait ends early, and the
 * start with it, when `signal` aborts. One that reached the broker before failing is
 * answered "not open" the next time: the order is canceled, pending cancel or filled, and what it became is
 * read after. Starting fails in one line after that, or at once on any other refusal.
 */
async function cancelAtStartup(broker: Broker, order: BrokerOrder, logger: Logger, signal: AbortSignal | undefined): Promise<void> {
  const failure = (error: unknown) =>
    new StartupError(`cannot cancel entry order ${order.clientOrderId}, which another session left working on the account: ${describeBrokerFailure(error)}. Nothing was traded; start again once the broker answers.`);
  let attempt = 1;
  let waits = 0;
  for (;;) {
    try {
      await broker.cancelOrder(order.id);
      return;
    } catch (error) {
      if (error instanceof BrokerRefusedError && error.refusal === "not_open") return;
      let waitMs: number;
      if (error instanceof BrokerRateLimitedError && waits < STARTUP_RATE_LIMIT_WAITS) {
        waits++;
        waitMs = Math.min(MAX_RATE_LIMIT_WAIT_MS, Math.max(0, error.retryAt.getTime() - Date.now()));
      } else if (error instanceof BrokerUnavailableError && attempt < RECONCILE_ATTEMPTS) {
        waitMs = RECONCILE_BACKOFF_MS * attempt;
        attempt++;
      } else {
        throw failure(error);
      }
      logger.warn(
        { event: "other_session_entry_cancel_retry", clientOrderId: order.clientOrderId, orderId: order.id, problem: describeBrokerFailure(error), waitMs },
        `could not cancel entry order ${order.clientOrderId} yet; trying again in ${Math.ceil(waitMs / 1000)} s`,
      );
      await delay(waitMs, undefined, { signal });
    }
  }
}

/** What cancelOtherSessionsEntries changed, and its listing of the open orders while that still holds (nothing canceled). */
export interface OtherSessionsEntries {
  changes: Change[];
  stillOpen?: BrokerOrder[];
}

/**
 * Reconciles with the broker before anything else, retrying reads that fail or contradict each other. A
 * broker that cannot be read is never taken as flat: after the last attempt, starting fails. `earlier`: what
 * was changed at the broker before it was read (other sessions' entries canceled), first in the report, and
 * the open orders that step listed, which the first attempt reuses (a retry reads everything again).
 */
async function reconcileOnStart(broker: Broker, state: TradingState, sessionId: string | null, logger: Logger, earlier: OtherSessionsEntries = { changes: [] }): Promise<ReconciliationReport> {
  const positionsBefore = state.positions.size;
  const closedBefore = state.closedTrades;
  const plBefore = state.realizedPl;
  let stillOpen = earlier.stillOpen;
  return retryingReads(
    async () => {
      const listed = stillOpen;
      stillOpen = undefined;
      const view = await readFullView(broker, state, listed);
      const changes = reconcile(state, view, sessionId ?? "");
      return {
        sessionId,
        accountId: view.account.id,
        checkedAt: view.readAt.toISOString(),
        positionsBefore,
        brokerPositions: view.positions.length,
        positionsAfter: state.positions.size,
        closedTradesAdded: state.closedTrades - closedBefore,
        realizedPlAdded: Math.round((state.realizedPl - plBefore) * 100) / 100,
        changes: [...earlier.changes, ...changes],
      };
    },
    logger,
    (attempt, error) =>
      new StartupError(
        `could not reconcile ${sessionId ? `session ${sessionId}` : "the account"} with the broker after ${attempt} attempts: ${error.message}. ` +
          "Nothing was traded: a failed or contradictory broker read is never taken to mean the account is flat. Try again once the broker answers.",
      ),
  );
}

/**
 * A step of reconciling on start, tried again when a broker read fails or contradicts another, up to
 * RECONCILE_ATTEMPTS times; `failure` is what starting fails with after the last attempt.
 */
async function retryingReads<T>(step: () => Promise<T>, logger: Logger, failure: (attempt: number, error: Error) => Error): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (!(error instanceof BrokerReadError) && !(error instanceof ReconciliationError)) throw error;
      if (attempt >= RECONCILE_ATTEMPTS) throw failure(attempt, error);
      // A read the rate limit refused is tried again once the limit has reset, not before.
      const retryAt = error instanceof BrokerReadError ? error.retryAt : undefined;
      const waitMs = Math.max(RECONCILE_BACKOFF_MS * attempt, retryAt ? retryAt.getTime() - Date.now() : 0);
      logger.warn({ attempt, problem: error.message, retryAt: retryAt?.toISOString() }, "reconciliation failed; retrying");
      await delay(waitMs);
    }
  }
}

/**
 * The session's first checkpoint under this process's epoch, confirmed: it fences off any earlier owner, and
 * a refusal as stale (SessionTakenOverError, rethrown) means another trader resumed the session at the same
 * time and won.
 */
async function firstCheckpoint(checkpoints: SessionCheckpoints, state: TradingState, logger: Logger): Promise<void> {
  try {
    await checkpoints.createConfirmedCheckpoint(state, "event", "active");
  } catch (error) {
    if (error instanceof SessionTakenOverError) throw error;
    logger.warn({ problem: (error as Error).message }, "first checkpoint not confirmed yet; it stays queued and trading goes on");
  }
}
