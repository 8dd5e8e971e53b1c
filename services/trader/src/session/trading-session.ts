import { SessionTakenOverError, type Logger, type SnapshotKind } from "@savepoint/shared";
import { performance } from "node:perf_hooks";
import type { Broker } from "../broker/broker.js";
import { BrokerReadError, BrokerRefusedError, describeBrokerFailure, rateLimitedUntil } from "../broker/errors.js";
import { placeOrder, type Placement } from "../broker/placement.js";
import type { TraderMetrics } from "../metrics.js";
import { RedisUnavailableError } from "../redis.js";
import { BarHistory } from "../strategy/bar-history.js";
import { planBracket } from "../strategy/bracket-plan.js";
import type { MarketSnapshot, Signal, Strategy } from "../strategy/strategy.js";
import { isOrderFinal, type BrokerLeg, type BrokerOrder, type MarketClock } from "../broker/types.js";
import { LeaseTooShortError } from "./account-lease.js";
import { readLiveView } from "./broker-view.js";
import { BrokerClockPace, closedMarketStepMs } from "./market-hours.js";
import type { SessionCheckpoints } from "./checkpoints.js";
import { closeClientOrderId, entryClientOrderId } from "./client-order-ids.js";
import { pendingFrom, reconcile, ReconciliationError, type Change } from "./reconcile.js";
import { describeChange, formatPl } from "./report.js";
import { roundMoney, type OpenPosition, type PositionExit, type PositionSide, type TradingState } from "./state.js";

export interface SessionSettings {
  sessionId: string;
  intervalMs: number;
  checkpointIntervalMs: number;
  /** Trading stops by itself after this long; null trades until stopped. */
  durationMs: number | null;
  /** How often a tick checks that the bracket legs the session counts on still work (LEGS_CHECK_INTERVAL_MS). */
  legsCheckIntervalMs?: number;
}

/**
 * Bracket legs canceled at the broker by hand (its dashboard, another client) show in no read a quiet tick makes;
 * once a minute a tick lists the working orders (one request, within Alpaca's 200 a minute) to find them.
 */
export const LEGS_CHECK_INTERVAL_MS = 60_000;

/** What tells the session, right before each order, that it still owns its session and account. */
export interface Ownership {
  /**
   * Resolves only if this trader still holds them for as long as the order request may take; throws
   * SessionTakenOverError (another trader holds them), RedisUnavailableError (cannot be known) or
   * LeaseTooShortError (held, but not surely for the whole request) otherwise.
   */
  confirm(): Promise<void>;
}

export interface SessionParts {
  broker: Broker;
  strategy: Strategy;
  checkpoints: SessionCheckpoints;
  ownership: Ownership;
  logger: Logger;
  metrics?: TraderMetrics;
}

/** Why the trading loop ended. */
export type SessionEnd =
  | { reason: "completed" }
  | { reason: "stopped"; cause: string }
  | { reason: "taken_over"; error: SessionTakenOverError }
  | { reason: "failed"; error: Error };

/** An entry order the broker may still fill, as the state knows it. */
interface WorkingEntry {
  symbol: string;
  clientOrderId: string;
  /** Null while its placement's outcome is unknown. */
  orderId: string | null;
}

/** Bars kept per symbol: the rule strategy's window, or enough recent closes for the reasoner. */
const MIN_BARS_KEPT = 120;
/** Between looks at entry orders being settled when the session ends. */
const SETTLE_POLL_MS = 100;
/** The shortest step of a sleep through a closed market, so a clock that says closed at its next open is not polled in a loop. */
const MIN_CLOSED_STEP_MS = 100;

/** A span of broker time for people: "17h 30m", "45m", "20s". */
function describeSpan(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 1) return `${Math.max(0, Math.round(ms / 1000))}s`;
  const hours = Math.floor(minutes / 60);
  return hours > 0 ? `${hours}h ${minutes % 60}m` : `${minutes}m`;
}
/**
 * How far through the last trade an exit's limit is set, so it is marketable: Alpaca's own collar on market
 * orders, 2.5% from $50 and 4% under (alpaca-docs, content/trading/orders.md, "Buying Power").
 */
const exitCollar = (price: number) => (price < 50 ? 0.04 : 0.025);
/** What protect says of the stop it placed, or of one the broker did not take. */
const SESSION_END_STOP = {
  placed: "session ending while the market is closed: a part-filled entry's shares get a protective gtc stop order at its stop-loss, working from the open",
  refused: "session ending with a position no stop-loss protects: the broker did not take its protective stop order, and the market is not open for a close: close it or trade the account again",
};
const ADOPTED_STOP = {
  placed: "adopted without a working bracket: the position gets a protective gtc stop order at the strategy's stop-loss from its average entry price",
  refused: "adopted without a working bracket: the broker did not take the position's protective stop order; it is asked for again next tick",
};
/** Leg statuses of a cancel or replace the broker has accepted but not completed. */
const CHANGING = new Set(["pending_cancel", "pending_replace"]);

/**
 * One trading session's loop: every interval a tick (market data, sync with the broker, decisions, orders),
 * every checkpoint interval a snapshot, and one on every tick that saw fills or exits. Runs until the
 * duration ends, `stop()` is called, or another trader takes the session over.
 */
