import { randomUUID } from "node:crypto";
import { forbidden, invalidRequest, notFound, unprocessable, AlpacaError } from "./errors.js";
import { decimalString, roundMoney, roundQty } from "./numbers.js";
import type { SessionPhase } from "./calendar.js";
import type { SymbolSpec } from "./universe.js";

export type Side = "buy" | "sell";
export type OrderType = "market" | "limit" | "stop" | "stop_limit";
export type TimeInForce = "day" | "gtc" | "opg" | "cls" | "ioc" | "fok";
export type OrderStatus =
  | "accepted"
  | "pending_new"
  | "new"
  | "partially_filled"
  | "held"
  | "filled"
  | "pending_cancel"
  | "canceled"
  | "pending_replace"
  | "replaced"
  | "expired"
  | "rejected";
export type PositionIntent = "buy_to_open" | "buy_to_close" | "sell_to_open" | "sell_to_close";
export type LegRole = "take_profit" | "stop_loss";

export interface Order {
  id: string;
  clientOrderId: string;
  symbol: string;
  side: Side;
  type: OrderType;
  timeInForce: TimeInForce;
  /** As submitted: "" (Alpaca's answer when none was given), "simple" or "bracket"; legs are "bracket". */
  orderClass: "" | "simple" | "bracket";
  qty: number;
  notional: number | null;
  limitPrice: number | null;
  stopPrice: number | null;
  /** May trade in the pre-market and after-hours (limit day orders only). */
  extendedHours: boolean;
  filledQty: number;
  filledAvgPrice: number | null;
  status: OrderStatus;
  positionIntent: PositionIntent;
  createdAt: Date;
  updatedAt: Date;
  submittedAt: Date;
  filledAt: Date | null;
  canceledAt: Date | null;
  failedAt: Date | null;
  expiredAt: Date | null;
  replacedAt: Date | null;
  replacedBy: string | null;
  replaces: string | null;
  parentId: string | null;
  legIds: string[];
  legRole: LegRole | null;
  /** A stop-limit order whose stop was reached and now rests as a limit order. */
  stopTriggered: boolean;
  /** A replacement whose replace has been accepted but not yet completed: it does not work or reserve yet. */
  awaitingReplace: boolean;
  seq: number;
}

export interface OrderWithLegs {
  order: Order;
  legs: Order[];
}

export interface Fill {
  id: string;
  orderId: string;
  symbol: string;
  side: Side;
  qty: number;
  price: number;
  time: Date;
  cumQty: number;
  leavesQty: number;
  /** Profit or loss realised by the part of this fill that reduced a position. */
  realizedPl: number;
}

export interface Position {
  symbol: string;
  /** Signed: negative for a short position. */
  qty: number;
  avgEntryPrice: number;
}

/** An order request after validation at the HTTP edge (see schemas.ts). */
export interface OrderRequest {
  symbol: string;
  side: Side;
  type: OrderType;
  timeInForce: TimeInForce;
  qty?: number;
  notional?: number;
  limitPrice?: number;
  stopPrice?: number;
  clientOrderId?: string;
  orderClass: "" | "simple" | "bracket";
  extendedHours?: boolean;
  takeProfit?: { limitPrice: number };
  stopLoss?: { stopPrice: number; limitPrice?: number };
}

export interface OrderReplacement {
  qty?: number;
  limitPrice?: number;
  stopPrice?: number;
  timeInForce?: TimeInForce;
  clientOrderId?: string;
}

export interface OrderQuery {
  status: "open" | "closed" | "all";
  limit: number;
  after?: Date;
  until?: Date;
  direction: "asc" | "desc";
  nested: boolean;
  symbols?: string[];
  side?: Side;
}

export interface AccountFigures {
  cash: number;
  equity: number;
  lastEquity: number;
  longMarketValue: number;
  shortMarketValue: number;
  buyingPower: number;
  initialMargin: number;
  maintenanceMargin: number;
  multiplier: number;
}

/** What the broker needs from the market: prices, listings, the phase of the trading day and chance. */
export interface MarketView {
  now(): Date;
  price(symbol: string): number;
  spec(symbol: string): SymbolSpec | undefined;
  phase(): SessionPhase;
  /** A seeded uniform draw on [0, 1), for partial fills. */
  random(): number;
}

/**
 * How orders move through their lifecycle. Defaults match Alpaca paper trading: an order is answered as
 * `pending_new` (or `accepted` while the market is closed), becomes `new` on the simulator's clock and fills
 * against later trades; cancels and replaces are accepted first and completed later.
 */
