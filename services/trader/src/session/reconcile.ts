import { isOrderFinal, type BrokerAccount, type BrokerLeg, type BrokerOrder, type BrokerPosition } from "../broker/types.js";
import { parseClientOrderId } from "./client-order-ids.js";
import { profitOf, type ClosedTrade, type ExitVia, type OpenPosition, type PendingEntry, type PositionSide, type TradingState } from "./state.js";

/**
 * What the broker says, read in one go. `orders` are top-level orders with their bracket legs nested.
 * `complete`: the orders are every order submitted since the session began (on resume). Otherwise they are
 * only those a live sync fetched: pending entries, and every order of the symbols in `examined`.
 */
export interface BrokerView {
  account: BrokerAccount;
  positions: BrokerPosition[];
  orders: BrokerOrder[];
  complete: boolean;
  examined: ReadonlySet<string>;
  readAt: Date;
}

/** One thing the broker knew that the session did not, and how it was resolved. */
export type Change =
  | { kind: "entry_filled"; symbol: string; tradeNo: number; clientOrderId: string; side: PositionSide; qty: number; fillPrice: number }
  | { kind: "entry_canceled"; symbol: string; tradeNo: number; clientOrderId: string; status: string }
  | { kind: "order_recovered"; symbol: string; tradeNo: number; clientOrderId: string; status: string; filledQty: number }
  | { kind: "placement_not_found"; symbol: string; clientOrderId: string }
  | { kind: "position_closed"; trade: ClosedTrade; openedUnseen: boolean }
  | { kind: "position_adopted"; symbol: string; side: PositionSide; qty: number; avgEntryPrice: number }
  | { kind: "quantity_corrected"; symbol: string; local: { side: PositionSide; qty: number }; broker: { side: PositionSide; qty: number } }
  | { kind: "legs_attached"; symbol: string; takeProfitId: string | null; stopLossId: string | null }
  | { kind: "protection_lost"; symbol: string; detail: string };

/** The broker's answers contradict each other; acting on them could trade on a wrong picture of the account. */
export class ReconciliationError extends Error {
  override name = "ReconciliationError";
}

interface Exit {
  price: number | null;
  qty: number;
  via: ExitVia;
}

const exitSide = (side: PositionSide) => (side === "long" ? "sell" : "buy");
const sideOfEntry = (order: Pick<BrokerOrder, "side">): PositionSide => (order.side === "buy" ? "long" : "short");
const isTakeProfit = (leg: BrokerLeg) => leg.type === "limit";

/**
 * Brings the session's state in line with the broker, which is the source of truth for holdings, and
 * returns every change it made. Orders of this session are recognised by their client_order_id; each
 * trade's fills come from its own bracket (entry, then the exit leg or close order that filled). Throws a
 * ReconciliationError, before changing anything, when the broker's answers cannot be trusted.
 */