export class TradingSession {
  private readonly bars: BarHistory;
  private stopCause: string | undefined;
  private takenOver: SessionTakenOverError | undefined;
  private wakeUp: (() => void) | undefined;
  private readonly pace = new BrokerClockPace();
  /** The clock that last showed the market closed, while the session sleeps towards its next open. */
  private closed: MarketClock | undefined;
  /** When the legs were last checked: a session starts reconciled with everything the broker has. */
  private legsCheckedAt = Date.now();

  constructor(
    private readonly parts: SessionParts,
    readonly state: TradingState,
    private readonly settings: SessionSettings,
  ) {
    this.bars = new BarHistory(Math.max(state.identity.strategy.lookbackBars + 1, MIN_BARS_KEPT));
  }

  get symbols(): string[] {
    return this.state.identity.symbols;
  }

  /**
   * Loads recent bars, so the strategy can decide on the first tick: three lookback windows for the rule
   * strategy (minutes without trades have no bar), the closes the reasoner is shown for the reasoner.
   */
  async warmUp(): Promise<void> {
    const clock = await this.readClock();
    const { strategy } = this.state.identity;
    const minutes = strategy.kind === "reasoner" ? MIN_BARS_KEPT : Math.max(3 * (strategy.lookbackBars + 1), 30);
    const history = await this.parts.broker.barsSince(this.symbols, new Date(clock.timestamp.getTime() - minutes * 60_000));
    for (const [symbol, bars] of history) this.bars.add(symbol, bars);
  }

  /**
   * Ticks every interval while the market is open. A tick that finds it closed puts the session to sleep until
   * the clock's next open (one line says until when): no ticks meanwhile, only a look at the clock when each
   * step of the sleep ends (see closedMarketStepMs). Periodic checkpoints go on all the while, the account
   * lease is renewed on its own timer, and `stop()` or a take-over ends the sleep at once.
   */
  async run(): Promise<SessionEnd> {
    const deadline = this.settings.durationMs === null ? Number.POSITIVE_INFINITY : Date.now() + this.settings.durationMs;
    let nextTick = Date.now();
    let nextCheckpoint = Date.now() + this.settings.checkpointIntervalMs;
    for (;;) {
      const end = this.ended(deadline);
      if (end) return end;
      await this.sleepUntil(Math.min(nextTick, nextCheckpoint, deadline));
      if (this.ended(deadline)) continue;
      if (Date.now() >= nextTick) {
        const stillClosed = this.closed ? await this.lookAtClosedMarket() : false;
        if (stillClosed === false) {
          const failure = await this.guardedTick();
          if (failure) return { reason: "failed", error: failure };
        }
        if (stillClosed === null) nextTick = Date.now() + this.settings.intervalMs;
        else if (this.closed) nextTick = Date.now() + this.closedStepMs(this.closed);
        else nextTick = Math.max(nextTick + this.settings.intervalMs, Date.now());
      }
      if (Date.now() >= nextCheckpoint && !this.takenOver) {
        this.checkpoint("periodic");
        nextCheckpoint = Date.now() + this.settings.checkpointIntervalMs;
      }
    }
  }

  /** Ends the loop after the step in progress; no further orders are placed. */
  stop(cause: string): void {
    this.stopCause ??= cause;
    this.wakeUp?.();
  }

  /** Another trader owns the session now: stop at once, without placing another order. */
  takeOver(error: SessionTakenOverError): void {
    this.takenOver ??= error;
    this.wakeUp?.();
  }

  /**
   * One tick: the latest bars, a sync with the broker (fills, exits, anything changed), then the strategy's
   * decisions while the market is open. Returns what the sync changed.
   */
  async tick(): Promise<Change[]> {
    const started = performance.now();
    const { broker } = this.parts;
    const clock = await this.readClock();
    const changes = await this.sync();
    // Read last, so the prices orders are priced from are as fresh as they can be.
    for (const [symbol, bar] of await broker.latestBars(this.symbols)) this.bars.add(symbol, [bar]);
    if (clock.isOpen) await this.act();
    else await this.protectAdoptedWhileClosed();
    this.noteMarket(clock);
    this.parts.metrics?.tickSeconds.observe((performance.now() - started) / 1000);
    this.updateGauges();
    return changes;
  }

  /**
   * Snapshots the state now and goes on: the snapshot is serialized, queued in Redis and confirmed in the
   * background, so the tick waits for neither. Before its next order the session waits until it is queued
   * (see `beforeOrder`), as it did when this waited.
   */
  checkpoint(kind: SnapshotKind): void {
    const started = performance.now();
    try {
      this.parts.checkpoints.handOffCheckpoint(this.state, kind);
    } catch (error) {
      if (!(error instanceof SessionTakenOverError)) throw error;
      this.takeOver(error);
      return;
    }
    this.parts.metrics?.checkpointSeconds.observe({ kind }, (performance.now() - started) / 1000);
  }

  /** The broker's clock, noted for its pace (on the clock the loop schedules by). */
  private async readClock(): Promise<MarketClock> {
    const before = Date.now();
    const clock = await this.parts.broker.clock();
    this.pace.observe(clock.timestamp, (before + Date.now()) / 2);
    return clock;
  }

