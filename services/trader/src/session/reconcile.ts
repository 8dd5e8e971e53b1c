import { isOrderFinal, type BrokerAccount, type BrokerLeg, type BrokerOrder, type BrokerPosition } from "../broker/types.js";
import { parseClientOrderId } from "./client-order-ids.js";
import { realizedPlOf, type ClosedTrade, type ExitFill, type ExitVia, type OpenPosition, type PendingEntry, type PositionSide, type TradingState } from "./state.js";

/**
 * What the broker says, read in one go. `orders` are top-level orders with their bracket legs nested, an order's
 * `filledAvgPrice` the exact average of its fills where the view priced it from the broker's FILL activities.
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
  | { kind: "entry_partially_filled"; symbol: string; tradeNo: number; clientOrderId: string; side: PositionSide; qty: number; ordered: number; fillPrice: number }
  | { kind: "entry_canceled"; symbol: string; tradeNo: number; clientOrderId: string; status: string }
  | { kind: "order_recovered"; symbol: string; tradeNo: number; clientOrderId: string; status: string; filledQty: number }
  | { kind: "placement_not_found"; symbol: string; clientOrderId: string }
  | { kind: "exit_ended"; symbol: string; tradeNo: number; clientOrderId: string; status: string; filledQty: number }
  | { kind: "exit_partially_filled"; symbol: string; tradeNo: number; exitedQty: number; realizedPl: number }
  | { kind: "position_closed"; trade: ClosedTrade; openedUnseen: boolean }
  | { kind: "position_adopted"; symbol: string; side: PositionSide; qty: number; avgEntryPrice: number }
  | { kind: "quantity_corrected"; symbol: string; local: { side: PositionSide; qty: number }; broker: { side: PositionSide; qty: number } }
  | { kind: "legs_attached"; symbol: string; takeProfitId: string | null; stopLossId: string | null }
  | { kind: "protection_lost"; symbol: string; detail: string }
  | { kind: "other_session_entry_canceled"; symbol: string; clientOrderId: string; status: string; filledQty: number };

/** The broker's answers contradict each other; acting on them could trade on a wrong picture of the account. */
export class ReconciliationError extends Error {
  override name = "ReconciliationError";
}

interface Exit {
  /** The exit orders that filled, each once. */
  fills: ExitFill[];
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
    changes.push(...settleEntry(state, entry, ours.closes.get(`${entry.symbol}:${entry.tradeNo}`) ?? [], held.has(entry.symbol), sessionId, view.readAt));
  }
  changes.push(...settleExits(state, view, ours.closes, held, sessionId, view.readAt));

  for (const position of [...state.positions.values()]) {
    // A position that changed after the sync decided which orders to read is settled by the next sync.
    if (!view.complete && !view.examined.has(position.symbol)) continue;
    const broker = held.get(position.symbol);
    if (!broker) {
      const exit = otherExit(view.orders, sessionId, position, ours.closes.get(`${position.symbol}:${position.tradeNo}`) ?? []);
      const trade = state.close(position.symbol, exit ? { fills: exit.fills, via: exit.via } : { fills: [], via: "unknown" });
      changes.push({ kind: "position_closed", trade, openedUnseen: false });
      continue;
    }
    const brokerQty = Math.abs(broker.qty);
    if (broker.side !== position.side || brokerQty !== position.qty) {
      if (ordersBehind(position, brokerQty, ours.entries, ours.closes)) continue;
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
    const bracket = protectingBracket(view.orders, sessionId, broker.symbol, side, qty);
    const takeProfit = bracket?.legs.find(isTakeProfit);
    const stopLoss = bracket?.legs.find((leg) => !isTakeProfit(leg));
    state.open({
      symbol: broker.symbol,
      side,
      qty,
      entryPrice: broker.avgEntryPrice,
      stopLoss: stopLoss?.stopPrice ?? null,
      takeProfit: takeProfit?.limitPrice ?? null,
      tradeNo: state.takeTradeNo(broker.symbol),
      origin: "adopted",
      openedAt: null,
      orders: { entryId: null, entryClientOrderId: null, takeProfitId: takeProfit?.id ?? null, stopLossId: stopLoss?.id ?? null },
      entryFilling: false,
      exit: null,
      closeAttempts: 0,
      exitFills: {},
    });
    changes.push({ kind: "position_adopted", symbol: broker.symbol, side, qty, avgEntryPrice: broker.avgEntryPrice });
    if (bracket) changes.push({ kind: "legs_attached", symbol: broker.symbol, takeProfitId: takeProfit?.id ?? null, stopLossId: stopLoss?.id ?? null });
  }
  return changes;
}

