import { tradingSymbolSchema } from "@savepoint/shared";
import { z } from "zod";
import { RESUMES_KEPT, resumeRecordSchema, type ResumeRecord } from "./resume-record.js";

/** Version of the checkpointed state below; bump it when its shape changes incompatibly. */
export const TRADER_STATE_VERSION = 1;

const iso = z.iso.datetime({ offset: true, error: "must be an ISO-8601 timestamp" });
const price = z.number().positive("must be a price > 0");
const quantity = z.number().positive("must be > 0");
const tradeNo = z.number().int().min(1);
export const sideSchema = z.enum(["long", "short"]);
export type PositionSide = z.infer<typeof sideSchema>;

export const strategyParamsSchema = z.strictObject({
  kind: z.enum(["rule", "reasoner"]),
  /** Stop-loss distance from the entry price, in percent. */
  stopLossPct: z.number().positive().max(99),
  /** Take-profit distance from the entry price, in percent. */
  takeProfitPct: z.number().positive().max(1_000),
  /** Dollars to commit per position; the quantity is the whole number of shares this buys. */
  positionSize: z.number().positive(),
  /** The rule strategy's momentum window, in one-minute bars. */
  lookbackBars: z.number().int().min(1).max(500),
  /** The rule strategy enters when momentum over the window reaches this many percent, either way. */
  entryThresholdPct: z.number().min(0).max(100),
});
export type StrategyParams = z.infer<typeof strategyParamsSchema>;

/**
 * The exit of a position in progress at the broker, kept across ticks (and checkpoints) so that it is asked for
 * once and watched until the broker settles it: filled (the position closes), or ended unfilled (cleared, and
 * the next exit takes the next close id).
 * - replace_take_profit: the bracket's take-profit leg is being replaced by a limit at a marketable price;
 * - cancel_protection: the orders protecting the position are being canceled so that it can be closed at market
 *   (the order is the one asked to cancel): its bracket's legs (the take-profit's sibling goes with it), as a
 *   take-profit leg that has filled in part cannot be replaced, or its protective stop; once they are, the
 *   position is unprotected and closed at market (see TradingSession.exit);
 * - protective_stop: a gtc stop order at the bracket's stop-loss, for a position whose legs are gone, placed while
 *   the market is closed at the end of a session (see TradingSession.protect); it works until it fills, and a
 *   CLOSE cancels it first;
 * - market: a market order, for a position with no working bracket legs.
 */
const exitSchema = z.strictObject({
  clientOrderId: z.string(),
  /** Null while the request got no answer and the order has not been found by its client_order_id yet. */
  orderId: z.string().nullable(),
  method: z.enum(["replace_take_profit", "cancel_protection", "protective_stop", "market"]),
  requestedAt: iso,
});
export type PositionExit = z.infer<typeof exitSchema>;

/** One exit order's fills as booked: its filled quantity and average price then, and the P&L they realised. */
const bookedExitSchema = z.strictObject({ qty: quantity, price, realizedPl: z.number() });
export type BookedExit = z.infer<typeof bookedExitSchema>;

const openPositionSchema = z.strictObject({
  symbol: tradingSymbolSchema,
  side: sideSchema,
  qty: quantity,
  entryPrice: price,
  stopLoss: price.nullable(),
  takeProfit: price.nullable(),
  /** The trade's number for its symbol in this session; its orders' client_order_ids derive from it. */
  tradeNo,
  /** "adopted": found at the broker without an order of this session behind it. */
  origin: z.enum(["strategy", "adopted"]),
  /** Broker time of the entry fill, when known. */
  openedAt: iso.nullable(),
  orders: z.strictObject({
    entryId: z.string().nullable(),
    entryClientOrderId: z.string().nullable(),
    takeProfitId: z.string().nullable(),
    stopLossId: z.string().nullable(),
  }),
  /**
   * The entry order has not filled whole yet (a partial fill): every sync reads it, since what it does next
   * (fill the rest, or end and take its legs along) does not show in the position alone.
   */
  entryFilling: z.boolean().default(false),
  /** Absent in snapshots from before exits were tracked: none in progress. */
  exit: exitSchema.nullable().default(null),
  /** Exit client_order_ids the trade has used (`:close`, `:close:2` …); the next exit takes the next one. */
  closeAttempts: z.number().int().min(0).default(0),
  /**
   * The exit fills booked so far, by exit order id (a bracket leg, the leg that replaced it, a close order): the
   * broker realises each fill, so the session books each one when it sees it, and a resume books only what
   * filled beyond this. Absent in snapshots from before exits were booked per fill: those booked a trade whole
   * once it closed, so nothing of an open position was booked.
   */
  exitFills: z.record(z.string(), bookedExitSchema).default({}),
});
export type OpenPosition = z.infer<typeof openPositionSchema>;