  /** Starts or ends the sleep through a closed market, saying so once each way. */
  private noteMarket(clock: MarketClock): void {
    if (!clock.isOpen) {
      if (this.closed?.nextOpen.getTime() !== clock.nextOpen.getTime()) {
        this.parts.logger.info(
          { event: "market_closed", brokerTime: clock.timestamp.toISOString(), nextOpen: clock.nextOpen.toISOString() },
          `market closed: sleeping until the next open at ${clock.nextOpen.toISOString()} (broker time, ${describeSpan(clock.nextOpen.getTime() - clock.timestamp.getTime())} from now)`,
        );
      }
      this.closed = clock;
      return;
    }
    if (this.closed) this.parts.logger.info({ event: "market_open", brokerTime: clock.timestamp.toISOString() }, "market open: trading again");
    this.closed = undefined;
  }

  /**
   * When a step of the sleep ends: only the clock is read. True while the market is still closed (the sleep goes
   * on), false once it is open (a tick follows at once), null when the clock could not be read (looked at again
   * after an interval).
   */
  private async lookAtClosedMarket(): Promise<boolean | null> {
    let clock: MarketClock;
    try {
      clock = await this.readClock();
    } catch (error) {
      if (!(error instanceof BrokerReadError)) throw error;
      this.parts.logger.warn({ problem: error.message }, "could not read the market clock while the market is closed; looking again after an interval");
      return null;
    }
    if (clock.isOpen) return false;
    this.noteMarket(clock);
    this.parts.logger.debug({ brokerTime: clock.timestamp.toISOString(), nextOpen: clock.nextOpen.toISOString() }, "market still closed");
    return true;
  }

  private closedStepMs(clock: MarketClock): number {
    return Math.max(MIN_CLOSED_STEP_MS, closedMarketStepMs(clock, this.pace));
  }

  private ended(deadline: number): SessionEnd | undefined {
    if (this.takenOver) return { reason: "taken_over", error: this.takenOver };
    if (this.stopCause !== undefined) return { reason: "stopped", cause: this.stopCause };
    if (Date.now() >= deadline) return { reason: "completed" };
    return undefined;
  }

  private sleepUntil(at: number): Promise<void> {
    const ms = at - Date.now();
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  /**
   * A tick the broker or Redis cannot serve is skipped, not fatal: nothing is decided on answers that are
   * missing, and open positions stay protected by their bracket legs at the broker meanwhile. Anything else
   * ends the session (returned, so the final checkpoint is still written).
   */
  private async guardedTick(): Promise<Error | undefined> {
    try {
      await this.tick();
      this.parts.metrics?.ticks.inc({ outcome: "ok" });
    } catch (error) {
      if (error instanceof SessionTakenOverError) {
        this.takeOver(error);
        return undefined;
      }
      if (error instanceof RedisUnavailableError) {
        this.parts.metrics?.ticks.inc({ outcome: "skipped" });
        this.parts.logger.warn({ problem: error.message }, "tick skipped: Redis does not answer; open positions keep their stop-loss and take-profit legs at the broker; trying again next tick");
        return undefined;
      }
      if (error instanceof LeaseTooShortError) {
        this.parts.metrics?.ticks.inc({ outcome: "skipped" });
        this.parts.logger.warn({ problem: error.message }, "tick skipped: this trader's hold on the account might not outlast an order request; trying again next tick");
        return undefined;
      }
      if (!(error instanceof BrokerReadError) && !(error instanceof ReconciliationError)) return error as Error;
      this.parts.metrics?.ticks.inc({ outcome: "skipped" });
      this.parts.logger.warn({ problem: error.message }, "tick skipped: the broker could not be read reliably; trying again next tick");
    }
    return undefined;
  }

  /**
   * One last sync when the session is stopped, before its final checkpoint, so that checkpoint holds what the
   * broker has done since the last tick: orders fill on the broker's clock, and a sleep through a closed market
   * reads only the clock. A broker that cannot be read leaves the state as it is; --resume reconciles the rest.
   */
  async syncBeforeStop(): Promise<void> {
    try {
      await this.sync();
    } catch (error) {
      this.parts.logger.warn({ problem: (error as Error).message }, "could not read the broker before the final checkpoint; --resume reconciles what changed");
    }
  }

  /**
   * At the end of the session (--duration): cancels every entry order the broker could still fill, unfilled
   * (pending) or part-filled (its position still filling), and waits until the broker has completed each cancel
   * (pending_cancel, then canceled) or filled the order, booking what filled until then, so the final checkpoint
   * holds every fill of the session and no entry that could fill after it. Canceling a part-filled entry cancels
   * its bracket legs with it (as on Alpaca), so what filled is left without a stop-loss: while the market is
   * open it is closed at market, as a tick would, and that close is waited for too; while it is closed it gets a
   * protective stop order instead (see protect). Gives up after `timeoutMs`, leaving what is unsettled in the
   * state as it is.
   */
  async settleEntries(timeoutMs: number): Promise<void> {
    const { logger } = this.parts;
    const deadline = Date.now() + timeoutMs;
    const canceling = new Set<string>();
    const closing = new Set<string>();
    // After a 429 the broker is asked nothing until the limit resets (the adapter has said so once).
    let resumeAt = 0;
    const rateLimited = (error: unknown) => {
      const until = rateLimitedUntil(error);
      if (until) resumeAt = Math.max(resumeAt, until.getTime());
      return until !== undefined;
    };
    for (;;) {
      for (const entry of this.workingEntries()) {
        if (!canceling.has(entry.clientOrderId) && (await this.cancelEntry(entry, rateLimited))) canceling.add(entry.clientOrderId);
      }
      try {
        await this.sync();
      } catch (error) {
        if (!rateLimited(error)) logger.warn({ problem: (error as Error).message }, "could not read the broker while settling entry orders; trying again");
      }
      const working = this.workingEntries();
      if (working.length === 0) await this.closeUnprotected(closing);
      // A protective stop works until the market opens and it fills: nothing to wait for.
      const exiting = [...closing].filter((symbol) => {
        const exit = this.state.positions.get(symbol)?.exit;
        return exit && exit.method !== "protective_stop";
      });
      if (working.length === 0 && exiting.length === 0) return;
      if (Date.now() >= deadline) {
        logger.warn(
          { working: working.map((entry) => entry.clientOrderId), exiting, timeoutMs },
          "entry orders not settled at the end of the session; the final checkpoint keeps them as they are and --reconcile-only shows what became of them",
        );
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(SETTLE_POLL_MS, Math.min(resumeAt, deadline) - Date.now())));
    }
  }