/**
 * The bracket of another session (one taken over with --take-over, whose client_order_ids carry its own
 * session) that opened all of an adopted position: its entry filled the broker's whole quantity on the
 * position's side and its legs still work, so the adopted position keeps that stop-loss and take-profit, as
 * the session's own would. An order of that session that reached the broker after the take-over is adopted
 * this way by the first sync that sees its position. Without such a bracket the position is adopted bare.
 */
function protectingBracket(orders: BrokerOrder[], sessionId: string, symbol: string, side: PositionSide, qty: number): BrokerOrder | undefined {
  return orders
    .filter((order) => order.symbol === symbol && order.orderClass === "bracket" && parseClientOrderId(sessionId, order.clientOrderId) === null)
    .filter((order) => sideOfEntry(order) === side && order.status === "filled" && order.filledQty === qty)
    .filter((order) => order.legs.length === 2 && order.legs.every((leg) => !isOrderFinal(leg) && leg.filledQty === 0))
    .sort((a, b) => (b.filledAt?.getTime() ?? 0) - (a.filledAt?.getTime() ?? 0))[0];
}

/** One entry order of this session against what the state knows of its trade. */
function settleEntry(
  state: TradingState,
  { order, symbol, tradeNo }: SessionEntry,
  closes: BrokerOrder[],
  stillHeld: boolean,
  sessionId: string,
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

  const exit = exitOf(order, closes, sessionId);
  // The trade is over once its exits filled all it holds, or once the broker holds nothing; an exit partly
  // filled while the rest is still held leaves the position open, at the broker's quantity.
  if (exit && (!stillHeld || exit.qty >= order.filledQty)) {
    if (ownsPosition) {
      const trade = state.close(symbol, { fills: exit.fills, via: exit.via, entryPrice: fillPriceOf(order) });
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
      realizedPl: realizedPlOf(side, entryPrice, exit.fills),
      via: exit.via,
      tradeNo,
    });
    return [{ kind: "position_closed", trade, openedUnseen: true }];
  }

  // A position gone at the broker without an exit filling was closed some other way; that is booked below.
  if (ownsPosition) {
    if (!stillHeld) return [];
    const changes: Change[] = [];
    position.entryFilling = !isOrderFinal(order);
    // Part of the position has exited: the broker realised those fills, and so does the session, now.
    if (exit) changes.push(...bookExits(state, position, exit.fills, fillPriceOf(order)));
    // The entry filled further since the position was booked (a partial fill, then the rest).
    if (!exit && position.qty !== order.filledQty) {
      Object.assign(position, { qty: order.filledQty, entryPrice: fillPriceOf(order), openedAt: position.openedAt ?? order.filledAt?.toISOString() ?? null });
      changes.push(entryFillOf(order, symbol, tradeNo));
    }
    return [...changes, ...attachLegs(position, order, sessionId, readAt)];
  }
  if (position) return [];
  const opened = positionFrom(order, symbol, tradeNo);
  state.open(opened);
  const changes: Change[] = [ownsPending ? entryFillOf(order, symbol, tradeNo) : recovered()];
  // Its exits may have filled part of it already (while the trader was down): the broker realised those.
  if (exit) changes.push(...bookExits(state, opened, exit.fills, fillPriceOf(order)));
  if (order.legs.length > 0 && order.legs.every(isOrderFinal)) changes.push(protectionLost(opened, order));
  return changes;
}