export interface LifecycleOptions {
  /**
   * Shortcut, off by default: an order is routed and matched against the current price within its request, and
   * cancels and replaces complete within theirs (the kind broker the trader's older tests were written for).
   */
  instantOrders: boolean;
  /** Simulated milliseconds from placement to `new`: the order routes on the first clock step after that. */
  routeAfterMs: number;
  /** Simulated milliseconds from an accepted cancel (`pending_cancel`) to `canceled`. */
  cancelAfterMs: number;
  /** Simulated milliseconds from an accepted replace (`pending_replace`) to `replaced`. */
  replaceAfterMs: number;
  /**
   * Chance that an eligible fill is partial, for a random part of what remains. Alpaca paper: "When orders are
   * eligible to be filled, they will receive partial fills for a random size 10% of the time" (alpaca-docs,
   * content/trading/paper-trading.md).
   */
  partialFillChance: number;
  /**
   * Share of a trade's volume one order may take, or null for no limit. Alpaca paper does not check quantity
   * against the market ("you can submit and receive a fill for an order that is much larger than the actual
   * available liquidity", same page), so the default is null; set it to make large orders fill in parts.
   */
  tradeVolumeShare: number | null;
}

export interface BrokerOptions {
  initialCash: number;
  /** Alpaca's account multiplier: 1 (cash-like), 2 (Reg T margin) or 4 (pattern day trader). */
  multiplier: number;
  lifecycle: LifecycleOptions;
}

export const DEFAULT_LIFECYCLE: LifecycleOptions = {
  instantOrders: false,
  routeAfterMs: 0,
  cancelAfterMs: 0,
  replaceAfterMs: 0,
  partialFillChance: 0.1,
  tradeVolumeShare: null,
};

/** Alpaca's `status=open`: every state an order can still fill from, except `held` legs (see listOrders). */
const OPEN_STATUSES: ReadonlySet<OrderStatus> = new Set(["accepted", "pending_new", "new", "partially_filled", "pending_cancel", "pending_replace"]);
const CLOSED_STATUSES: ReadonlySet<OrderStatus> = new Set(["filled", "canceled", "replaced", "expired", "rejected"]);
const isFinal = (order: Order) => CLOSED_STATUSES.has(order.status);
const sign = (value: number) => (value > 0 ? 1 : value < 0 ? -1 : 0);
const QTY_EPSILON = 1e-9;

/**
 * A paper broker's books: one cash account, positions (long and short), orders with Alpaca's lifecycle
 * and bracket legs, and the fills that move them. It knows nothing about HTTP; every rule violation is an
 * AlpacaError carrying the status and message Alpaca would answer with.
 */
export class Broker {
  private cash: number;
  private lastEquity: number;
  private nextSeq = 1;
  private readonly orders = new Map<string, Order>();
  private readonly byClientOrderId = new Map<string, Order>();
  private readonly positions = new Map<string, Position>();
  private readonly fills: Fill[] = [];
  /** Lifecycle steps accepted but not yet completed, run by `step` once the simulated clock reaches them. */
  private scheduled: Array<{ dueMs: number; run: () => void }> = [];

  constructor(
    private readonly market: MarketView,
    private readonly options: BrokerOptions,
  ) {
    this.cash = options.initialCash;
    this.lastEquity = options.initialCash;
  }

  /**
   * Places an order. Returns the order (and legs) as they stood when accepted, which is what Alpaca answers
   * a placement with: `pending_new` while the order may trade now (it routes on the simulator's clock), else
   * `accepted` (queued for the next session it may trade in). With `instantOrders` it is routed and matched at
   * once instead. `rejectReason` accepts the order and then rejects it (fault injection).
   */
  placeOrder(request: OrderRequest, rejectReason?: string): OrderWithLegs {
    const spec = this.market.spec(request.symbol);
    if (!spec) throw invalidRequest(`asset ${JSON.stringify(request.symbol)} not found; GET /v2/assets lists the simulated symbols`);
    if (request.clientOrderId !== undefined && this.byClientOrderId.has(request.clientOrderId)) {
      throw invalidRequest("client_order_id must be unique");
    }
    const price = this.market.price(request.symbol);
    const qty = request.qty ?? roundQty(request.notional! / price);
    checkPriceIncrements(request);
    checkOrderRules(request, qty);
    if (request.orderClass === "bracket") this.checkBracketPrices(request, price);

    const held = this.positions.get(request.symbol)?.qty ?? 0;
    const closing = held !== 0 && sign(held) !== (request.side === "buy" ? 1 : -1);
    if (closing) {
      this.checkQtyAvailable(request.symbol, held, qty);
    } else {
      if (request.side === "sell" && !spec.shortable) throw forbidden(`asset ${request.symbol} is not shortable`);
      if (request.side === "sell" && !Number.isInteger(qty)) throw forbidden("fractional orders cannot be sold short");
      this.checkBuyingPower(qty * openingPrice(request, price));
    }

    const now = this.market.now();
    const intent: PositionIntent = `${request.side}_to_${closing ? "close" : "open"}`;
    const order = this.register({
      ...this.blankOrder(now),
      clientOrderId: request.clientOrderId ?? randomUUID(),
      symbol: request.symbol,
      side: request.side,
      type: request.type,
      timeInForce: request.timeInForce,
      orderClass: request.orderClass,
      qty,
      notional: request.notional ?? null,
      limitPrice: request.limitPrice ?? null,
      stopPrice: request.stopPrice ?? null,
      extendedHours: request.extendedHours ?? false,
      status: "accepted",
      positionIntent: intent,
    });
    if (request.orderClass === "bracket") this.attachLegs(order, request);
    const lifecycle = this.options.lifecycle;
    const tradable = this.mayTradeNow(order);
    if (tradable && !lifecycle.instantOrders && rejectReason === undefined) order.status = "pending_new";

    const accepted = this.snapshot(order);
    if (rejectReason !== undefined) this.reject(order, now);
    else if (tradable && lifecycle.instantOrders) this.activate(order, true);
    else if (tradable) this.schedule(lifecycle.routeAfterMs, () => order.status === "pending_new" && this.activate(order, false));
    return accepted;
  }