  /**
   * At the end of the session, once no entry works: each position of the strategy that nothing protects at the
   * broker (a part-filled entry canceled, legs and all) is closed at market, once, while the market is open;
   * while it is closed, a market order would fill only after the final checkpoint, so it gets a protective stop.
   */
  private async closeUnprotected(closing: Set<string>): Promise<void> {
    const { logger } = this.parts;
    const unprotected = [...this.state.positions.values()].filter((position) => isUnprotected(position) && !position.exit && !closing.has(position.symbol));
    if (unprotected.length === 0) return;
    for (const { symbol } of unprotected) closing.add(symbol);
    let open: boolean;
    try {
      open = (await this.readClock()).isOpen;
    } catch (error) {
      open = false;
      logger.warn({ problem: describeBrokerFailure(error) }, "could not read the market clock at the end of the session");
    }
    if (!open) {
      for (const position of unprotected) {
        try {
          await this.protect(position);
        } catch (error) {
          logger.warn({ symbol: position.symbol, problem: (error as Error).message }, "could not place a protective stop for a position no stop-loss protects at the end of the session");
        }
      }
      return;
    }
    for (const position of unprotected) {
      try {
        await this.exit(position, { action: "CLOSE", reason: "session ending: its entry was canceled part-filled, and its stop-loss with it" }, this.bars.snapshot(position.symbol)?.price ?? position.entryPrice);
      } catch (error) {
        logger.warn({ symbol: position.symbol, problem: (error as Error).message }, "could not close a position no stop-loss protects at the end of the session");
      }
    }
  }

  /** Entry orders of this session the broker may still fill: the pending ones, and the part-filled ones still filling. */
  private workingEntries(): WorkingEntry[] {
    const pending = [...this.state.pendingEntries.values()].map(({ symbol, clientOrderId, orderId }) => ({ symbol, clientOrderId, orderId }));
    const filling = [...this.state.positions.values()].flatMap(({ symbol, entryFilling, orders }) =>
      entryFilling && orders.entryClientOrderId !== null ? [{ symbol, clientOrderId: orders.entryClientOrderId, orderId: orders.entryId }] : [],
    );
    return [...pending, ...filling];
  }

  /**
   * Asks the broker to cancel a working entry; true once there is nothing more to ask (the cancel accepted, one
   * already pending, or the order final), false to ask again (a failure, or an order whose placement is unknown
   * and not visible yet: the sync drops it once the broker's list shows it was never placed). A failure
   * `rateLimited` claims is not logged.
   */
  private async cancelEntry({ symbol, clientOrderId, orderId }: WorkingEntry, rateLimited: (error: unknown) => boolean): Promise<boolean> {
    const { broker, logger } = this.parts;
    try {
      const order = orderId ? await broker.order(orderId) : await broker.orderByClientOrderId(clientOrderId);
      if (!order) return false;
      if (isOrderFinal(order) || order.status === "pending_cancel") return true;
      await broker.cancelOrder(order.id);
      logger.info(
        { symbol, clientOrderId, orderId: order.id, qty: order.qty, filledQty: order.filledQty },
        order.filledQty > 0 ? "session ending: canceling the rest of its part-filled entry order" : "session ending: canceling its working entry order",
      );
      return true;
    } catch (error) {
      // The order became final meanwhile (filled or canceled), or its cancel is already pending; the sync books it.
      if (error instanceof BrokerRefusedError && error.refusal === "not_open") return true;
      if (!rateLimited(error)) logger.warn({ symbol, clientOrderId, problem: (error as Error).message }, "could not cancel a working entry order; trying again");
      return false;
    }
  }

  private async sync(): Promise<Change[]> {
    const checkLegs = Date.now() - this.legsCheckedAt >= (this.settings.legsCheckIntervalMs ?? LEGS_CHECK_INTERVAL_MS);
    const view = await readLiveView(this.parts.broker, this.state, { checkLegs });
    if (checkLegs) this.legsCheckedAt = Date.now();
    const changes = reconcile(this.state, view, this.settings.sessionId);
    for (const change of changes) this.logChange(change);
    if (changes.length > 0) this.checkpoint("event");
    return changes;
  }

