import type { Broker } from "../src/broker/broker.js";
import { BrokerRefusedError } from "../src/broker/errors.js";
import { isOrderFinal, type Bar, type BracketRequest, type BrokerAccount, type BrokerAsset, type BrokerFill, type BrokerLeg, type BrokerOrder, type BrokerPosition, type MarketClock, type MarketRequest, type ReplaceRequest, type StopRequest } from "../src/broker/types.js";
import { entryClientOrderId } from "../src/session/client-order-ids.js";
import type { OpenPosition } from "../src/session/state.js";

/** When the scripted broker's orders were submitted unless a test says otherwise. */
export const SUBMITTED_AT = new Date("2026-01-05T15:30:00.000Z");

const ORDER_DEFAULTS: Omit<BrokerOrder, "id" | "clientOrderId" | "symbol"> = {
  side: "buy",
  type: "market",
  orderClass: "",
  qty: 10,
  filledQty: 0,
  filledAvgPrice: null,
  limitPrice: null,
  stopPrice: null,
  status: "new",
  submittedAt: SUBMITTED_AT,
  filledAt: null,
  legs: [],
};

let orderIds = 0;
const nextOrderId = () => `order-${++orderIds}`;

/**
 * A position of session `trader-1` as its state holds it, opened from its bracket `entry-1` (legs `tp-1` and
 * `sl-1`): long 10 at 100, stop 90, take-profit 110, no exit under way; `fields` change what a case needs.
 */
export const openPosition = (symbol: string, fields: Partial<OpenPosition> = {}): OpenPosition => ({
  symbol,
  side: "long",
  qty: 10,
  entryPrice: 100,
  stopLoss: 90,
  takeProfit: 110,
  tradeNo: 1,
  origin: "strategy",
  openedAt: SUBMITTED_AT.toISOString(),
  orders: { entryId: "entry-1", entryClientOrderId: entryClientOrderId("trader-1", symbol, 1), takeProfitId: "tp-1", stopLossId: "sl-1" },
  entryFilling: false,
  exit: null,
  closeAttempts: 0,
  exitFills: {},
  ...fields,
});

/** A broker order as the trader parses it, with the fields a test does not care about filled in. */
export function brokerOrder(fields: Partial<BrokerOrder> & Pick<BrokerOrder, "clientOrderId" | "symbol">): BrokerOrder {
  return { ...ORDER_DEFAULTS, id: nextOrderId(), ...fields };
}

export interface LegScript {
  status?: string;
  /** The leg's fill price; the leg is unfilled without one. */
  filledAt?: number;
  /** How much of it filled at `filledAt`: all of it unless said. */
  filledQty?: number;
  id?: string;
  clientOrderId?: string;
  limitPrice?: number;
}

export interface BracketScript {
  clientOrderId: string;
  symbol: string;
  side?: "buy" | "sell";
  qty?: number;
  /** The entry's fill price; the entry is unfilled (and its legs held) without one. */
  filledAt?: number;
  /** How much of the entry filled at `filledAt`: all of it unless said (a part leaves it partially_filled, legs held). */
  filledQty?: number;
  status?: string;
  takeProfit?: number;
  stopLoss?: number;
  takeProfitLeg?: LegScript;
  stopLossLeg?: LegScript;
  filledTime?: Date;
  id?: string;
}

/**
 * A bracket order as Alpaca nests it: the entry, then its take-profit (limit) and stop-loss (stop) legs on
 * the exit side. An unfilled entry's legs are "held", as Alpaca reports them until the entry fills.
 */