/**
 * The position is what filled. A partial fill books the filled part; the rest of the entry is left working
 * (see README, "Partial fills"), and the position grows as it fills.
 */
function entryFillOf(order: BrokerOrder, symbol: string, tradeNo: number): Change {
  const fields = { symbol, tradeNo, clientOrderId: order.clientOrderId, side: sideOfEntry(order), qty: order.filledQty, fillPrice: fillPriceOf(order) };
  return order.status === "filled" ? { kind: "entry_filled", ...fields } : { kind: "entry_partially_filled", ...fields, ordered: order.qty! };
}

/**
 * Re-attaches the bracket's working legs to the position: their ids change when a leg is replaced at the
 * broker (the session's own exit replaces the take-profit), and a position restored from an older checkpoint
 * may not have them. Legs that all stopped working without a fill (canceled at the broker, or with a partly
 * filled entry that was canceled) leave the position unprotected: reported once, with the leg ids cleared, and
 * the session then closes it (see TradingSession.act). A working leg that is this trade's exit (a take-profit
 * replaced by an earlier run that crashed before its checkpoint) becomes the position's exit.
 */
function attachLegs(position: OpenPosition, order: BrokerOrder, sessionId: string, readAt: Date): Change[] {
  if (order.legs.length === 0) return [];
  const ids = position.orders;
  const working = order.legs.filter((leg) => !isOrderFinal(leg));
  if (working.length === 0) {
    if (ids.takeProfitId === null && ids.stopLossId === null) return [];
    Object.assign(ids, { entryId: order.id, takeProfitId: null, stopLossId: null });
    return [protectionLost(position, order)];
  }
  const takeProfit = working.find(isTakeProfit);
  const stopLoss = working.find((leg) => !isTakeProfit(leg));
  const current = { entryId: order.id, takeProfitId: takeProfit?.id ?? null, stopLossId: stopLoss?.id ?? null };
  const exitLeg = takeProfit && closeAttemptOf(takeProfit, sessionId, position);
  if (exitLeg) {
    position.closeAttempts = Math.max(position.closeAttempts, exitLeg);
    position.exit ??= { clientOrderId: takeProfit.clientOrderId, orderId: takeProfit.id, method: "replace_take_profit", requestedAt: readAt.toISOString() };
  }
  // Legs being canceled after the entry filled (by an earlier run's exit that crashed before its checkpoint, or by
  // hand): watched as that exit until they are, so the position is closed then rather than left without them.
  const canceling = order.status === "filled" ? working.find((leg) => leg.status === "pending_cancel") : undefined;
  if (canceling && !position.exit) {
    position.exit = { clientOrderId: canceling.clientOrderId, orderId: canceling.id, method: "cancel_protection", requestedAt: readAt.toISOString() };
  }
  if (ids.entryId === current.entryId && ids.takeProfitId === current.takeProfitId && ids.stopLossId === current.stopLossId) return [];
  Object.assign(ids, current);
  position.stopLoss = stopLoss?.stopPrice ?? position.stopLoss;
  // The session's own replacement is its exit, not a take-profit: the position keeps its planned one.
  if (exitLeg) return [];
  position.takeProfit = takeProfit?.limitPrice ?? position.takeProfit;
  return [{ kind: "legs_attached", symbol: position.symbol, takeProfitId: current.takeProfitId, stopLossId: current.stopLossId }];
}

/** Books the exit fills of an open position beyond those booked, and says so when there were any. */
function bookExits(state: TradingState, position: OpenPosition, fills: ExitFill[], entryPrice?: number): Change[] {
  const exitedBefore = exitedQtyOf(position);
  const realizedPl = state.bookExitFills(position, fills, entryPrice);
  const exitedQty = exitedQtyOf(position);
  if (exitedQty === exitedBefore) return [];
  return [{ kind: "exit_partially_filled", symbol: position.symbol, tradeNo: position.tradeNo, exitedQty, realizedPl }];
}