  /**
   * The end of a session while the market is closed, for a position nothing protects (its part-filled entry was
   * canceled, and its legs with it, as on Alpaca): a market order would fill only after the final checkpoint, so
   * it gets a gtc stop order at its bracket's stop-loss for all it holds instead, under the trade's next close id,
   * recorded as its exit (`protective_stop`) in the final checkpoint, so a --resume watches it and books its
   * fill. Alpaca queues an order placed after the close that may not trade in extended hours (only limit day
   * orders may) "for release the next trading day", and a sell stop stays a stop order, becoming a market order
   * once elected (a buy stop a stop-limit), both in alpaca-docs, content/trading/orders.md: from the open it
   * protects the position as the stop-loss leg would have. A refused or rate-limited placement leaves the
   * position as it is, and says so (`said`). An adopted position without a working bracket gets one too
   * (protectAdopted), at once.
   */
  private async protect(position: OpenPosition, said: { placed: string; refused: string } = SESSION_END_STOP): Promise<void> {
    const { broker, logger } = this.parts;
    const { symbol, stopLoss } = position;
    if (stopLoss === null) {
      logger.warn({ symbol, qty: position.qty }, "session ending with a position no stop-loss protects, and no stop price planned for it; not closed now, as the market is not open: close it or trade the account again");
      return;
    }
    await this.beforeOrder();
    const attempt = position.closeAttempts + 1;
    const clientOrderId = closeClientOrderId(this.settings.sessionId, symbol, position.tradeNo, attempt);
    const side = position.side === "long" ? "sell" : "buy";
    const described = { symbol, clientOrderId, side, qty: position.qty, stopPrice: stopLoss, method: "protective_stop" };
    const placement = await placeOrder(broker, clientOrderId, () => broker.submitStop({ clientOrderId, symbol, side, qty: position.qty, stopPrice: stopLoss }));
    this.parts.metrics?.orders.inc({ outcome: placement.outcome });
    if (placement.outcome === "rejected" || placement.outcome === "not_placed") {
      logger.warn({ ...described, problem: placement.reason }, said.refused);
      return;
    }
    position.exit = { clientOrderId, orderId: placement.outcome === "unknown" ? null : placement.order.id, method: "protective_stop", requestedAt: new Date().toISOString() };
    position.closeAttempts = attempt;
    if (placement.outcome === "unknown") logger.warn({ ...described, problem: placement.reason }, "protective stop order's outcome unknown; --resume looks it up under its id");
    else logger.info({ ...described, orderId: placement.order.id, status: placement.order.status }, said.placed);
    this.checkpoint("event");
  }

  /**
   * An adopted position nothing protects (bought outside any session, or the part another session's entry filled
   * before this session canceled the rest, legs and all) gets the stop the strategy gives its own trades: a
   * protective gtc stop order (see protect) at --stop-loss-pct from the broker's average entry price, for all it
   * holds. One whose last trade is already through that price is closed at market instead, as its stop would have
   * been, while the market is open; while it is closed it gets the stop (see protectAdoptedWhileClosed).
   */
  private async protectAdopted(position: OpenPosition, price: number | undefined, marketOpen: boolean): Promise<void> {
    const direction = position.side === "long" ? 1 : -1;
    const stopLoss = roundMoney(position.entryPrice * (1 - (direction * this.state.identity.strategy.stopLossPct) / 100));
    const through = price !== undefined && (price - stopLoss) * direction <= 0;
    if (through && marketOpen) {
      await this.exit(position, { action: "CLOSE", reason: `adopted without a stop, and its last trade (${price}) is already through the stop-loss it would get (${stopLoss})` }, price);
      return;
    }
    if (through) {
      this.parts.logger.warn(
        { symbol: position.symbol, price, stopLoss },
        "adopted without a stop while the market is closed, and its last trade is already through the stop-loss it gets: the stop is placed anyway, and elects at the open",
      );
    }
    position.stopLoss = stopLoss;
    await this.protect(position, ADOPTED_STOP);
  }

  /**
   * A tick while the market is closed (at start, the first one) decides nothing, but an adopted position nothing
   * protects gets its protective stop at once rather than at the open: Alpaca takes a gtc stop order after the
   * close and queues it "for release the next trading day" (see protect), so it protects the position from the
   * open on. Its price comes from the broker's average entry, not the market's; one whose last trade is already
   * through it gets the stop too, not a market close, which would only be queued for the open as well: a sell stop
   * becomes a market order once elected, so it fills at the open's first trade as that close would (a buy stop, a
   * stop-limit, within its collar of the stop; the strategy decides on the position from the open).
   */
  private async protectAdoptedWhileClosed(): Promise<void> {
    for (const symbol of this.symbols) {
      if (this.takenOver || this.stopCause !== undefined) return;
      const position = this.state.positions.get(symbol);
      if (!position || this.state.pendingEntries.has(symbol) || position.exit || position.origin !== "adopted" || position.closeAttempts !== 0 || !isUnprotected(position)) continue;
      await this.protectAdopted(position, this.bars.snapshot(symbol)?.price, false);
    }
  }