export function bracketOrder(script: BracketScript): BrokerOrder {
  const side = script.side ?? "buy";
  const qty = script.qty ?? 10;
  const entryFilledQty = script.filledAt === undefined ? 0 : (script.filledQty ?? qty);
  const entryFilled = entryFilledQty === qty;
  const exitSide = side === "buy" ? "sell" : "buy";
  const leg = (type: "limit" | "stop", price: number, leg: LegScript = {}): BrokerLeg => {
    const filledQty = leg.filledAt === undefined ? 0 : (leg.filledQty ?? qty);
    return {
      ...ORDER_DEFAULTS,
      id: leg.id ?? nextOrderId(),
      clientOrderId: leg.clientOrderId ?? `leg-${nextOrderId()}`,
      symbol: script.symbol,
      side: exitSide,
      type,
      orderClass: "bracket",
      qty,
      limitPrice: type === "limit" ? (leg.limitPrice ?? price) : null,
      stopPrice: type === "stop" ? price : null,
      status: leg.status ?? (filledQty === qty ? "filled" : filledQty > 0 ? "partially_filled" : entryFilled ? "new" : "held"),
      filledQty,
      filledAvgPrice: leg.filledAt ?? null,
      filledAt: filledQty === qty ? new Date(SUBMITTED_AT.getTime() + 60_000) : null,
    };
  };
  return {
    ...ORDER_DEFAULTS,
    id: script.id ?? nextOrderId(),
    clientOrderId: script.clientOrderId,
    symbol: script.symbol,
    side,
    orderClass: "bracket",
    qty,
    status: script.status ?? (entryFilled ? "filled" : entryFilledQty > 0 ? "partially_filled" : "new"),
    filledQty: entryFilledQty,
    filledAvgPrice: script.filledAt ?? null,
    filledAt: entryFilled ? (script.filledTime ?? SUBMITTED_AT) : null,
    legs: [leg("limit", script.takeProfit ?? 110, script.takeProfitLeg), leg("stop", script.stopLoss ?? 90, script.stopLossLeg)],
  };
}

export const brokerPosition = (symbol: string, qty: number, avgEntryPrice: number, side: "long" | "short" = qty < 0 ? "short" : "long"): BrokerPosition => ({
  symbol,
  qty,
  side,
  avgEntryPrice,
  currentPrice: null,
});

export const brokerAccount = (fields: Partial<BrokerAccount> = {}): BrokerAccount => ({
  id: "account-1",
  status: "ACTIVE",
  cash: 100_000,
  buyingPower: 100_000,
  portfolioValue: 100_000,
  ...fields,
});

export type BrokerCall = keyof Broker;

/**
 * An in-memory double of the trader's `Broker` port: it answers from the account, positions, orders, bars
 * and clock a test sets, records every call, and fails a call a test scripts to fail (once per scripted
 * failure, in order). Submissions are accepted as new orders (a bracket with its held legs) and fill only
 * when the test says so (`fillEntry`, `fillLeg`); cancels and replaces are accepted as Alpaca accepts them
 * (`pending_cancel`, `pending_replace`) and complete only when the test says so (`completeChanges`), so a
 * test decides exactly what the broker knows at each step.
 */
export class ScriptedBroker implements Broker {
  accountFigures = brokerAccount();
  marketClock: MarketClock = { timestamp: SUBMITTED_AT, isOpen: true, nextOpen: new Date(SUBMITTED_AT.getTime() + 86_400_000) };
  /** When set, the clock is read from it instead of `marketClock` (a clock that moves with the test's time). */
  clockSource: (() => MarketClock) | undefined;
  readonly heldPositions = new Map<string, BrokerPosition>();
  readonly orders: BrokerOrder[] = [];
  readonly bars = new Map<string, Bar[]>();
  readonly assets = new Map<string, BrokerAsset>();
  readonly calls: BrokerCall[] = [];
  /** The fills (FILL activities) of what `fillEntry` and `fillLeg` filled, oldest first; a test may add its own. */
  readonly fills: BrokerFill[] = [];
  private readonly failures = new Map<BrokerCall, unknown[]>();
  /** Replacements accepted but not completed, by the id of the leg they replace. */
  private readonly replacements = new Map<string, BrokerLeg>();
  /** Replacements the broker rejected when their replace was to complete: still found by id and client_order_id. */
  private readonly rejected: BrokerLeg[] = [];