const pendingEntrySchema = z.strictObject({
  symbol: tradingSymbolSchema,
  side: sideSchema,
  qty: quantity,
  tradeNo,
  clientOrderId: z.string(),
  orderId: z.string().nullable(),
  takeProfit: price.nullable(),
  stopLoss: price.nullable(),
  submittedAt: iso,
  /** False when the placement got no answer and no order could be found yet: it may or may not exist. */
  confirmed: z.boolean(),
});
export type PendingEntry = z.infer<typeof pendingEntrySchema>;

const accountFiguresSchema = z.strictObject({
  id: z.string(),
  portfolioValue: z.number(),
  buyingPower: z.number(),
  cash: z.number(),
  asOf: iso,
});
export type AccountFigures = z.infer<typeof accountFiguresSchema>;

/** The `state` of every trader snapshot. */
export const traderStateSchema = z.strictObject({
  sessionStartedAt: iso,
  /** The broker's clock when the session began: orders are listed from here (it may differ from ours). */
  brokerSessionStartedAt: iso,
  symbols: z.array(tradingSymbolSchema).min(1),
  strategy: strategyParamsSchema,
  account: accountFiguresSchema.nullable(),
  positions: z.array(openPositionSchema),
  pendingEntries: z.array(pendingEntrySchema),
  /** Next trade number per symbol (1 when absent). */
  nextTradeNo: z.record(z.string(), tradeNo),
  /** Reasoning runs asked for per symbol, so a restarted trader does not reuse a run's job id. */
  decisionRuns: z.record(z.string(), z.number().int().min(0)),
  closedTrades: z.number().int().min(0),
  realizedPl: z.number(),
  /** The latest resumes, oldest first, each with its reconciliation report. Absent in snapshots from before they were kept. */
  resumes: z.array(resumeRecordSchema).default([]),
  takenAt: iso,
});
export type TraderState = z.infer<typeof traderStateSchema>;

export type ExitVia = "take_profit" | "stop_loss" | "close_order" | "other_order" | "unknown";

export interface ClosedTrade {
  symbol: string;
  side: PositionSide;
  qty: number;
  entryPrice: number;
  /** Null when the broker shows the position gone but no fill that closed it. */
  exitPrice: number | null;
  realizedPl: number;
  via: ExitVia;
  tradeNo: number;
}

/**
 * A deep copy of plain data (objects, arrays, primitives), as the state holds: several times cheaper than
 * structuredClone or a JSON round trip, and it follows whatever fields the schema gains.
 */
function copyOf<T>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map(copyOf) as T;
  const copy: Record<string, unknown> = {};
  for (const key in value) copy[key] = copyOf(value[key]);
  return copy as T;
}

/** Tickers and their maps in code-unit order: stable, and cheaper on every snapshot than a locale's collation. */
const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const bySymbol = (a: { symbol: string }, b: { symbol: string }) => byKey(a.symbol, b.symbol);

export const roundMoney = (value: number) => Math.round(value * 100) / 100;

/** Profit or loss of closing `qty` of a position entered at `entryPrice` at `exitPrice`, in cents. */
export function profitOf(side: PositionSide, qty: number, entryPrice: number, exitPrice: number): number {
  return roundMoney(exactProfitOf(side, qty, entryPrice, exitPrice));
}

/**
 * The same to a millionth of a dollar (the prices are the exact averages of the broker's fills, broker-view.ts, so
 * this drops only a binary double's noise): the parts of a trade closed by several orders are summed at this
 * precision and the trade is booked in cents once, so a trade's P&L is the cent the broker's fills realised, not the
 * sum of its parts each rounded.
 */
const exactProfitOf = (side: PositionSide, qty: number, entryPrice: number, exitPrice: number) =>
  Math.round((exitPrice - entryPrice) * qty * (side === "long" ? 1 : -1) * 1_000_000) / 1_000_000;

/** An exit order as the broker reports it: how much of it has filled, at what average price (null: not said). */
export interface ExitFill {
  id: string;
  filledQty: number;
  filledAvgPrice: number | null;
}