  private async act(): Promise<void> {
    const { strategy } = this.parts;
    for (const symbol of this.symbols) {
      if (this.takenOver || this.stopCause !== undefined) return;
      if (this.state.pendingEntries.has(symbol)) continue;
      const market = this.bars.snapshot(symbol);
      if (!market) continue;
      const position = this.state.positions.get(symbol);
      // One exit at a time: the one in progress is watched by the sync until the broker settles it. A protective
      // stop waits for its price; the strategy may close the position before (see exit).
      if (position?.exit && position.exit.method !== "protective_stop") continue;
      if (position && !position.exit && isUnprotected(position)) {
        // An adopted position gets its stop once; after an exit of it (its stop canceled for a CLOSE, or ended
        // unfilled) it is closed at market, as the strategy's own are.
        if (position.origin === "adopted" && position.closeAttempts === 0) await this.protectAdopted(position, market.price, true);
        else await this.exit(position, { action: "CLOSE", reason: "no working stop-loss or take-profit protects it" }, market.price);
        continue;
      }
      const signal = await strategy.decide(market, position ? { side: position.side, qty: position.qty, entryPrice: position.entryPrice } : null);
      if (!position && (signal.action === "OPEN_LONG" || signal.action === "OPEN_SHORT")) {
        await this.enter(market, signal.action === "OPEN_LONG" ? "long" : "short", signal);
      } else if (position && signal.action === "CLOSE") {
        await this.exit(position, signal, market.price);
      }
    }
  }

  /**
   * Before an order: the checkpoints taken so far are in Redis (what the last sync booked survives a crash
   * before the broker acts on the order), and this trader still owns its session and account.
   */
  private async beforeOrder(): Promise<void> {
    await this.parts.checkpoints.accepted();
    await this.parts.ownership.confirm();
  }

  private async enter(market: MarketSnapshot, side: PositionSide, signal: Signal): Promise<void> {
    const { broker, logger } = this.parts;
    const { symbol } = market;
    const account = this.state.account;
    const plan = planBracket(side, market.price, this.state.identity.strategy, account?.buyingPower ?? 0);
    if ("skip" in plan) {
      logger.debug({ symbol, side, problem: plan.skip }, "entry skipped");
      return;
    }
    const tradeNo = this.state.nextTradeNo(symbol);
    const clientOrderId = entryClientOrderId(this.settings.sessionId, symbol, tradeNo);
    await this.beforeOrder();
    const placement = await placeOrder(broker, clientOrderId, () =>
      broker.submitBracket({ clientOrderId, symbol, side: side === "long" ? "buy" : "sell", qty: plan.qty, takeProfit: plan.takeProfit, stopLoss: plan.stopLoss }),
    );
    this.parts.metrics?.orders.inc({ outcome: placement.outcome });
    const described = { symbol, clientOrderId, side, qty: plan.qty, price: market.price, takeProfit: plan.takeProfit, stopLoss: plan.stopLoss, reason: signal.reason };
    if (placement.outcome === "rejected") {
      logger.warn({ ...described, problem: placement.reason }, "entry order rejected by the broker; nothing placed");
      return;
    }
    if (placement.outcome === "not_placed") {
      logger.warn(
        { ...described, retryAt: placement.retryAt.toISOString(), problem: placement.reason },
        "entry order not placed: the broker's rate limit refused it (HTTP 429); the strategy decides again once the limit resets, under the same client_order_id",
      );
      return;
    }
    // Charged as Alpaca charges it, so a second entry in the same tick is sized against what is really left.
    if (account) account.buyingPower -= plan.buyingPowerNeeded;
    if (placement.outcome === "unknown") {
      this.state.pendingEntries.set(symbol, { symbol, side, qty: plan.qty, tradeNo, clientOrderId, orderId: null, takeProfit: plan.takeProfit, stopLoss: plan.stopLoss, submittedAt: new Date().toISOString(), confirmed: false });
      logger.warn({ ...described, problem: placement.reason }, "entry order outcome unknown; it is looked up again next tick and its id is reused, never replaced");
      return;
    }
    this.state.pendingEntries.set(symbol, pendingFrom(placement.order, symbol, tradeNo, new Date()));
    this.state.markTradeNoUsed(symbol, tradeNo);
    logger.info({ ...described, orderId: placement.order.id, status: placement.order.status }, placedMessage("entry", placement));
  }