  /**
   * One step of the simulated clock (after it moved): completes the lifecycle steps that are due and routes
   * orders queued while the market was closed once they may trade.
   */
  step(): void {
    const nowMs = this.market.now().getTime();
    const due = this.scheduled.filter((item) => item.dueMs <= nowMs);
    this.scheduled = this.scheduled.filter((item) => item.dueMs > nowMs);
    for (const item of due) item.run();
    for (const order of [...this.orders.values()]) {
      if (order.status === "accepted" && !order.parentId && this.mayTradeNow(order)) this.activate(order, this.options.lifecycle.instantOrders);
    }
  }

  /**
   * The regular session (or, for extended-hours orders, the after-hours session) ended: day orders that were
   * working expire, as Alpaca's do at the close; a day bracket's legs with them. Queued orders wait on.
   */
  sessionEnded(extendedToo: boolean): void {
    const now = this.market.now();
    for (const order of this.orders.values()) {
      if (order.timeInForce !== "day" || isFinal(order) || order.status === "accepted") continue;
      if (order.extendedHours && !extendedToo) continue;
      Object.assign(order, { status: "expired", expiredAt: now, updatedAt: now });
    }
  }

  /** Cancels an order; a bracket's entry takes its legs along, and a leg takes its sibling (one cancels other). */
  cancelOrder(id: string): Order[] {
    const order = this.requireOrder(id);
    if (isFinal(order)) throw unprocessable(`order is already in "${order.status}" state`);
    const parent = order.parentId ? this.orders.get(order.parentId) : undefined;
    let group: Order[];
    if (!parent) group = this.withLegs(order);
    else if (parent.status === "filled") group = this.withLegs(parent).slice(1);
    else group = this.withLegs(parent);
    const now = this.market.now();
    const canceled = group.filter((member) => !isFinal(member));
    if (this.options.lifecycle.instantOrders) {
      for (const member of canceled) this.cancel(member, now);
      return canceled;
    }
    for (const member of canceled) Object.assign(member, { status: "pending_cancel", updatedAt: now });
    this.schedule(this.options.lifecycle.cancelAfterMs, () => {
      const completed = this.market.now();
      for (const member of canceled) if (member.status === "pending_cancel") this.cancel(member, completed);
    });
    return canceled;
  }

  /** Cancels every order that can still be canceled, legs included. */
  cancelAllOrders(): Order[] {
    const canceled: Order[] = [];
    for (const order of [...this.orders.values()]) {
      if (!isFinal(order)) canceled.push(...this.cancelOrder(order.id));
    }
    return canceled;
  }

