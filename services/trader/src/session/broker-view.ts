import type { Broker } from "../broker/broker.js";
import { isOrderFinal, type BrokerFill, type BrokerLeg, type BrokerOrder, type BrokerPosition } from "../broker/types.js";
import type { BrokerView } from "./reconcile.js";
import type { OpenPosition, TradingState } from "./state.js";

/** Orders are listed from a little before the session began, so clock skew cannot hide the first ones. */
const LISTING_MARGIN_MS = 60_000;

/**
 * Everything the broker knows about the session, for resuming: every order submitted since it began, with
 * legs nested, then positions and account side by side (read after the orders, so a fill in between shows as a
 * contradiction the next attempt resolves, never as a position that seems to have closed). Orders the
 * listing does not show (a placement that got no answer, an entry from before the listing's start) are looked
 * up by client_order_id, which re-attaches their legs; every order still working is listed too, whenever it was
 * placed. Fills not booked yet are priced exactly (priceFills). Any failed read fails the whole view.
 * `stillOpen`: that listing of the working orders when the start has just read it (and changed nothing at the
 * broker since), so it is not asked for twice; it is as old as or older than the session's own listing, which
 * therefore wins for an order both show.
 */
export async function readFullView(broker: Broker, state: TradingState, stillOpen?: BrokerOrder[]): Promise<BrokerView> {
  const since = new Date(new Date(state.identity.brokerSessionStartedAt).getTime() - LISTING_MARGIN_MS);
  // Independent reads, both before positions: the session's orders, and the orders still working whenever placed
  // (another session's bracket whose legs still protect a position this session adopts).
  const [listed, open] = await Promise.all([broker.ordersSince(since), stillOpen ?? broker.openOrders()]);
  const listedIds = new Set(listed.map((order) => order.clientOrderId));
  const missing = [
    ...[...state.pendingEntries.values()].map((entry) => entry.clientOrderId),
    ...[...state.positions.values()].flatMap((position) => (position.orders.entryClientOrderId ? [position.orders.entryClientOrderId] : [])),
    // An exit that replaces a take-profit leg is listed under its entry only once the replace completes.
    ...[...state.positions.values()].flatMap((position) => (position.exit ? [position.exit.clientOrderId] : [])),
  ].filter((clientOrderId) => !listedIds.has(clientOrderId));
  const looked = await lookUp(broker, missing);
  const seen = new Set([...listed, ...looked].map((order) => order.id));
  const orders = await priceFills(broker, state, dedupe([...listed, ...looked, ...open.filter((order) => !seen.has(order.id))]));
  // Side by side: no check compares the account's figures (value, buying power, cash) with positions or orders.
  const [positions, account] = await Promise.all([broker.positions(), broker.account()]);
  return { account, positions, orders, complete: true, examined: new Set(), readAt: new Date() };
}

/**
 * What one trading tick needs: account and positions, plus the orders behind anything that may have
 * changed: pending entries, entries still filling, exits in progress, and every order of each symbol whose position the broker no
 * longer reports as the session holds it (those symbols are `examined`). When orders are fetched, positions are read again
 * after them (and the fills, when some are not booked yet: priceFills); a position that changes in between is left to
 * the next tick. A quiet tick reads the account and positions only; with `checkLegs` it also lists the working
 * orders, and reads the entry of any position whose bracket leg is no longer among them.
 */
export async function readLiveView(broker: Broker, state: TradingState, { checkLegs = false }: { checkLegs?: boolean } = {}): Promise<BrokerView> {
  const account = await broker.account();
  let positions = await broker.positions();
  const held = new Map(positions.map((position) => [position.symbol, position]));

  const byId = new Set<string>();
  const byClientOrderId: string[] = [];
  const changedPositions: OpenPosition[] = [];
  for (const entry of state.pendingEntries.values()) {
    if (entry.orderId) byId.add(entry.orderId);
    else byClientOrderId.push(entry.clientOrderId);
  }
  for (const position of state.positions.values()) {
    if (position.exit?.orderId) byId.add(position.exit.orderId);
    else if (position.exit) byClientOrderId.push(position.exit.clientOrderId);
    if (position.entryFilling && position.orders.entryId) byId.add(position.orders.entryId);
    if (!changed(position, held.get(position.symbol))) continue;
    changedPositions.push(position);
    if (position.orders.entryId) byId.add(position.orders.entryId);
  }
  // A leg no longer working (canceled by hand) is seen on its entry, whose legs reconcile re-attaches or, when
  // none works, reports the protection lost.
  if (checkLegs) for (const entryId of await entriesWithLegsGone(broker, state)) byId.add(entryId);
  // A position the session does not know (another session's order that reached the broker after a take-over)
  // is adopted by this sync; its symbol's orders say which bracket's legs protect it.
  const unknown = positions.filter((position) => !state.positions.has(position.symbol) && !state.pendingEntries.has(position.symbol)).map((position) => position.symbol);
  const examined = new Set([...changedPositions.map((position) => position.symbol), ...unknown]);
  if (byId.size + byClientOrderId.length + changedPositions.length + unknown.length === 0) {
    return { account, positions, orders: [], complete: false, examined, readAt: new Date() };
  }

  const orders: BrokerOrder[] = [];
  for (const orderId of byId) orders.push(await broker.order(orderId));
  orders.push(...(await lookUp(broker, byClientOrderId)));
  for (const position of changedPositions) {
    const since = position.openedAt ? new Date(position.openedAt) : new Date(state.identity.brokerSessionStartedAt);
    orders.push(...(await broker.ordersSince(new Date(since.getTime() - LISTING_MARGIN_MS), [position.symbol])));
  }
  if (unknown.length > 0) orders.push(...(await broker.ordersSince(new Date(new Date(state.identity.brokerSessionStartedAt).getTime() - LISTING_MARGIN_MS), unknown)));
  const priced = await priceFills(broker, state, dedupe(orders));
  positions = await broker.positions();
  return { account, positions, orders: priced, complete: false, examined, readAt: new Date() };
}