  /**
   * Asks the broker to close a position, by the one order it accepts while the bracket's legs hold the shares
   * (an exit rule, see the README's "Exits"): the take-profit leg is replaced by a limit at a marketable price
   * (through the last trade by Alpaca's market collar, never past the stop-loss), so the stop-loss keeps
   * protecting the position until the exit fills and the broker cancels it (one cancels other). A position
   * with no working legs is closed by a market order. Never a cancel and a sell together: Alpaca refuses the
   * sell with 403 (held_for_orders) until the cancel has completed, so a take-profit leg that has filled in part
   * (which Alpaca would replace for its whole quantity) and a protective stop are canceled first, and the position
   * is closed at market once they are (see cancelProtection). The request is recorded as the position's
   * exit, under the trade's next close id, and checkpointed; the sync then watches it until the broker settles
   * it, across ticks and restarts.
   */
  private async exit(position: OpenPosition, signal: Signal, price: number): Promise<void> {
    const { broker, logger } = this.parts;
    const { symbol } = position;
    const entry = position.orders.entryId ? await broker.order(position.orders.entryId) : null;
    const legs = entry?.legs ?? [];
    if (entry && !isOrderFinal(entry)) {
      logger.info({ symbol, orderId: entry.id, status: entry.status }, "exit waits: the entry is still filling, and its legs work only once it has");
      return;
    }
    if (legs.some((leg) => CHANGING.has(leg.status)) && !(await this.trackUnrecordedExit(position))) {
      logger.info({ symbol, legs: legs.map((leg) => leg.status) }, "exit waits: a cancel or replace of the bracket's legs is still in progress at the broker");
      return;
    }
    if (position.exit?.method === "protective_stop") {
      // Closed at market once its stop is canceled: Alpaca refuses a closing order beside it (held_for_orders).
      if (position.exit.orderId !== null) await this.cancelProtection(position, { id: position.exit.orderId, clientOrderId: position.exit.clientOrderId, filledQty: 0 }, "stop", signal);
      return;
    }
    if (position.exit) return;
    // The legs filled since this tick's sync (the read above is newer): the broker closed that much already, and a
    // market order for the position as the session knows it would buy or sell it a second time, opening one.
    const exited = legs.reduce((sum, leg) => sum + leg.filledQty, 0);
    if (entry && entry.filledQty - exited < position.qty) {
      logger.info({ symbol, legs: legs.map((leg) => `${leg.status} ${leg.filledQty}`) }, "exit waits: the bracket's legs have filled since the last sync, which the next one books");
      return;
    }
    const takeProfit = legs.find((leg) => leg.type === "limit" && !isOrderFinal(leg));
    const working = legs.filter((leg) => !isOrderFinal(leg));
    if (working.length > 0 && !takeProfit) {
      logger.warn({ symbol, legs: legs.map((leg) => leg.status) }, "exit waits: the bracket's stop-loss works without its take-profit; the next sync shows what the broker did");
      return;
    }
    if (takeProfit && takeProfit.filledQty > 0) {
      await this.cancelProtection(position, takeProfit, "legs", signal);
      return;
    }
    await this.beforeOrder();
    const attempt = position.closeAttempts + 1;
    const clientOrderId = closeClientOrderId(this.settings.sessionId, symbol, position.tradeNo, attempt);
    const exit: PositionExit = { clientOrderId, orderId: null, method: takeProfit ? "replace_take_profit" : "market", requestedAt: new Date().toISOString() };
    const described = { symbol, clientOrderId, qty: position.qty, side: position.side, method: exit.method, reason: signal.reason };
    const placement = await placeOrder(broker, clientOrderId, () =>
      takeProfit
        ? broker.replaceOrder(takeProfit.id, { clientOrderId, limitPrice: exitLimit(position, price) })
        : broker.submitMarket({ clientOrderId, symbol, side: position.side === "long" ? "sell" : "buy", qty: position.qty }),
    );
    this.parts.metrics?.orders.inc({ outcome: placement.outcome });
    if (placement.outcome === "rejected") {
      logger.warn({ ...described, problem: placement.reason }, "exit refused by the broker; nothing changed, the next sync shows the position as the broker has it");
      return;
    }
    if (placement.outcome === "not_placed") {
      logger.warn(
        { ...described, retryAt: placement.retryAt.toISOString(), problem: placement.reason },
        "exit not placed: the broker's rate limit refused it (HTTP 429); nothing changed, it is asked for again once the limit resets",
      );
      return;
    }
    position.exit = exit;
    position.closeAttempts = attempt;
    if (placement.outcome === "unknown") {
      logger.warn({ ...described, problem: placement.reason }, "exit outcome unknown; it is looked up again next tick and its id is reused, never replaced");
    } else {
      exit.orderId = placement.order.id;
      logger.info({ ...described, orderId: placement.order.id, status: placement.order.status }, placedMessage("exit", placement));
    }
    this.checkpoint("event");
  }