  /**
   * Alpaca's replace: a new order takes the old one's place (`replaces`), the old one becomes "replaced". The
   * replace is accepted first (the old order `pending_replace`, still working) and completed on the clock; if the
   * old order fills in between, "the replacing (new) order is rejected" (alpaca-docs, oas/trading/openapi.yaml,
   * patchOrderByOrderId), and if it is canceled meanwhile (a leg whose sibling filled), canceled with it.
   *
   * A partly filled order: the replacement is a new order, its `filled_qty` 0, and the fills stay on the old one
   * (with its `filled_qty` and `filled_avg_price`, as the position already moved). Each field given overrides the
   * old order's and "the other attributes remain the same" (alpaca-docs, oas/trading/openapi.yaml,
   * patchOrderByOrderId), so without `qty` the replacement is for the old order's whole quantity, not what is left
   * of it: known from users' reports, not the docs (Alpaca-API#165, labelled a bug and open, after forum thread
   * 4329: "the replaced order reflects the original qty N and NOT the unfilled qty", and a liquidating sell then
   * errs as "it is trying to sell more than one has shares"). A closing replacement is therefore held to the
   * position's available quantity as a placement is (403 insufficient qty available), a bracket leg's too, its
   * group's shares counted once; one that no longer fits when the replace completes, the old order having filled
   * more meanwhile, is rejected and the old order works on, as a replacement is rejected when the old order fills
   * first ("the replacing (new) order is rejected", same page).
   */
  replaceOrder(id: string, changes: OrderReplacement): Order {
    const order = this.requireOrder(id);
    if (isFinal(order)) throw unprocessable(`order is already in "${order.status}" state`);
    if (order.status === "pending_cancel" || order.status === "pending_replace") {
      throw unprocessable(`order is in "${order.status}" state and cannot be replaced until that completes`);
    }
    if (order.legIds.length > 0) {
      throw unprocessable("the simulator cannot replace a bracket's entry order; cancel it and place a new bracket order");
    }
    if (order.parentId && changes.qty !== undefined && changes.qty !== order.qty) {
      throw invalidRequest("qty: a bracket leg's quantity follows its entry order and cannot be replaced");
    }
    if (changes.limitPrice !== undefined && order.type !== "limit" && order.type !== "stop_limit") {
      throw invalidRequest(`limit_price: a ${order.type} order has no limit price to replace`);
    }
    if (changes.stopPrice !== undefined && order.type !== "stop" && order.type !== "stop_limit") {
      throw invalidRequest(`stop_price: a ${order.type} order has no stop price to replace`);
    }
    if (changes.clientOrderId !== undefined && this.byClientOrderId.has(changes.clientOrderId)) {
      throw invalidRequest("client_order_id must be unique");
    }
    const qty = changes.qty ?? order.qty;
    if (this.closesPosition(order)) this.checkQtyAvailable(order.symbol, this.positions.get(order.symbol)?.qty ?? 0, qty, order.parentId ?? order.id);
    else if (!order.parentId) this.checkBuyingPower(qty * (changes.limitPrice ?? order.limitPrice ?? this.market.price(order.symbol)), order.id);

    const now = this.market.now();
    const replacement = this.register({
      ...order,
      ...this.blankOrder(now),
      clientOrderId: changes.clientOrderId ?? randomUUID(),
      qty,
      limitPrice: changes.limitPrice ?? order.limitPrice,
      stopPrice: changes.stopPrice ?? order.stopPrice,
      timeInForce: changes.timeInForce ?? order.timeInForce,
      status: order.status,
      positionIntent: order.positionIntent,
      parentId: order.parentId,
      legRole: order.legRole,
      replaces: order.id,
    });
    const complete = (workingStatus: OrderStatus) => {
      const completed = this.market.now();
      Object.assign(replacement, { status: workingStatus, awaitingReplace: false, updatedAt: completed });
      Object.assign(order, { status: "replaced", replacedAt: completed, replacedBy: replacement.id, updatedAt: completed });
      if (order.parentId) {
        const parent = this.orders.get(order.parentId)!;
        parent.legIds = parent.legIds.map((legId) => (legId === order.id ? replacement.id : legId));
      }
    };
    if (this.options.lifecycle.instantOrders) {
      complete(order.status);
      if (this.isWorking(replacement)) this.tryFill(replacement, this.market.price(replacement.symbol), Number.POSITIVE_INFINITY);
      return replacement;
    }
    const workingStatus = order.status;
    Object.assign(replacement, { status: "pending_new", awaitingReplace: true });
    Object.assign(order, { status: "pending_replace", updatedAt: now });
    this.schedule(this.options.lifecycle.replaceAfterMs, () => {
      const completed = this.market.now();
      if (order.status === "filled") {
        Object.assign(replacement, { status: "rejected", awaitingReplace: false, failedAt: completed, updatedAt: completed });
      } else if (order.status !== "pending_replace") {
        Object.assign(replacement, { status: "canceled", awaitingReplace: false, canceledAt: completed, updatedAt: completed });
      } else if (this.closesPosition(order) && replacement.qty > this.closableQty(order) + QTY_EPSILON) {
        Object.assign(replacement, { status: "rejected", awaitingReplace: false, failedAt: completed, updatedAt: completed });
        const working = order.filledQty > 0 && workingStatus !== "held" ? "partially_filled" : workingStatus;
        Object.assign(order, { status: working, updatedAt: completed });
      } else {
        complete(workingStatus);
      }
    });
    return this.snapshot(replacement).order;
  }

  /** Closes all or part of a position with a market order, as DELETE /v2/positions/{symbol} does. */
  closePosition(symbol: string, part: { qty?: number; percentage?: number } = {}): OrderWithLegs {
    const position = this.positions.get(symbol);
    if (!position) throw notFound("position does not exist");
    const whole = Math.abs(position.qty);
    const qty = part.qty ?? (part.percentage !== undefined ? roundQty((whole * part.percentage) / 100) : whole);
    return this.placeOrder({
      symbol,
      side: position.qty > 0 ? "sell" : "buy",
      type: "market",
      timeInForce: "day",
      qty,
      orderClass: "",
    });
  }

  closeAllPositions(cancelOrders: boolean): Array<{ symbol: string; result: OrderWithLegs | AlpacaError }> {
    if (cancelOrders) this.cancelAllOrders();
    return [...this.positions.keys()].sort().map((symbol) => {
      try {
        return { symbol, result: this.closePosition(symbol) };
      } catch (error) {
        if (error instanceof AlpacaError) return { symbol, result: error };
        throw error;
      }
    });
  }

  /**
   * Matches every working order on `symbol` against one trade at `price` of `volume` shares, oldest order
   * first; orders that may not trade in the current phase (outside the regular session) are skipped.
   */
  matchAt(symbol: string, price: number, volume: number): void {
    const candidates = [...this.orders.values()].filter((order) => order.symbol === symbol && !isFinal(order));
    for (const order of candidates) {
      if (this.isWorking(order) && this.mayTradeNow(order)) this.tryFill(order, price, volume);
    }
  }