export function reconcile(state: TradingState, view: BrokerView, sessionId: string): Change[] {
  const ours = sessionOrders(view.orders, sessionId);
  const held = new Map(view.positions.map((position) => [position.symbol, position]));
  checkTrustworthy(ours.entries, held);
  const placed = new Set(ours.entries.map(({ order }) => order.clientOrderId));
  const vanished = [...state.pendingEntries.values()].find((entry) => entry.confirmed && !placed.has(entry.clientOrderId));
  if (vanished) {
    throw new ReconciliationError(
      `the broker accepted entry order ${vanished.clientOrderId} for ${vanished.symbol} earlier but now has no order under that client_order_id`,
    );
  }

  const changes: Change[] = [];
  state.account = {
    id: view.account.id,
    portfolioValue: view.account.portfolioValue,
    buyingPower: view.account.buyingPower,
    cash: view.account.cash,
    asOf: view.readAt.toISOString(),
  };

  for (const entry of [...state.pendingEntries.values()]) {
    if (placed.has(entry.clientOrderId)) continue;
    // The placement got no answer and the order never surfaced: the strategy may decide again, under the same id.
    state.pendingEntries.delete(entry.symbol);
    changes.push({ kind: "placement_not_found", symbol: entry.symbol, clientOrderId: entry.clientOrderId });
  }

  for (const entry of ours.entries) {
    changes.push(...settleEntry(state, entry, ours.closes.get(`${entry.symbol}:${entry.tradeNo}`), held.has(entry.symbol), view.readAt));
  }

  for (const position of [...state.positions.values()]) {
    // A position that changed after the sync decided which orders to read is settled by the next sync.
    if (!view.complete && !view.examined.has(position.symbol)) continue;
    const broker = held.get(position.symbol);
    if (!broker) {
      const exit = otherExit(view.orders, sessionId, position, ours.closes.get(`${position.symbol}:${position.tradeNo}`));
      const trade = state.close(position.symbol, exit ? { exitPrice: exit.price, qty: exit.qty, via: exit.via } : { exitPrice: null, via: "unknown" });
      changes.push({ kind: "position_closed", trade, openedUnseen: false });
      continue;
    }
    const brokerQty = Math.abs(broker.qty);
    if (broker.side !== position.side || brokerQty !== position.qty) {
      changes.push({
        kind: "quantity_corrected",
        symbol: position.symbol,
        local: { side: position.side, qty: position.qty },
        broker: { side: broker.side, qty: brokerQty },
      });
      Object.assign(position, { side: broker.side, qty: brokerQty, entryPrice: broker.avgEntryPrice });
    }
  }

  for (const broker of view.positions) {
    // An entry of ours that is still working may have filled after its order was read; the next sync sees it.
    if (state.positions.has(broker.symbol) || state.pendingEntries.has(broker.symbol)) continue;
    const side = broker.side;
    const qty = Math.abs(broker.qty);
    state.open({
      symbol: broker.symbol,
      side,
      qty,
      entryPrice: broker.avgEntryPrice,
      stopLoss: null,
      takeProfit: null,
      tradeNo: state.takeTradeNo(broker.symbol),
      origin: "adopted",
      openedAt: null,
      orders: { entryId: null, entryClientOrderId: null, takeProfitId: null, stopLossId: null },
    });
    changes.push({ kind: "position_adopted", symbol: broker.symbol, side, qty, avgEntryPrice: broker.avgEntryPrice });
  }
  return changes;
}

/** One entry order of this session against what the state knows of its trade. */
function settleEntry(
  state: TradingState,
  { order, symbol, tradeNo }: SessionEntry,
  close: BrokerOrder | undefined,
  stillHeld: boolean,
  readAt: Date,
): Change[] {
  const known = tradeNo < state.nextTradeNo(symbol);
  const position = state.positions.get(symbol);
  const ownsPosition = position !== undefined && position.origin === "strategy" && position.tradeNo === tradeNo;
  const pending = state.pendingEntries.get(symbol);
  const ownsPending = pending?.clientOrderId === order.clientOrderId;
  state.markTradeNoUsed(symbol, tradeNo);
  const recovered = () => ({ kind: "order_recovered" as const, symbol, tradeNo, clientOrderId: order.clientOrderId, status: order.status, filledQty: order.filledQty });

  if (order.filledQty === 0) {
    if (isOrderFinal(order)) {
      if (ownsPending) {
        state.pendingEntries.delete(symbol);
        return [{ kind: "entry_canceled", symbol, tradeNo, clientOrderId: order.clientOrderId, status: order.status }];
      }
      return known ? [] : [recovered()];
    }
    if (ownsPending) {
      Object.assign(pending, { orderId: order.id, confirmed: true });
      return [];
    }
    if (known || pending) return [];
    state.pendingEntries.set(symbol, pendingFrom(order, symbol, tradeNo, readAt));
    return [recovered()];
  }

  const exit = exitOf(order, close);
  if (exit) {
    if (ownsPosition) {
      const trade = state.close(symbol, { exitPrice: exit.price, qty: exit.qty, via: exit.via, entryPrice: order.filledAvgPrice ?? undefined });
      return [{ kind: "position_closed", trade, openedUnseen: false }];
    }
    if (!ownsPending && known) return [];
    if (ownsPending) state.pendingEntries.delete(symbol);
    const side = sideOfEntry(order);
    const entryPrice = fillPriceOf(order);
    const trade = state.book({
      symbol,
      side,
      qty: exit.qty,
      entryPrice,
      exitPrice: exit.price,
      realizedPl: exit.price === null ? 0 : profitOf(side, exit.qty, entryPrice, exit.price),
      via: exit.via,
      tradeNo,
    });
    return [{ kind: "position_closed", trade, openedUnseen: true }];
  }

  // A position gone at the broker without an exit leg filling was closed some other way; that is booked below.
  if (ownsPosition) return stillHeld ? attachLegs(position, order) : [];
  if (position) return [];
  state.open(positionFrom(order, symbol, tradeNo));
  if (ownsPending) {
    return [{ kind: "entry_filled", symbol, tradeNo, clientOrderId: order.clientOrderId, side: sideOfEntry(order), qty: order.filledQty, fillPrice: fillPriceOf(order) }];
  }
  return [recovered()];
}