const exitedQtyOf = (position: OpenPosition) => Object.values(position.exitFills).reduce((sum, fill) => sum + fill.qty, 0);

/**
 * True when the broker's quantity for a position differs from what the trade's orders in the view account for
 * (the entry's fills less its exits') while one of them still works: it filled after the orders were read and
 * before the positions were. Correcting the quantity now would leave that fill unbooked, the position then
 * matching the broker's and read no more; left as it is, the next sync sees it differ and reads its orders again.
 */
function ordersBehind(position: OpenPosition, brokerQty: number, entries: SessionEntry[], closes: Map<string, BrokerOrder[]>): boolean {
  if (position.origin !== "strategy") return false;
  const entry = entries.find((candidate) => candidate.symbol === position.symbol && candidate.tradeNo === position.tradeNo)?.order;
  if (!entry) return false;
  const tradeCloses = closes.get(`${position.symbol}:${position.tradeNo}`) ?? [];
  const exits = [...new Map([...entry.legs, ...tradeCloses].map((exit) => [exit.id, exit])).values()];
  if (![entry, ...exits].some((order) => !isOrderFinal(order))) return false;
  const exited = exits.reduce((sum, exit) => sum + Math.max(exit.filledQty, position.exitFills[exit.id]?.qty ?? 0), 0);
  const booked = Object.entries(position.exitFills).reduce((sum, [id, fill]) => sum + (exits.some((exit) => exit.id === id) ? 0 : fill.qty), 0);
  return Math.abs(entry.filledQty - exited - booked - brokerQty) > 1e-9;
}

function protectionLost(position: OpenPosition, order: BrokerOrder): Change {
  return {
    kind: "protection_lost",
    symbol: position.symbol,
    detail: `its exit legs are ${order.legs.map((leg) => leg.status).join(" and ")} without a fill, so the broker holds no stop-loss or take-profit for it; the session closes it at market`,
  };
}

/** The attempt number when `order` is one of this trade's exits (`:close`, `:close:K`), else null. */
function closeAttemptOf(order: Pick<BrokerOrder, "clientOrderId">, sessionId: string, position: Pick<OpenPosition, "symbol" | "tradeNo">): number | null {
  const parsed = parseClientOrderId(sessionId, order.clientOrderId);
  if (!parsed || parsed.role !== "close" || parsed.symbol !== position.symbol || parsed.tradeNo !== position.tradeNo) return null;
  return parsed.attempt ?? 1;
}

/**
 * Each exit in progress against the broker's answer: its order found (the id kept), ended unfilled or partly
 * filled (canceled, expired, rejected: cleared, so the next exit takes the next close id; a part that filled
 * is already in the broker's position), or never placed (cleared, and its id is used again): every view reads
 * the order of each exit in progress, so an exit without an order id that is not in it is not at the broker. Working close orders of a held position that the state does
 * not know of (placed by a run that crashed before its checkpoint) become its exit.
 */