  /** A new simulated day: today's change is measured from here (Alpaca's `last_equity`). */
  startDay(): void {
    this.lastEquity = this.account().equity;
  }

  order(id: string): OrderWithLegs {
    return this.withLegsOf(this.requireOrder(id));
  }

  orderByClientOrderId(clientOrderId: string): Order {
    const order = this.byClientOrderId.get(clientOrderId);
    if (!order) throw notFound("order not found");
    return order;
  }

  /**
   * Alpaca's order listing. Flat, every order and leg is listed on its own status ("held" legs are neither
   * open nor closed). Nested, legs are listed under their entry, and a bracket matches the status filter if
   * its entry or any leg does, so a bracket whose entry filled and whose exits still work is "open".
   */
  listOrders(query: OrderQuery): OrderWithLegs[] {
    const statusMatches = (order: Order) =>
      query.status === "all" || (query.status === "open" ? OPEN_STATUSES : CLOSED_STATUSES).has(order.status);
    const all = [...this.orders.values()];
    const selected = query.nested
      ? all.filter((order) => !order.parentId && this.withLegs(order).some(statusMatches))
      : all.filter(statusMatches);
    const filtered = selected.filter(
      (order) =>
        (!query.symbols || query.symbols.includes(order.symbol)) &&
        (!query.side || order.side === query.side) &&
        (!query.after || order.submittedAt > query.after) &&
        (!query.until || order.submittedAt < query.until),
    );
    filtered.sort((a, b) => (query.direction === "asc" ? a.seq - b.seq : b.seq - a.seq));
    return filtered.slice(0, query.limit).map((order) => (query.nested ? this.withLegsOf(order) : { order, legs: [] }));
  }

  allOrders(): Order[] {
    return [...this.orders.values()];
  }

  position(symbol: string): Position {
    const position = this.positions.get(symbol);
    if (!position) throw notFound("position does not exist");
    return position;
  }

  allPositions(): Position[] {
    return [...this.positions.values()].sort((a, b) => a.symbol.localeCompare(b.symbol));
  }

  allFills(): readonly Fill[] {
    return this.fills;
  }

  realizedPl(): number {
    return roundMoney(this.fills.reduce((sum, fill) => sum + fill.realizedPl, 0));
  }

  /** Quantity of a position not yet promised to open closing orders (Alpaca's `qty_available`). */
  qtyAvailable(symbol: string): number {
    const held = Math.abs(this.positions.get(symbol)?.qty ?? 0);
    return Math.max(0, roundQty(held - this.reservedToClose(symbol)));
  }

  account(): AccountFigures {
    let longMarketValue = 0;
    let shortMarketValue = 0;
    for (const position of this.positions.values()) {
      const value = position.qty * this.market.price(position.symbol);
      if (value > 0) longMarketValue += value;
      else shortMarketValue += value;
    }
    const equity = this.cash + longMarketValue + shortMarketValue;
    const exposure = longMarketValue - shortMarketValue;
    const multiplier = this.options.multiplier;
    return {
      cash: roundMoney(this.cash),
      equity: roundMoney(equity),
      lastEquity: roundMoney(this.lastEquity),
      longMarketValue: roundMoney(longMarketValue),
      shortMarketValue: roundMoney(shortMarketValue),
      buyingPower: roundMoney(Math.max(0, equity * multiplier - exposure - this.reservedToOpen())),
      initialMargin: roundMoney(exposure / Math.min(multiplier, 2)),
      maintenanceMargin: roundMoney(longMarketValue * 0.25 - shortMarketValue * 0.3),
      multiplier,
    };
  }

  /**
   * Alpaca's bracket price rule against the base price (the entry's limit, or the last trade for a market entry):
   * 422, code 42210000, the rule as the message and `base_price` beside it.
   */
  private checkBracketPrices(request: OrderRequest, price: number): void {
    const base = request.type === "limit" ? request.limitPrice! : price;
    const takeProfit = request.takeProfit!.limitPrice;
    const stop = request.stopLoss!.stopPrice;
    const buying = request.side === "buy";
    const extra = { base_price: decimalString(base, 4) };
    if (buying ? takeProfit < base + 0.01 - 1e-9 : takeProfit > base - 0.01 + 1e-9) {
      throw unprocessable(`take_profit.limit_price must be ${buying ? ">= base_price + 0.01" : "<= base_price - 0.01"}`, extra);
    }
    if (buying ? stop > base - 0.01 + 1e-9 : stop < base + 0.01 - 1e-9) {
      throw unprocessable(`stop_loss.stop_price must be ${buying ? "<= base_price - 0.01" : ">= base_price + 0.01"}`, extra);
    }
  }

  /** A working order that sells or buys back held shares: a closing order, or a leg of a bracket whose entry filled. */
  private closesPosition(order: Order): boolean {
    if (!order.positionIntent.endsWith("close")) return false;
    return order.parentId === null || this.orders.get(order.parentId)?.status === "filled";
  }