/**
 * Re-attaches the bracket's current legs to the position: their ids change when a leg is replaced at the
 * broker, and a position restored from an older checkpoint may not have them. Reports legs that stopped
 * working without a fill (canceled at the broker), leaving the position unprotected.
 */
function attachLegs(position: OpenPosition, order: BrokerOrder): Change[] {
  const takeProfit = order.legs.find(isTakeProfit);
  const stopLoss = order.legs.find((leg) => !isTakeProfit(leg));
  const changes: Change[] = [];
  const ids = position.orders;
  const current = { entryId: order.id, takeProfitId: takeProfit?.id ?? null, stopLossId: stopLoss?.id ?? null };
  if (order.legs.length > 0 && (ids.entryId !== current.entryId || ids.takeProfitId !== current.takeProfitId || ids.stopLossId !== current.stopLossId)) {
    Object.assign(ids, current);
    position.takeProfit = takeProfit?.limitPrice ?? position.takeProfit;
    position.stopLoss = stopLoss?.stopPrice ?? position.stopLoss;
    changes.push({ kind: "legs_attached", symbol: position.symbol, takeProfitId: current.takeProfitId, stopLossId: current.stopLossId });
  }
  if (order.legs.length > 0 && order.legs.every(isOrderFinal)) {
    changes.push({
      kind: "protection_lost",
      symbol: position.symbol,
      detail: `its exit legs are ${order.legs.map((leg) => leg.status).join(" and ")} without a fill, so the broker holds no stop-loss or take-profit for it`,
    });
  }
  return changes;
}

function exitOf(order: BrokerOrder, close: BrokerOrder | undefined): Exit | null {
  const leg = order.legs.find((candidate) => candidate.filledQty > 0);
  if (leg) return { price: leg.filledAvgPrice, qty: leg.filledQty, via: isTakeProfit(leg) ? "take_profit" : "stop_loss" };
  if (close && close.filledQty > 0) return { price: close.filledAvgPrice, qty: close.filledQty, via: "close_order" };
  return null;
}

/**
 * How a position that is gone at the broker was closed when none of its bracket's legs filled: this
 * session's close order, else the fills of orders placed by anyone else (a manual close) after it opened.
 */
function otherExit(orders: BrokerOrder[], sessionId: string, position: OpenPosition, close: BrokerOrder | undefined): Exit | null {
  if (close && close.filledQty > 0) return { price: close.filledAvgPrice, qty: close.filledQty, via: "close_order" };
  const side = exitSide(position.side);
  const openedAt = position.openedAt ? new Date(position.openedAt).getTime() : undefined;
  const fills = orders
    .filter((order) => order.symbol === position.symbol && parseClientOrderId(sessionId, order.clientOrderId) === null)
    .flatMap((order) => [order, ...order.legs])
    .filter((order) => order.side === side && order.filledQty > 0 && order.filledAvgPrice !== null)
    .filter((order) => openedAt === undefined || (order.filledAt?.getTime() ?? 0) >= openedAt);
  if (fills.length === 0) return null;
  const qty = fills.reduce((sum, fill) => sum + fill.filledQty, 0);
  const price = fills.reduce((sum, fill) => sum + fill.filledQty * fill.filledAvgPrice!, 0) / qty;
  return { price: Math.round(price * 10_000) / 10_000, qty: Math.min(qty, position.qty), via: "other_order" };
}

interface SessionEntry {
  order: BrokerOrder;
  symbol: string;
  tradeNo: number;
}