/** What exit fills have realised, to the millionth: the sum of their orders' P&L. */
const exactPlOf = (exits: Record<string, BookedExit>) => Object.values(exits).reduce((sum, exit) => sum + exit.realizedPl, 0);

/** What a trade's exit fills have realised, in cents: its exit orders' P&L summed, then rounded once. */
const bookedPlOf = (exits: Record<string, BookedExit>) => roundMoney(exactPlOf(exits));

/**
 * The exit orders' fills merged into those booked (an order counts once, at the most of it seen filled; one seen
 * filled less than booked, or without a price, changes nothing).
 */
function mergeExitFills(booked: Record<string, BookedExit>, side: PositionSide, entryPrice: number, fills: readonly ExitFill[]): Record<string, BookedExit> {
  const merged = { ...booked };
  for (const fill of fills) {
    if (fill.filledQty <= (merged[fill.id]?.qty ?? 0) || fill.filledAvgPrice === null) continue;
    merged[fill.id] = { qty: fill.filledQty, price: fill.filledAvgPrice, realizedPl: exactProfitOf(side, fill.filledQty, entryPrice, fill.filledAvgPrice) };
  }
  return merged;
}

/** The P&L, in cents, of a trade the session never held: its entry at `entryPrice`, closed by `fills`. */
export const realizedPlOf = (side: PositionSide, entryPrice: number, fills: readonly ExitFill[]) => bookedPlOf(mergeExitFills({}, side, entryPrice, fills));

export interface SessionIdentity {
  sessionStartedAt: string;
  brokerSessionStartedAt: string;
  symbols: string[];
  strategy: StrategyParams;
}

/**
 * The live state of one trading session: what it holds, what it has asked the broker for, and what it has
 * realised. It changes only through the methods below, and round-trips through a snapshot's `state`.
 */
export class TradingState {
  readonly positions = new Map<string, OpenPosition>();
  readonly pendingEntries = new Map<string, PendingEntry>();
  account: AccountFigures | null = null;
  closedTrades = 0;
  realizedPl = 0;
  resumes: ResumeRecord[] = [];
  private readonly nextTradeNos = new Map<string, number>();
  private readonly decisionRunCounts = new Map<string, number>();

  constructor(readonly identity: SessionIdentity) {}

  static fromSnapshot(state: TraderState): TradingState {
    const restored = new TradingState({
      sessionStartedAt: state.sessionStartedAt,
      brokerSessionStartedAt: state.brokerSessionStartedAt,
      symbols: state.symbols,
      strategy: state.strategy,
    });
    for (const position of state.positions) restored.positions.set(position.symbol, position);
    for (const entry of state.pendingEntries) restored.pendingEntries.set(entry.symbol, entry);
    for (const [symbol, next] of Object.entries(state.nextTradeNo)) restored.nextTradeNos.set(symbol, next);
    for (const [symbol, runs] of Object.entries(state.decisionRuns)) restored.decisionRunCounts.set(symbol, runs);
    restored.account = state.account;
    restored.closedTrades = state.closedTrades;
    restored.realizedPl = state.realizedPl;
    restored.resumes = state.resumes;
    return restored;
  }

  /**
   * The state as a snapshot's `state`, sharing no object with this one: the session goes on changing its
   * positions in place while the snapshot is serialized and sent in the background.
   */
  toSnapshot(takenAt: Date): TraderState {
    return {
      ...copyOf(this.identity),
      account: copyOf(this.account),
      positions: [...this.positions.values()].sort(bySymbol).map(copyOf),
      pendingEntries: [...this.pendingEntries.values()].sort(bySymbol).map(copyOf),
      nextTradeNo: Object.fromEntries([...this.nextTradeNos].sort(([a], [b]) => byKey(a, b))),
      decisionRuns: Object.fromEntries([...this.decisionRunCounts].sort(([a], [b]) => byKey(a, b))),
      closedTrades: this.closedTrades,
      realizedPl: this.realizedPl,
      // Shared, not copied on every snapshot: a record is never changed, and recordResume replaces the list.
      resumes: this.resumes,
      takenAt: takenAt.toISOString(),
    };
  }

  /** A deep copy, so a dry run (--reconcile-only) can change it freely. */
  clone(): TradingState {
    return TradingState.fromSnapshot(structuredClone(this.toSnapshot(new Date())));
  }

  /** The number the symbol's next trade will have. */
  nextTradeNo(symbol: string): number {
    return this.nextTradeNos.get(symbol) ?? 1;
  }