  /** What a closing order could be for in place of itself (a leg: in place of its group): the position less other orders' promises. */
  private closableQty(order: Order): number {
    const held = Math.abs(this.positions.get(order.symbol)?.qty ?? 0);
    return Math.max(0, roundQty(held - this.reservedToClose(order.symbol, order.parentId ?? order.id)));
  }

  private checkQtyAvailable(symbol: string, held: number, qty: number, excludeId?: string): void {
    const promised = this.reservedToClose(symbol, excludeId);
    const available = Math.max(0, roundQty(Math.abs(held) - promised));
    if (qty > available + QTY_EPSILON) {
      throw forbidden(`insufficient qty available for order (requested: ${qty}, available: ${available})`, {
        available: String(available),
        existing_qty: String(Math.abs(held)),
        held_for_orders: String(roundQty(promised)),
        symbol,
      });
    }
  }

  private checkBuyingPower(cost: number, excludeId?: string): void {
    const figures = this.account();
    const buyingPower = figures.buyingPower + (excludeId ? this.reservationOf(this.orders.get(excludeId)!) : 0);
    if (cost > buyingPower + 1e-6) {
      throw forbidden("insufficient buying power", { buying_power: String(roundMoney(buyingPower)), cost_basis: String(roundMoney(cost)) });
    }
  }

  /**
   * Quantity promised to working closing orders; a bracket's two exit legs promise the same shares once. Leaves out
   * `excludeId`'s promise: an order's, or a bracket entry's (its legs').
   */
  private reservedToClose(symbol: string, excludeId?: string): number {
    let reserved = 0;
    for (const order of this.orders.values()) {
      if (order.symbol !== symbol || order.parentId !== null || order.id === excludeId || order.awaitingReplace) continue;
      if (!isFinal(order) && order.positionIntent.endsWith("close")) reserved += this.remaining(order);
      if (order.legIds.length > 0 && order.status === "filled") {
        const openLegs = this.withLegs(order).slice(1).filter((leg) => !isFinal(leg) && leg.id !== excludeId);
        reserved += Math.max(0, ...openLegs.map((leg) => this.remaining(leg)));
      }
    }
    return reserved;
  }

  private reservedToOpen(): number {
    let reserved = 0;
    for (const order of this.orders.values()) reserved += this.reservationOf(order);
    return reserved;
  }

  private reservationOf(order: Order): number {
    if (order.parentId !== null || isFinal(order) || order.awaitingReplace || !order.positionIntent.endsWith("open")) return 0;
    return this.remaining(order) * (order.limitPrice ?? this.market.price(order.symbol));
  }

  private attachLegs(parent: Order, request: OrderRequest): void {
    const exit: Side = parent.side === "buy" ? "sell" : "buy";
    const leg = () => ({
      ...this.blankOrder(parent.createdAt),
      symbol: parent.symbol,
      side: exit,
      timeInForce: parent.timeInForce,
      orderClass: "bracket" as const,
      qty: parent.qty,
      status: "held" as const,
      positionIntent: `${exit}_to_close` as PositionIntent,
      parentId: parent.id,
    });
    const takeProfit = this.register({
      ...leg(),
      clientOrderId: randomUUID(),
      type: "limit",
      limitPrice: request.takeProfit!.limitPrice,
      legRole: "take_profit",
    });
    const stopLoss = this.register({
      ...leg(),
      clientOrderId: randomUUID(),
      type: request.stopLoss!.limitPrice !== undefined ? "stop_limit" : "stop",
      stopPrice: request.stopLoss!.stopPrice,
      limitPrice: request.stopLoss!.limitPrice ?? null,
      legRole: "stop_loss",
    });
    parent.legIds = [takeProfit.id, stopLoss.id];
  }

  /**
   * Routes an order: it becomes `new`. With `matchNow` (the instant shortcut) it meets the current price at
   * once; otherwise it meets the trades that follow. An ioc or fok order that cannot fill at once is canceled.
   */
  private activate(order: Order, matchNow: boolean): void {
    order.status = "new";
    order.updatedAt = this.market.now();
    const immediate = matchNow || order.timeInForce === "ioc" || order.timeInForce === "fok";
    if (immediate) this.tryFill(order, this.market.price(order.symbol), Number.POSITIVE_INFINITY);
    if (!isFinal(order) && (order.timeInForce === "ioc" || order.timeInForce === "fok")) {
      for (const member of this.withLegs(order)) if (!isFinal(member)) this.cancel(member, this.market.now());
    }
  }

  /** Whether the order may trade in the current phase: the regular session, or extended hours if it says so. */
  private mayTradeNow(order: Order): boolean {
    const phase = this.market.phase();
    return phase === "regular" || (order.extendedHours && (phase === "pre" || phase === "post"));
  }

  private schedule(afterMs: number, run: () => void): void {
    this.scheduled.push({ dueMs: this.market.now().getTime() + afterMs, run });
  }

  /**
   * Working: an entry order that was routed and is not done, or a leg whose entry has filled. The stop-loss leg
   * stays in status "held" while it works, as on Alpaca, and is therefore not listed among open orders. Orders
   * whose cancel or replace is pending still work until it completes.
   */
  private isWorking(order: Order): boolean {
    if (order.awaitingReplace) return false;
    const working: ReadonlySet<OrderStatus> = new Set(["new", "partially_filled", "pending_cancel", "pending_replace"]);
    if (!order.parentId) return working.has(order.status);
    return this.orders.get(order.parentId)?.status === "filled" && (working.has(order.status) || order.status === "held");
  }