  /**
   * Asks the broker to cancel what protects a position, so that it can then be closed at market: Alpaca refuses a
   * closing order while they hold its shares (held_for_orders). Recorded as the exit (`cancel_protection`, the
   * order asked to cancel) and watched by the sync; once the broker has canceled it the position is unprotected,
   * and the next tick closes what is left at market under the next close id.
   *
   * - `legs`, for a take-profit leg that has filled in part: Alpaca would make the leg's replacement a new order for
   *   the leg's whole quantity, not what is left of it (users' report, Alpaca-API#165), more than the position
   *   holds (refused with 403, or selling it twice), and a bracket leg's replace changes only its limit_price and
   *   stop_price (alpaca-docs, content/trading/orders.md, "Bracket Orders"). The take-profit's cancel takes the
   *   stop-loss with it (one cancels other).
   * - `stop`, for a position's protective stop (see protect), when the strategy closes it first.
   */
  private async cancelProtection(position: OpenPosition, order: Pick<BrokerLeg, "id" | "clientOrderId" | "filledQty">, what: "legs" | "stop", signal: Signal): Promise<void> {
    const { broker, logger } = this.parts;
    const described = { symbol: position.symbol, orderId: order.id, qty: position.qty, orderFilledQty: order.filledQty, method: "cancel_protection", reason: signal.reason };
    const canceled = what === "legs" ? "the legs'" : "the protective stop's";
    await this.beforeOrder();
    try {
      await broker.cancelOrder(order.id);
    } catch (error) {
      if (error instanceof BrokerRefusedError || rateLimitedUntil(error) !== undefined) {
        logger.warn({ ...described, problem: describeBrokerFailure(error) }, `exit: ${canceled} cancel was not accepted; nothing changed, the next sync shows the order as the broker has it`);
        return;
      }
      // The outcome is unknown: watched all the same; the sync sees whether the order still works uncanceled.
      logger.warn({ ...described, problem: describeBrokerFailure(error) }, `exit: ${canceled} cancel got no answer; the sync watches the order`);
    }
    position.exit = { clientOrderId: order.clientOrderId, orderId: order.id, method: "cancel_protection", requestedAt: new Date().toISOString() };
    logger.info(
      described,
      what === "legs"
        ? "exit: the take-profit leg has filled in part, so it cannot be replaced for the rest; canceling the bracket's legs, then closing what is left at market"
        : "exit: canceling the position's protective stop, then closing it at market",
    );
    this.checkpoint("event");
  }

  /**
   * A leg is being canceled or replaced, yet the state records no exit: an earlier run may have asked for this
   * trade's exit and crashed before its checkpoint. Its order, found under the trade's next close id, becomes
   * the exit; true when it was.
   */
  private async trackUnrecordedExit(position: OpenPosition): Promise<boolean> {
    const clientOrderId = closeClientOrderId(this.settings.sessionId, position.symbol, position.tradeNo, position.closeAttempts + 1);
    let found: BrokerOrder | null;
    try {
      found = await this.parts.broker.orderByClientOrderId(clientOrderId);
    } catch (error) {
      this.parts.logger.warn({ symbol: position.symbol, clientOrderId, problem: describeBrokerFailure(error) }, "could not look up an earlier exit; trying again next tick");
      return false;
    }
    if (!found) return false;
    position.exit = { clientOrderId, orderId: found.id, method: found.type === "market" ? "market" : "replace_take_profit", requestedAt: new Date().toISOString() };
    position.closeAttempts += 1;
    this.parts.logger.info({ symbol: position.symbol, clientOrderId, orderId: found.id, status: found.status }, "exit already at the broker under this id (asked for before a restart); tracking it");
    this.checkpoint("event");
    return true;
  }

  private logChange(change: Change): void {
    const { logger, metrics } = this.parts;
    metrics?.changes.inc({ kind: change.kind });
    if (change.kind === "entry_filled") {
      logger.info({ symbol: change.symbol, side: change.side, qty: change.qty, price: change.fillPrice, clientOrderId: change.clientOrderId }, "Entry filled");
    } else if (change.kind === "exit_partially_filled") {
      logger.info({ ...change, sessionRealizedPl: this.state.realizedPl }, `Exit partly filled: ${describeChange(change)}`);
    } else if (change.kind === "position_closed" && change.trade.via !== "unknown") {
      const { trade } = change;
      logger.info(
        { ...trade, openedUnseen: change.openedUnseen, closedTrades: this.state.closedTrades, sessionRealizedPl: this.state.realizedPl },
        `Position closed: ${trade.symbol} ${trade.side} ${trade.qty} via ${trade.via}, realised ${formatPl(trade.realizedPl)}`,
      );
    } else {
      logger.warn({ change }, `broker differs from the session: ${describeChange(change)}`);
    }
  }

  private updateGauges(): void {
    const { metrics } = this.parts;
    metrics?.openPositions.set(this.state.positions.size);
    metrics?.closedTrades.set(this.state.closedTrades);
    metrics?.realizedPl.set(this.state.realizedPl);
  }
}

/**
 * Nothing at the broker protects the position: one of the strategy's whose bracket legs all ended without a fill
 * (closed at market), or one adopted without a working bracket (given a protective stop, see protectAdopted).
 */
const isUnprotected = (position: OpenPosition) =>
  (position.origin === "adopted" || position.orders.entryId !== null) && position.orders.takeProfitId === null && position.orders.stopLossId === null;

/**
 * The exit's limit: through the last trade by the collar, so it fills at the next trade, but on the take-profit's
 * side of the stop-loss (a cent inside it), where Alpaca requires a bracket's take-profit to be.
 */
function exitLimit(position: OpenPosition, price: number): number {
  const through = position.side === "long" ? price * (1 - exitCollar(price)) : price * (1 + exitCollar(price));
  const limit = roundMoney(through);
  if (position.stopLoss === null) return limit;
  return position.side === "long" ? Math.max(limit, roundMoney(position.stopLoss + 0.01)) : Math.min(limit, roundMoney(position.stopLoss - 0.01));
}

function placedMessage(what: "entry" | "exit", placement: Extract<Placement, { outcome: "placed" | "found" }>): string {
  if (placement.outcome === "placed") return `${what} order placed`;
  return placement.cause === "duplicate"
    ? `${what} order already at the broker under this id (placed before a restart); tracking it instead of placing it again`
    : `${what} order got no answer but is at the broker; tracking it`;
}