  /** The next call of `call` throws `error` (several scripted failures are thrown one call each). */
  failNext(call: BrokerCall, error: unknown): this {
    this.failures.set(call, [...(this.failures.get(call) ?? []), error]);
    return this;
  }

  /** Adds a bar for the symbol; the latest bar is the last one added. */
  addBar(symbol: string, bar: Bar): this {
    this.bars.set(symbol, [...(this.bars.get(symbol) ?? []), bar]);
    return this;
  }

  /**
   * Fills the entry placed under `clientOrderId` at `price`, all of it or `qty` in all: once it is whole its legs
   * start working (held until then, as Alpaca's), and the position is what filled.
   */
  fillEntry(clientOrderId: string, price: number, qty?: number): BrokerOrder {
    const order = this.orders.find((candidate) => candidate.clientOrderId === clientOrderId);
    if (!order) throw new Error(`no order ${clientOrderId} at the scripted broker`);
    const filledQty = qty ?? order.qty!;
    const whole = filledQty === order.qty;
    this.recordFill(order, filledQty - order.filledQty, price);
    // The average of its fills, unrounded, as Alpaca reports it.
    const filledAvgPrice = (order.filledQty * (order.filledAvgPrice ?? 0) + (filledQty - order.filledQty) * price) / filledQty;
    Object.assign(order, { status: whole ? "filled" : "partially_filled", filledQty, filledAvgPrice, filledAt: whole ? this.marketClock.timestamp : null });
    if (whole) for (const leg of order.legs) leg.status = "new";
    const signed = order.side === "buy" ? filledQty : -filledQty;
    this.heldPositions.set(order.symbol, brokerPosition(order.symbol, signed, price));
    return order;
  }

  /**
   * Fills a working leg at `price`, whole (the position is gone and the sibling canceled, one cancels other) or
   * up to `qty` in all: then the leg is partly filled, the position holds the rest, and the sibling is adjusted to
   * it, as Alpaca adjusts the stop-loss when the take-profit fills in part. A leg whose replace is pending (the old
   * one) fills too, as Alpaca's works until the replace completes.
   */
  fillLeg(legId: string, price: number, qty?: number): BrokerLeg {
    const parent = this.orders.find((order) => order.legs.some((leg) => leg.id === legId));
    if (!parent) throw new Error(`no leg ${legId} at the scripted broker`);
    const leg = parent.legs.find((candidate) => candidate.id === legId)!;
    const filledQty = qty ?? leg.qty!;
    this.recordFill(leg, filledQty - leg.filledQty, price);
    const filledAvgPrice = (leg.filledQty * (leg.filledAvgPrice ?? 0) + (filledQty - leg.filledQty) * price) / filledQty;
    if (filledQty < leg.qty!) {
      Object.assign(leg, { status: leg.status === "pending_replace" ? leg.status : "partially_filled", filledQty, filledAvgPrice });
      const rest = leg.qty! - filledQty;
      for (const sibling of parent.legs) if (sibling !== leg && !isOrderFinal(sibling)) sibling.qty = sibling.filledQty + rest;
      const held = this.heldPositions.get(parent.symbol)!;
      this.heldPositions.set(parent.symbol, brokerPosition(parent.symbol, Math.sign(held.qty) * rest, held.avgEntryPrice));
      return leg;
    }
    Object.assign(leg, { status: "filled", filledQty, filledAvgPrice, filledAt: this.marketClock.timestamp });
    for (const sibling of parent.legs) if (sibling !== leg && !isOrderFinal(sibling)) sibling.status = "canceled";
    this.heldPositions.delete(parent.symbol);
    return leg;
  }