/** This session's entry orders (by symbol, then trade number) and close orders (by "SYMBOL:tradeNo"). */
function sessionOrders(orders: BrokerOrder[], sessionId: string): { entries: SessionEntry[]; closes: Map<string, BrokerOrder> } {
  const entries: SessionEntry[] = [];
  const closes = new Map<string, BrokerOrder>();
  for (const order of orders) {
    const parsed = parseClientOrderId(sessionId, order.clientOrderId);
    if (!parsed || parsed.symbol !== order.symbol) continue;
    if (parsed.role === "close") closes.set(`${parsed.symbol}:${parsed.tradeNo}`, order);
    else entries.push({ order, symbol: parsed.symbol, tradeNo: parsed.tradeNo });
  }
  entries.sort((a, b) => a.symbol.localeCompare(b.symbol) || a.tradeNo - b.tradeNo);
  return { entries, closes };
}

/**
 * Refuses answers the books cannot be kept on, before anything changes: an entry without a quantity, a fill
 * without a price, and a position missing while a bracket whose entry filled still has working exit legs
 * (one of the two reads is wrong or stale, and an empty position list is not taken as flat).
 */
function checkTrustworthy(entries: SessionEntry[], held: Map<string, BrokerPosition>): void {
  for (const { order, symbol } of entries) {
    if (order.qty === null) throw new ReconciliationError(`the broker reports entry order ${order.clientOrderId} (${symbol}) without a quantity`);
    if (order.filledQty > 0 && order.filledAvgPrice === null) {
      throw new ReconciliationError(`the broker reports entry order ${order.clientOrderId} (${symbol}) as filled but gives no fill price`);
    }
    if (order.filledQty === 0 || held.has(symbol)) continue;
    // A leg that filled part of the position and still works: the orders were read before its last fills, which
    // closed the position by the time positions were read. Booking now would book only the part the orders show.
    const exited = order.legs.reduce((sum, leg) => sum + leg.filledQty, 0);
    const working = order.legs.find((leg) => !isOrderFinal(leg));
    if (working && exited < order.filledQty) {
      const part = exited > 0 ? ` has exited only ${exited} of ${order.filledQty} and` : "";
      throw new ReconciliationError(
        `the broker lists no ${symbol} position, yet order ${order.clientOrderId}${part} still has a working ${isTakeProfit(working) ? "take-profit" : "stop-loss"} leg (${working.status}) protecting one; refusing to treat ${symbol} as flat on contradictory answers`,
      );
    }
  }
}

/** Checked for every filled entry by `checkTrustworthy` before anything changes. */
const fillPriceOf = (order: BrokerOrder) => order.filledAvgPrice!;

/** The pending entry an unfilled entry order of this session stands for. */
export function pendingFrom(order: BrokerOrder, symbol: string, tradeNo: number, readAt: Date): PendingEntry {
  const takeProfit = order.legs.find(isTakeProfit);
  const stopLoss = order.legs.find((leg) => !isTakeProfit(leg));
  return {
    symbol,
    side: sideOfEntry(order),
    qty: order.qty!,
    tradeNo,
    clientOrderId: order.clientOrderId,
    orderId: order.id,
    takeProfit: takeProfit?.limitPrice ?? null,
    stopLoss: stopLoss?.stopPrice ?? null,
    submittedAt: (order.submittedAt ?? readAt).toISOString(),
    confirmed: true,
  };
}

function positionFrom(order: BrokerOrder, symbol: string, tradeNo: number): OpenPosition {
  const takeProfit = order.legs.find(isTakeProfit);
  const stopLoss = order.legs.find((leg) => !isTakeProfit(leg));
  return {
    symbol,
    side: sideOfEntry(order),
    qty: order.filledQty,
    entryPrice: fillPriceOf(order),
    stopLoss: stopLoss?.stopPrice ?? null,
    takeProfit: takeProfit?.limitPrice ?? null,
    tradeNo,
    origin: "strategy",
    openedAt: order.filledAt?.toISOString() ?? null,
    orders: { entryId: order.id, entryClientOrderId: order.clientOrderId, takeProfitId: takeProfit?.id ?? null, stopLossId: stopLoss?.id ?? null },
  };
}