function settleExits(state: TradingState, view: BrokerView, closes: Map<string, BrokerOrder[]>, held: Map<string, BrokerPosition>, sessionId: string, readAt: Date): Change[] {
  const changes: Change[] = [];
  const everything = view.orders.flatMap((order) => [order, ...order.legs]);
  for (const position of state.positions.values()) {
    const tradeCloses = closes.get(`${position.symbol}:${position.tradeNo}`) ?? [];
    for (const close of tradeCloses) position.closeAttempts = Math.max(position.closeAttempts, closeAttemptOf(close, sessionId, position) ?? 0);
    // Fills of close orders read without their trade's entry (an adopted position's, a replaced leg looked up by
    // id); a position gone at the broker is booked whole as it closes, below.
    if (held.has(position.symbol)) changes.push(...bookExits(state, position, tradeCloses.filter((close) => close.filledQty > 0)));
    const unknownClose = tradeCloses.find((close) => !isOrderFinal(close));
    if (!position.exit && unknownClose) {
      const method = unknownClose.type === "stop" ? "protective_stop" : "market";
      position.exit = { clientOrderId: unknownClose.clientOrderId, orderId: unknownClose.id, method, requestedAt: readAt.toISOString() };
    }
    const exit = position.exit;
    if (!exit) continue;
    const order = everything.find((candidate) => candidate.id === exit.orderId || candidate.clientOrderId === exit.clientOrderId);
    if (!order) {
      if (exit.orderId !== null) continue;
      // The request got no answer and the broker has no such order: the next exit asks again under the same id.
      position.exit = null;
      position.closeAttempts = Math.min(position.closeAttempts, (closeAttemptOf(exit, sessionId, position) ?? 1) - 1);
      changes.push({ kind: "placement_not_found", symbol: position.symbol, clientOrderId: exit.clientOrderId });
      continue;
    }
    exit.orderId = order.id;
    if (exit.method === "cancel_protection") {
      changes.push(...settleProtectionCancel(position, order, sessionId));
      continue;
    }
    if (isOrderFinal(order) && order.status !== "filled") {
      position.exit = null;
      changes.push({ kind: "exit_ended", symbol: position.symbol, tradeNo: position.tradeNo, clientOrderId: order.clientOrderId, status: order.status, filledQty: order.filledQty });
    }
  }
  return changes;
}

/**
 * A `cancel_protection` exit against its order (a leg, or the protective stop): pending while the cancel is; once it
 * is canceled (or otherwise ended unfilled beyond what it had) nothing protects the position, which is then closed
 * at market (see TradingSession.act); an order that filled the rest closed the position, booked with its entry. An
 * order working as before did not take the cancel (an answer lost): a leg's exit is cleared and asked for again,
 * and the protective stop is the position's exit again.
 */
function settleProtectionCancel(position: OpenPosition, order: BrokerLeg, sessionId: string): Change[] {
  if (order.status === "pending_cancel" || order.status === "filled") return [];
  if (!isOrderFinal(order) && closeAttemptOf(order, sessionId, position) !== null) {
    position.exit = { ...position.exit!, method: "protective_stop" };
    return [];
  }
  position.exit = null;
  if (!isOrderFinal(order)) {
    return [{ kind: "exit_ended", symbol: position.symbol, tradeNo: position.tradeNo, clientOrderId: order.clientOrderId, status: order.status, filledQty: order.filledQty }];
  }
  if (position.orders.takeProfitId === null && position.orders.stopLossId === null) return [];
  Object.assign(position.orders, { takeProfitId: null, stopLossId: null });
  return [
    {
      kind: "protection_lost",
      symbol: position.symbol,
      detail: `its bracket's legs were canceled for its exit (the take-profit ${order.status} with ${order.filledQty} filled), so the session closes the rest at market`,
    },
  ];
}

/**
 * What the trade's exits have filled: its bracket's legs (the take-profit, its replacement by the session's
 * exit, the stop-loss) and its close orders, each order counted once, at their average price. Null before any
 * fill. `via` is the exit that filled most.
 */
function exitOf(order: BrokerOrder, closes: BrokerOrder[], sessionId: string): Exit | null {
  const exits = [...new Map([...order.legs, ...closes].map((exit) => [exit.id, exit])).values()];
  const filled = exits.filter((exit) => exit.filledQty > 0);
  if (filled.length === 0) return null;
  const largest = filled.reduce((most, exit) => (exit.filledQty > most.filledQty ? exit : most));
  const ours = parseClientOrderId(sessionId, largest.clientOrderId)?.role === "close";
  return { fills: filled, ...averageFill(filled), via: ours ? "close_order" : isTakeProfit(largest) ? "take_profit" : "stop_loss" };
}