  private tryFill(order: Order, price: number, volume: number): void {
    const buying = order.side === "buy";
    const limitReached = () => (buying ? price <= order.limitPrice! : price >= order.limitPrice!);
    const stopReached = () => (buying ? price >= order.stopPrice! : price <= order.stopPrice!);
    let fills = false;
    switch (order.type) {
      case "market":
        fills = true;
        break;
      case "limit":
        fills = limitReached();
        break;
      case "stop":
        // Alpaca turns a buy stop into a stop-limit 4% above a stop under $50, 2.5% above one at or over $50;
        // sell stops stay stop orders (alpaca-docs, content/trading/orders.md, "Stop Order").
        fills = stopReached() && (!buying || price <= order.stopPrice! * (order.stopPrice! < 50 ? 1.04 : 1.025));
        break;
      case "stop_limit":
        if (!order.stopTriggered && stopReached()) order.stopTriggered = true;
        fills = order.stopTriggered && limitReached();
        break;
    }
    if (fills) this.fill(order, price, this.fillQty(order, volume));
  }

  /** How much of the order fills at one trade: all of it, a part by the partial-fill chance, or the volume cap. */
  private fillQty(order: Order, volume: number): number {
    const remaining = this.remaining(order);
    const { instantOrders, partialFillChance, tradeVolumeShare } = this.options.lifecycle;
    if (instantOrders) return remaining;
    let qty = remaining;
    if (tradeVolumeShare !== null && Number.isFinite(volume)) qty = Math.min(qty, Math.floor(volume * tradeVolumeShare));
    if (qty >= 2 && this.market.random() < partialFillChance) {
      const part = this.market.random();
      qty = Number.isInteger(qty) ? 1 + Math.floor(part * (qty - 1)) : Math.max(roundQty(qty * part), 1e-9);
    }
    return roundQty(qty);
  }

  private fill(order: Order, price: number, qty: number): void {
    if (!(qty > 0)) return;
    const now = this.market.now();
    const realizedPl = this.applyToPosition(order.symbol, order.side, qty, price);
    this.cash = roundMoney(this.cash + (order.side === "buy" ? -qty : qty) * price);
    const previous = order.filledQty * (order.filledAvgPrice ?? 0);
    order.filledQty = roundQty(order.filledQty + qty);
    // Unrounded, as Alpaca keeps it: an average of several fills is rarely a whole number of cents (wire.ts).
    order.filledAvgPrice = (previous + qty * price) / order.filledQty;
    const leavesQty = this.remaining(order);
    if (leavesQty > 0) {
      if (order.status !== "pending_cancel" && order.status !== "pending_replace" && order.status !== "held") order.status = "partially_filled";
      order.updatedAt = now;
    } else {
      Object.assign(order, { status: "filled", filledAt: now, updatedAt: now });
    }
    this.fills.push({
      id: `${now.toISOString().replace(/\D/g, "")}::${randomUUID()}`,
      orderId: order.id,
      symbol: order.symbol,
      side: order.side,
      qty,
      price,
      time: now,
      cumQty: order.filledQty,
      leavesQty,
      realizedPl,
    });
    if (leavesQty > 0) {
      // "If the take-profit order is partially filled, the stop-loss order will be adjusted to the remaining
      // quantity" (alpaca-docs, content/trading/orders.md, "Bracket Orders"); a partly filled stop likewise.
      if (order.parentId) {
        for (const sibling of this.withLegs(this.orders.get(order.parentId)!).slice(1)) {
          if (sibling.id !== order.id && !isFinal(sibling)) sibling.qty = roundQty(sibling.filledQty + leavesQty);
        }
      }
      return;
    }
    for (const leg of this.withLegs(order).slice(1)) {
      if (leg.legRole === "take_profit" && leg.status === "held") Object.assign(leg, { status: "new", updatedAt: now });
    }
    if (order.parentId) {
      for (const sibling of this.withLegs(this.orders.get(order.parentId)!).slice(1)) {
        if (sibling.id !== order.id && !isFinal(sibling)) this.cancel(sibling, now);
      }
    }
  }

  /** Moves a position by a fill and returns the profit or loss realised by the part that reduced it. */
  private applyToPosition(symbol: string, side: Side, qty: number, price: number): number {
    const signed = side === "buy" ? qty : -qty;
    const position = this.positions.get(symbol);
    if (!position) {
      this.positions.set(symbol, { symbol, qty: signed, avgEntryPrice: price });
      return 0;
    }
    if (sign(position.qty) === sign(signed)) {
      const held = Math.abs(position.qty);
      position.avgEntryPrice = (held * position.avgEntryPrice + qty * price) / (held + qty);
      position.qty = roundQty(position.qty + signed);
      return 0;
    }
    const closed = Math.min(Math.abs(position.qty), qty);
    const realized = roundMoney((price - position.avgEntryPrice) * closed * sign(position.qty));
    const remaining = roundQty(position.qty + signed);
    if (remaining === 0) this.positions.delete(symbol);
    else if (sign(remaining) !== sign(position.qty)) Object.assign(position, { qty: remaining, avgEntryPrice: price });
    else position.qty = remaining;
    return realized;
  }