  /** Completes every cancel and replace the broker has accepted, as Alpaca does a moment later. */
  completeChanges(): void {
    for (const parent of this.orders) {
      for (const order of [parent, ...parent.legs]) if (order.status === "pending_cancel") order.status = "canceled";
      parent.legs = parent.legs.map((leg) => {
        const replacement = this.replacements.get(leg.id);
        if (leg.status !== "pending_replace" || !replacement) return leg;
        this.replacements.delete(leg.id);
        // Filled in part meanwhile: the replacement, for the leg's whole qty, is more than is held; rejected.
        if (leg.filledQty > 0) {
          replacement.status = "rejected";
          this.rejected.push(replacement);
          leg.status = "partially_filled";
          return leg;
        }
        leg.status = "replaced";
        replacement.status = "new";
        return replacement;
      });
    }
  }

  async account(): Promise<BrokerAccount> {
    this.enter("account");
    return { ...this.accountFigures };
  }

  async clock(): Promise<MarketClock> {
    this.enter("clock");
    return { ...(this.clockSource?.() ?? this.marketClock) };
  }

  async asset(symbol: string): Promise<BrokerAsset | null> {
    this.enter("asset");
    return this.assets.get(symbol) ?? null;
  }

  async positions(): Promise<BrokerPosition[]> {
    this.enter("positions");
    return [...this.heldPositions.values()].map((position) => ({ ...position }));
  }

  async order(orderId: string): Promise<BrokerOrder> {
    this.enter("order");
    const order = this.everyOrder().find((candidate) => candidate.id === orderId);
    if (!order) throw new Error(`no order ${orderId} at the scripted broker`);
    return structuredClone(order);
  }

  async orderByClientOrderId(clientOrderId: string): Promise<BrokerOrder | null> {
    this.enter("orderByClientOrderId");
    const order = this.everyOrder().find((candidate) => candidate.clientOrderId === clientOrderId);
    return order ? structuredClone(order) : null;
  }

  async ordersSince(after: Date, symbols?: string[]): Promise<BrokerOrder[]> {
    this.enter("ordersSince");
    return this.orders
      .filter((order) => (order.submittedAt?.getTime() ?? 0) > after.getTime() && (!symbols || symbols.includes(order.symbol)))
      .map((order) => structuredClone(order));
  }

  async fillsSince(after: Date): Promise<BrokerFill[]> {
    this.enter("fillsSince");
    return this.fills.filter((fill) => fill.time.getTime() > after.getTime()).map((fill) => ({ ...fill }));
  }

  async openOrders(): Promise<BrokerOrder[]> {
    this.enter("openOrders");
    return this.orders.filter((order) => [order, ...order.legs].some((member) => !isOrderFinal(member) && member.status !== "held")).map((order) => structuredClone(order));
  }

  async latestBars(symbols: string[]): Promise<Map<string, Bar>> {
    this.enter("latestBars");
    return new Map(symbols.flatMap((symbol) => (this.bars.get(symbol)?.length ? [[symbol, this.bars.get(symbol)!.at(-1)!] as const] : [])));
  }

  async barsSince(symbols: string[], start: Date): Promise<Map<string, Bar[]>> {
    this.enter("barsSince");
    return new Map(symbols.map((symbol) => [symbol, (this.bars.get(symbol) ?? []).filter((bar) => bar.t.getTime() >= start.getTime())]));
  }

  async submitBracket(request: BracketRequest): Promise<BrokerOrder> {
    this.enter("submitBracket");
    this.refuseDuplicate("POST /v2/orders", request.clientOrderId);
    const order = bracketOrder({ ...request, filledAt: undefined, status: "accepted" });
    order.submittedAt = this.marketClock.timestamp;
    this.orders.push(order);
    return structuredClone(order);
  }

  async submitMarket(request: MarketRequest): Promise<BrokerOrder> {
    this.enter("submitMarket");
    this.refuseDuplicate("POST /v2/orders", request.clientOrderId);
    const order = brokerOrder({ ...request, status: "accepted", submittedAt: this.marketClock.timestamp });
    this.orders.push(order);
    return structuredClone(order);
  }