/** Total quantity and average price of some fills, unrounded; the price is unknown if any fill lacks one. */
function exactAverageFill(fills: BrokerLeg[]): { qty: number; price: number | null } {
  const qty = fills.reduce((sum, fill) => sum + fill.filledQty, 0);
  if (fills.some((fill) => fill.filledAvgPrice === null)) return { qty, price: null };
  return { qty, price: fills.reduce((sum, fill) => sum + fill.filledQty * fill.filledAvgPrice!, 0) / qty };
}

/** The same with the price to the millionth, for the trade's report: its P&L is booked from each order's fills. */
function averageFill(fills: BrokerLeg[]): { qty: number; price: number | null } {
  const { qty, price } = exactAverageFill(fills);
  return { qty, price: price === null ? null : Math.round(price * 1_000_000) / 1_000_000 };
}

/**
 * How a position that is gone at the broker was closed when none of its bracket's legs filled: this
 * session's close orders, else the fills of orders placed by anyone else (a manual close) after it opened.
 */
function otherExit(orders: BrokerOrder[], sessionId: string, position: OpenPosition, closes: BrokerOrder[]): Exit | null {
  const closed = closes.filter((close) => close.filledQty > 0);
  if (closed.length > 0) return { fills: closed, ...averageFill(closed), via: "close_order" };
  const side = exitSide(position.side);
  const openedAt = position.openedAt ? new Date(position.openedAt).getTime() : undefined;
  const fills = orders
    .filter((order) => order.symbol === position.symbol && parseClientOrderId(sessionId, order.clientOrderId) === null)
    .flatMap((order) => [order, ...order.legs])
    .filter((order) => order.side === side && order.filledQty > 0 && order.filledAvgPrice !== null)
    .filter((order) => openedAt === undefined || (order.filledAt?.getTime() ?? 0) >= openedAt);
  if (fills.length === 0) return null;
  const { qty, price } = averageFill(fills);
  // Orders of someone else's may have done more than close this position; only what it held was closed, and
  // it is booked at those orders' exact average.
  const closedQty = Math.min(qty, position.qty);
  const fill = { id: `other:${position.symbol}:${position.tradeNo}`, filledQty: closedQty, filledAvgPrice: exactAverageFill(fills).price };
  return { fills: [fill], price, qty: closedQty, via: "other_order" };
}

interface SessionEntry {
  order: BrokerOrder;
  symbol: string;
  tradeNo: number;
}

/**
 * This session's entry orders (by symbol, then trade number) and close orders (by "SYMBOL:tradeNo", every
 * attempt). A replaced take-profit leg looked up by its client_order_id is listed on its own too; it is
 * counted once, under its entry.
 */
function sessionOrders(orders: BrokerOrder[], sessionId: string): { entries: SessionEntry[]; closes: Map<string, BrokerOrder[]> } {
  const entries: SessionEntry[] = [];
  const closes = new Map<string, BrokerOrder[]>();
  const legIds = new Set(orders.flatMap((order) => order.legs.map((leg) => leg.id)));
  for (const order of orders) {
    const parsed = parseClientOrderId(sessionId, order.clientOrderId);
    if (!parsed || parsed.symbol !== order.symbol || legIds.has(order.id)) continue;
    const key = `${parsed.symbol}:${parsed.tradeNo}`;
    if (parsed.role === "close") closes.set(key, [...(closes.get(key) ?? []), order]);
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
  // Only working legs protect it; with none, the session closes it (see attachLegs).
  const working = (leg: BrokerLeg | undefined) => (leg && !isOrderFinal(leg) ? leg.id : null);
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
    orders: { entryId: order.id, entryClientOrderId: order.clientOrderId, takeProfitId: working(takeProfit), stopLossId: working(stopLoss) },
    entryFilling: !isOrderFinal(order),
    exit: null,
    closeAttempts: 0,
    exitFills: {},
  };
}