  /** Records that trade `tradeNo` of the symbol exists at the broker, so its number is never used again. */
  markTradeNoUsed(symbol: string, tradeNo: number): void {
    if (tradeNo >= this.nextTradeNo(symbol)) this.nextTradeNos.set(symbol, tradeNo + 1);
  }

  /** Takes the next trade number for a position that needs one (an adopted position). */
  takeTradeNo(symbol: string): number {
    const next = this.nextTradeNo(symbol);
    this.nextTradeNos.set(symbol, next + 1);
    return next;
  }

  /** Counts one more reasoning run for the symbol and returns its number. */
  nextDecisionRun(symbol: string): number {
    const run = (this.decisionRunCounts.get(symbol) ?? 0) + 1;
    this.decisionRunCounts.set(symbol, run);
    return run;
  }

  /** True when the symbol has a position or an entry on its way: the strategy must not open another. */
  isEngaged(symbol: string): boolean {
    return this.positions.has(symbol) || this.pendingEntries.has(symbol);
  }

  open(position: OpenPosition): void {
    this.pendingEntries.delete(position.symbol);
    this.positions.set(position.symbol, position);
    this.markTradeNoUsed(position.symbol, position.tradeNo);
  }

  /**
   * Books what the position's exit orders have filled beyond what is booked (the position stays open: the rest
   * of it is still held) and returns the P&L added, in cents. `entryPrice`: the entry's average fill price.
   */
  bookExitFills(position: OpenPosition, fills: readonly ExitFill[], entryPrice = position.entryPrice): number {
    const before = this.openPl();
    position.exitFills = mergeExitFills(position.exitFills, position.side, entryPrice, fills);
    const added = roundMoney(this.openPl() - before);
    this.realizedPl = roundMoney(this.realizedPl + added);
    return added;
  }

  /**
   * What the open positions' exit fills have realised, in cents, rounded once over all of them: the session's
   * realised P&L is its closed trades' cents plus this, so that with several positions part-exited it is still
   * the cent the broker's fills realised, not a sum of parts each rounded.
   */
  private openPl(): number {
    return roundMoney([...this.positions.values()].reduce((sum, position) => sum + exactPlOf(position.exitFills), 0));
  }

  /**
   * Removes the position and books its profit or loss: every exit fill, those booked while it was open and
   * `fills`, the exit orders that closed it (none when the broker shows no fill that did: then the trade is
   * reported at an unknown price, its P&L only what was booked).
   */
  close(symbol: string, exit: { fills: readonly ExitFill[]; via: ExitVia; entryPrice?: number }): ClosedTrade {
    const position = this.positions.get(symbol);
    if (!position) throw new Error(`cannot close ${symbol}: the session holds no position in it`);
    const entryPrice = exit.entryPrice ?? position.entryPrice;
    const openBefore = this.openPl();
    const exits = Object.values(mergeExitFills(position.exitFills, position.side, entryPrice, exit.fills));
    const priced = exit.fills.length > 0 && exit.fills.every((fill) => fill.filledAvgPrice !== null);
    const qty = exits.reduce((sum, fill) => sum + fill.qty, 0);
    const exitPrice = priced && qty > 0 ? Math.round((exits.reduce((sum, fill) => sum + fill.qty * fill.price, 0) / qty) * 1_000_000) / 1_000_000 : null;
    const realizedPl = roundMoney(exits.reduce((sum, fill) => sum + fill.realizedPl, 0));
    this.positions.delete(symbol);
    this.closedTrades += 1;
    this.realizedPl = roundMoney(this.realizedPl + realizedPl + this.openPl() - openBefore);
    this.markTradeNoUsed(symbol, position.tradeNo);
    return { symbol, side: position.side, qty: qty > 0 ? qty : position.qty, entryPrice, exitPrice, realizedPl, via: exit.via, tradeNo: position.tradeNo };
  }

  /** Keeps the record of a resume, dropping the oldest beyond RESUMES_KEPT. */
  recordResume(record: ResumeRecord): void {
    this.resumes = [...this.resumes, record].slice(-RESUMES_KEPT);
  }

  /** Books a whole trade that opened and closed without the session holding it (it happened while down). */
  book(trade: ClosedTrade): ClosedTrade {
    this.closedTrades += 1;
    this.realizedPl = roundMoney(this.realizedPl + trade.realizedPl);
    this.markTradeNoUsed(trade.symbol, trade.tradeNo);
    return trade;
  }
}