  async submitStop(request: StopRequest): Promise<BrokerOrder> {
    this.enter("submitStop");
    this.refuseDuplicate("POST /v2/orders", request.clientOrderId);
    const order = brokerOrder({ ...request, type: "stop", status: "accepted", submittedAt: this.marketClock.timestamp });
    this.orders.push(order);
    return structuredClone(order);
  }

  async replaceOrder(orderId: string, request: ReplaceRequest): Promise<BrokerOrder> {
    this.enter("replaceOrder");
    const operation = `PATCH /v2/orders/${orderId}`;
    const parent = this.orders.find((order) => order.legs.some((leg) => leg.id === orderId));
    if (!parent) throw new BrokerRefusedError(operation, "not_found", 404, 40410000, "order not found");
    const leg = parent.legs.find((candidate) => candidate.id === orderId)!;
    this.refuseDuplicate(operation, request.clientOrderId);
    if (isOrderFinal(leg) || leg.status === "pending_cancel" || leg.status === "pending_replace") {
      throw new BrokerRefusedError(operation, "not_open", 422, 42210000, `order is already in "${leg.status}" state`);
    }
    // Alpaca's replacement is for the leg's whole qty (Alpaca-API#165): more than a part-filled leg leaves held.
    if (leg.filledQty > 0) {
      const available = leg.qty! - leg.filledQty;
      throw new BrokerRefusedError(operation, "held_for_orders", 403, 40310000, `insufficient qty available for order (requested: ${leg.qty}, available: ${available})`);
    }
    const replacement: BrokerLeg = { ...structuredClone(leg), id: nextOrderId(), clientOrderId: request.clientOrderId, limitPrice: request.limitPrice, status: "pending_new" };
    leg.status = "pending_replace";
    this.replacements.set(leg.id, replacement);
    return { ...structuredClone(replacement), legs: [] };
  }

  async cancelOrder(orderId: string): Promise<void> {
    this.enter("cancelOrder");
    const parent = this.orders.find((order) => order.id === orderId || order.legs.some((leg) => leg.id === orderId));
    if (!parent) throw new BrokerRefusedError(`DELETE /v2/orders/${orderId}`, "not_found", 404, 40410000, "order not found");
    const target = parent.id === orderId ? parent : parent.legs.find((leg) => leg.id === orderId)!;
    if (isOrderFinal(target)) {
      throw new BrokerRefusedError(`DELETE /v2/orders/${orderId}`, "not_open", 422, 42210000, `order is already in "${target.status}" state`);
    }
    // One leg's cancellation cancels its sibling too (one-cancels-other), as Alpaca does; accepted, not done.
    const targets = parent.id === orderId ? [parent, ...parent.legs] : parent.legs;
    for (const order of targets) if (!isOrderFinal(order)) order.status = "pending_cancel";
  }

  /** A fill of `qty` more of the order at `price`, now, as Alpaca's FILL activity records it. */
  private recordFill(order: BrokerLeg, qty: number, price: number): void {
    if (qty <= 0) return;
    this.fills.push({ id: `fill-${this.fills.length + 1}`, orderId: order.id, symbol: order.symbol, side: order.side, qty, price, time: this.marketClock.timestamp });
  }

  /** Every order the broker knows: top-level orders, their legs and replacements accepted or rejected. */
  private everyOrder(): BrokerOrder[] {
    const legs = [...this.orders.flatMap((order) => order.legs), ...this.replacements.values(), ...this.rejected].map((leg) => ({ ...leg, legs: [] }));
    return [...this.orders, ...legs];
  }

  /** Alpaca refuses a second order under a client_order_id with 422. */
  private refuseDuplicate(operation: string, clientOrderId: string): void {
    if (this.everyOrder().some((order) => order.clientOrderId === clientOrderId)) {
      throw new BrokerRefusedError(operation, "duplicate_client_order_id", 422, 40010001, "client_order_id must be unique");
    }
  }

  private enter(call: BrokerCall): void {
    this.calls.push(call);
    const scripted = this.failures.get(call);
    if (scripted?.length) throw scripted.shift();
  }
}