/**
 * The entries of the session's positions one of whose bracket legs is missing from the broker's working
 * orders (nested under their entries, or listed alone). Positions with an exit in progress are watched through
 * it, and adopted ones have no entry of the session's to read; when no position counts on legs, nothing is read.
 */
async function entriesWithLegsGone(broker: Broker, state: TradingState): Promise<string[]> {
  const relying = [...state.positions.values()].filter((position) => position.orders.entryId && !position.exit && (position.orders.takeProfitId || position.orders.stopLossId));
  if (relying.length === 0) return [];
  const working = new Set((await broker.openOrders()).flatMap((order) => [order, ...order.legs]).filter((order) => !isOrderFinal(order)).map((order) => order.id));
  return relying
    .filter(({ orders }) => [orders.takeProfitId, orders.stopLossId].some((legId) => legId !== null && !working.has(legId)))
    .map(({ orders }) => orders.entryId!);
}

/**
 * The orders with their fills at the broker's exact prices, when one of them has filled beyond what the session
 * has booked of it (otherwise no request is made: what reconcile books next is priced then). An order's
 * `filled_avg_price` may be rounded (a multi-fill average such as x.xx3333 is not whole cents), and a trade's P&L
 * must be the cent its fills realised, so each filled order of the symbols concerned (the new fills' orders and
 * their trades' entries, whose price every exit is booked against) is priced from the FILL activities since the
 * earliest of them was submitted: Σ qty·price / Σ qty of its fills. An order whose activities do not add up to its
 * filled quantity (a fill the activities do not show yet, or one after the orders were read) keeps its
 * `filled_avg_price`.
 */
async function priceFills(broker: Broker, state: TradingState, orders: BrokerOrder[]): Promise<BrokerOrder[]> {
  const booked = bookedQuantities(state);
  const every = orders.flatMap((order) => [order, ...order.legs]);
  const symbols = new Set(every.filter((order) => order.filledQty > (booked.get(order.id) ?? 0)).map((order) => order.symbol));
  if (symbols.size === 0) return orders;
  const submitted = every
    .filter((order) => symbols.has(order.symbol) && order.filledQty > 0)
    .map((order) => (order.submittedAt ?? new Date(state.identity.brokerSessionStartedAt)).getTime());
  const byOrder = fillsByOrder(await broker.fillsSince(new Date(Math.min(...submitted) - LISTING_MARGIN_MS)));
  const exact = <T extends BrokerLeg>(order: T): T => {
    const fills = byOrder.get(order.id);
    if (!symbols.has(order.symbol) || order.filledQty === 0 || !fills || Math.abs(fills.qty - order.filledQty) > 1e-9) return order;
    return { ...order, filledAvgPrice: fills.notional / fills.qty };
  };
  return orders.map((order) => ({ ...exact(order), legs: order.legs.map(exact) }));
}

/**
 * How much of each order the session has booked: an open position's entry all of it, or while it still fills what
 * the position holds; an exit order what its booked exit fills say. Any other order's fills are not booked.
 */
function bookedQuantities(state: TradingState): Map<string, number> {
  const booked = new Map<string, number>();
  for (const position of state.positions.values()) {
    if (position.orders.entryId) booked.set(position.orders.entryId, position.entryFilling ? position.qty : Number.POSITIVE_INFINITY);
    for (const [orderId, exit] of Object.entries(position.exitFills)) booked.set(orderId, exit.qty);
  }
  return booked;
}

function fillsByOrder(fills: BrokerFill[]): Map<string, { qty: number; notional: number }> {
  const byOrder = new Map<string, { qty: number; notional: number }>();
  for (const fill of fills) {
    const sum = byOrder.get(fill.orderId) ?? { qty: 0, notional: 0 };
    byOrder.set(fill.orderId, { qty: sum.qty + fill.qty, notional: sum.notional + fill.qty * fill.price });
  }
  return byOrder;
}

function changed(position: OpenPosition, broker: BrokerPosition | undefined): boolean {
  return !broker || broker.side !== position.side || Math.abs(broker.qty) !== position.qty;
}

/** Orders by client_order_id (parent first, then nested for its legs); those the broker does not have are left out. */
async function lookUp(broker: Broker, clientOrderIds: string[]): Promise<BrokerOrder[]> {
  const found: BrokerOrder[] = [];
  for (const clientOrderId of clientOrderIds) {
    const order = await broker.orderByClientOrderId(clientOrderId);
    if (order) found.push(order);
  }
  return found;
}

function dedupe(orders: BrokerOrder[]): BrokerOrder[] {
  return [...new Map(orders.map((order) => [order.id, order])).values()];
}