  private cancel(order: Order, now: Date): void {
    Object.assign(order, { status: "canceled", canceledAt: now, updatedAt: now });
  }

  private reject(order: Order, now: Date): void {
    Object.assign(order, { status: "rejected", failedAt: now, updatedAt: now });
    for (const leg of this.withLegs(order).slice(1)) this.cancel(leg, now);
  }

  private remaining(order: Order): number {
    return roundQty(order.qty - order.filledQty);
  }

  private blankOrder(now: Date) {
    return {
      id: randomUUID(),
      filledQty: 0,
      filledAvgPrice: null,
      notional: null,
      limitPrice: null,
      stopPrice: null,
      extendedHours: false,
      createdAt: now,
      updatedAt: now,
      submittedAt: now,
      filledAt: null,
      canceledAt: null,
      failedAt: null,
      expiredAt: null,
      replacedAt: null,
      replacedBy: null,
      replaces: null,
      parentId: null,
      legIds: [],
      legRole: null,
      stopTriggered: false,
      awaitingReplace: false,
      seq: 0,
    };
  }

  private register(order: Order): Order {
    order.seq = this.nextSeq++;
    this.orders.set(order.id, order);
    this.byClientOrderId.set(order.clientOrderId, order);
    return order;
  }

  private requireOrder(id: string): Order {
    const order = this.orders.get(id);
    if (!order) throw notFound("order not found");
    return order;
  }

  private withLegs(order: Order): Order[] {
    return [order, ...order.legIds.map((id) => this.orders.get(id)!)];
  }

  private withLegsOf(order: Order): OrderWithLegs {
    return { order, legs: this.withLegs(order).slice(1) };
  }

  private snapshot(order: Order): OrderWithLegs {
    const [copy, ...legs] = this.withLegs(order).map((member) => ({ ...member, legIds: [...member.legIds] }));
    return { order: copy!, legs };
  }
}

/**
 * Alpaca's minimum price variance: prices of $1.00 or more in whole cents, under $1.00 to four decimals; anything
 * finer is refused with 422, code 42210000 ("invalid limit_price 290.123. sub-penny increment does not fulfill
 * minimum pricing criteria", alpaca-docs, content/trading/orders.md).
 */
function checkPriceIncrements(request: OrderRequest): void {
  const prices: Array<[string, number | undefined]> = [
    ["limit_price", request.limitPrice],
    ["stop_price", request.stopPrice],
    ["take_profit.limit_price", request.takeProfit?.limitPrice],
    ["stop_loss.stop_price", request.stopLoss?.stopPrice],
    ["stop_loss.limit_price", request.stopLoss?.limitPrice],
  ];
  for (const [field, value] of prices) {
    if (value === undefined) continue;
    const steps = value * (value >= 1 ? 100 : 10_000);
    if (Math.abs(steps - Math.round(steps)) > 1e-6) {
      throw unprocessable(`invalid ${field} ${value}. sub-penny increment does not fulfill minimum pricing criteria`);
    }
  }
}

/**
 * Alpaca's rules on what an order may combine (alpaca-docs, content/trading/orders.md and fractional-trading.md):
 * `extended_hours` only on limit orders with time_in_force day, never on a bracket; fractional quantities only on
 * market day orders, and not in extended hours.
 */
function checkOrderRules(request: OrderRequest, qty: number): void {
  if (request.extendedHours) {
    if (request.type !== "limit" || request.timeInForce !== "day") throw unprocessable("extended hours order must be DAY limit orders");
    if (request.orderClass === "bracket") throw unprocessable("extended hours are not supported for bracket orders");
  }
  if (!Number.isInteger(qty)) {
    if (request.type !== "market" || request.timeInForce !== "day") throw unprocessable("fractional orders must be DAY market orders");
    if (request.orderClass === "bracket") throw unprocessable("fractional orders are not supported for bracket orders");
    if (request.extendedHours) throw unprocessable("fractional orders are not supported in extended hours");
  }
}

/**
 * The price an opening order is charged against buying power at. A market buy: the last trade plus Alpaca's
 * collar, 4% under $50 and 2.5% from $50 ("the limit price is 2.5% to 4% above the current market price"); a
 * short sale: the greater of its limit and 3% above the market ("MAX(order's limit price, 3% above the current ask
 * price)"), both from alpaca-docs, content/trading/orders.md, "Buying Power"; a limit buy: its limit.
 */
function openingPrice(request: OrderRequest, price: number): number {
  if (request.side === "sell") return Math.max(request.limitPrice ?? 0, price * 1.03);
  if (request.limitPrice !== undefined) return request.limitPrice;
  const market = request.stopPrice ?? price;
  return market * (market < 50 ? 1.04 : 1.025);
}
