import { describe, expect, it } from "vitest";
import { BrokerReadError } from "../src/broker/errors.js";
import { readFullView, readLiveView } from "../src/session/broker-view.js";
import { reconcile } from "../src/session/reconcile.js";
import { entryClientOrderId } from "../src/session/client-order-ids.js";
import { TradingState, type OpenPosition, type PendingEntry } from "../src/session/state.js";
import { bracketOrder, brokerOrder, brokerPosition, openPosition, ScriptedBroker, SUBMITTED_AT } from "./scripted-broker.js";

const SESSION = "trader-1";
const MINUTE = 60_000;

const newState = (brokerSessionStartedAt = SUBMITTED_AT) =>
  new TradingState({
    sessionStartedAt: brokerSessionStartedAt.toISOString(),
    brokerSessionStartedAt: brokerSessionStartedAt.toISOString(),
    symbols: ["AAPL", "MSFT"],
    strategy: { kind: "rule", stopLossPct: 10, takeProfitPct: 10, positionSize: 1_000, lookbackBars: 5, entryThresholdPct: 0 },
  });

const pending = (symbol: string, orderId: string | null): PendingEntry => ({
  symbol,
  side: "long",
  qty: 10,
  tradeNo: 1,
  clientOrderId: entryClientOrderId(SESSION, symbol, 1),
  orderId,
  takeProfit: 110,
  stopLoss: 90,
  submittedAt: SUBMITTED_AT.toISOString(),
  confirmed: orderId !== null,
});

/** A position whose entry order is `entryId`, its legs not yet known. */
const holding = (symbol: string, entryId: string, openedAt: Date | null = SUBMITTED_AT): OpenPosition =>
  openPosition(symbol, {
    openedAt: openedAt?.toISOString() ?? null,
    orders: { entryId, entryClientOrderId: entryClientOrderId(SESSION, symbol, 1), takeProfitId: null, stopLossId: null },
  });

/** Records the arguments of the listing calls, which the call log alone does not show. */
function listingsOf(broker: ScriptedBroker): { after: Date; symbols?: string[] }[] {
  const listings: { after: Date; symbols?: string[] }[] = [];
  const list = broker.ordersSince.bind(broker);
  broker.ordersSince = (after, symbols) => {
    listings.push(symbols ? { after, symbols } : { after });
    return list(after, symbols);
  };
  return listings;
}

describe("the full view (on resume)", () => {
  it("lists every order since a minute before the session began and every open order, then reads positions and the account", async () => {
    const broker = new ScriptedBroker();
    const listings = listingsOf(broker);
    const order = bracketOrder({ clientOrderId: entryClientOrderId(SESSION, "AAPL", 1), symbol: "AAPL" });
    broker.orders.push(order, brokerOrder({ clientOrderId: "long-ago", symbol: "MSFT", status: "filled", submittedAt: new Date(SUBMITTED_AT.getTime() - 2 * MINUTE) }));
    broker.heldPositions.set("MSFT", brokerPosition("MSFT", 3, 400));

    const view = await readFullView(broker, newState());
    expect(broker.calls).toEqual(["ordersSince", "openOrders", "positions", "account"]);
    expect(listings).toEqual([{ after: new Date(SUBMITTED_AT.getTime() - MINUTE) }]);
    expect(view).toMatchObject({ complete: true, orders: [order], positions: [brokerPosition("MSFT", 3, 400)], account: { id: "account-1" } });
    expect(view.examined.size).toBe(0);
  });

  it("looks up by client_order_id the entries the listing missed, leaving out those the broker does not have", async () => {
    const state = newState(new Date(SUBMITTED_AT.getTime() + 30 * MINUTE));
    state.pendingEntries.set("MSFT", pending("MSFT", null));
    state.open(holding("AAPL", "entry-a"));
    const broker = new ScriptedBroker();
    const aapl = bracketOrder({ id: "entry-a", clientOrderId: entryClientOrderId(SESSION, "AAPL", 1), symbol: "AAPL", filledAt: 100 });
    broker.orders.push(aapl);

    const view = await readFullView(broker, state);
    // The open orders are listed beside the session's own listing, both before positions.
    expect(broker.calls).toEqual(["ordersSince", "openOrders", "orderByClientOrderId", "orderByClientOrderId", "positions", "account"]);
    expect(view.orders).toEqual([aapl]);
  });

  it("reuses the open orders the start has just listed, the session's own listing winning for an order both show", async () => {
    const broker = new ScriptedBroker();
    const entry = bracketOrder({ id: "entry-a", clientOrderId: entryClientOrderId(SESSION, "AAPL", 1), symbol: "AAPL" });
    broker.orders.push(entry);
    const stillOpen = await broker.openOrders();
    // Filled since that listing: the session's listing, read after it, shows it so.
    Object.assign(entry, { status: "filled", filledQty: entry.qty, filledAvgPrice: 100 });
    broker.calls.length = 0;

    const view = await readFullView(broker, newState(), stillOpen);
    expect(broker.calls).not.toContain("openOrders");
    expect(view.orders.map((order) => [order.id, order.status])).toEqual([["entry-a", "filled"]]);
  });

  it("holds the orders still working from before the listing's start: another session's bracket whose legs protect a position", async () => {
    const broker = new ScriptedBroker();
    const hoursAgo = new Date(SUBMITTED_AT.getTime() - 180 * MINUTE);
    const bracket = bracketOrder({ clientOrderId: "trader-old:NVDA:1", symbol: "NVDA", filledAt: 180, filledTime: hoursAgo });
    bracket.submittedAt = hoursAgo;
    broker.orders.push(bracket, brokerOrder({ clientOrderId: "trader-old:AMD:1", symbol: "AMD", status: "canceled", submittedAt: hoursAgo }));
    broker.heldPositions.set("NVDA", brokerPosition("NVDA", 10, 180));

    const view = await readFullView(broker, newState());
    expect(view.orders).toEqual([bracket]);
  });

  it("does not look up what the listing showed, and lists each order once", async () => {
    const state = newState();
    state.pendingEntries.set("AAPL", pending("AAPL", "entry-a"));
    const broker = new ScriptedBroker();
    broker.orders.push(bracketOrder({ id: "entry-a", clientOrderId: entryClientOrderId(SESSION, "AAPL", 1), symbol: "AAPL" }));

    const view = await readFullView(broker, state);
    expect(broker.calls).not.toContain("orderByClientOrderId");
    expect(view.orders.map((order) => order.id)).toEqual(["entry-a"]);
  });

  it("fails as a whole when any read fails", async () => {
    const positions = new ScriptedBroker().failNext("positions", new BrokerReadError("GET /v2/positions", "HTTP 503"));
    await expect(readFullView(positions, newState())).rejects.toThrow("GET /v2/positions failed: HTTP 503");
    const account = new ScriptedBroker().failNext("account", new BrokerReadError("GET /v2/account", "HTTP 503"));
    await expect(readFullView(account, newState())).rejects.toThrow("GET /v2/account failed: HTTP 503");
  });
});

describe("the live view (every tick)", () => {
  it("reads only the account and positions when nothing is pending and every position is as the session holds it", async () => {
    const state = newState();
    state.open(holding("AAPL", "entry-a"));
    const broker = new ScriptedBroker();
    broker.heldPositions.set("AAPL", brokerPosition("AAPL", 10, 100));

    const view = await readLiveView(broker, state);
    expect(broker.calls).toEqual(["account", "positions"]);
    expect(view).toMatchObject({ complete: false, orders: [] });
    expect(view.examined.size).toBe(0);
  });

  it("reads pending entries by order id, or by client_order_id when the placement got no answer, then positions again", async () => {
    const state = newState();
    state.pendingEntries.set("AAPL", pending("AAPL", "entry-a"));
    state.pendingEntries.set("MSFT", pending("MSFT", null));
    const broker = new ScriptedBroker();
    const aapl = bracketOrder({ id: "entry-a", clientOrderId: entryClientOrderId(SESSION, "AAPL", 1), symbol: "AAPL" });
    const msft = bracketOrder({ id: "entry-m", clientOrderId: entryClientOrderId(SESSION, "MSFT", 1), symbol: "MSFT" });
    broker.orders.push(aapl, msft);

    const view = await readLiveView(broker, state);
    expect(broker.calls).toEqual(["account", "positions", "order", "orderByClientOrderId", "positions"]);
    expect(view.orders).toEqual([aapl, msft]);
    expect(view.examined.size).toBe(0);
  });

  it.each([
    { name: "gone at the broker", broker: null },
    { name: "of another quantity at the broker", broker: brokerPosition("AAPL", 15, 100) },
    { name: "of the other side at the broker", broker: brokerPosition("AAPL", -10, 100) },
  ])("examines a position $name: its entry and every order of its symbol since it opened", async ({ broker: held }) => {
    const state = newState();
    state.open(holding("AAPL", "entry-a", new Date(SUBMITTED_AT.getTime() + 5 * MINUTE)));
    const broker = new ScriptedBroker();
    const listings = listingsOf(broker);
    broker.orders.push(bracketOrder({ id: "entry-a", clientOrderId: entryClientOrderId(SESSION, "AAPL", 1), symbol: "AAPL", filledAt: 100 }));
    if (held) broker.heldPositions.set("AAPL", held);

    const view = await readLiveView(broker, state);
    expect(broker.calls).toEqual(["account", "positions", "order", "ordersSince", "positions"]);
    expect(listings).toEqual([{ after: new Date(SUBMITTED_AT.getTime() + 4 * MINUTE), symbols: ["AAPL"] }]);
    expect([...view.examined]).toEqual(["AAPL"]);
    expect(view.orders.map((order) => order.id)).toEqual(["entry-a"]);
  });

  it("lists from the session's start for a position whose opening time is unknown", async () => {
    const state = newState();
    state.open(holding("AAPL", "entry-a", null));
    const broker = new ScriptedBroker();
    const listings = listingsOf(broker);
    broker.orders.push(bracketOrder({ id: "entry-a", clientOrderId: entryClientOrderId(SESSION, "AAPL", 1), symbol: "AAPL", filledAt: 100 }));

    await readLiveView(broker, state);
    expect(listings).toEqual([{ after: new Date(SUBMITTED_AT.getTime() - MINUTE), symbols: ["AAPL"] }]);
  });

  it("lists the orders of a position the session does not know (one a taken-over session's late order opened), so its adoption finds that bracket's legs", async () => {
    const state = newState();
    const broker = new ScriptedBroker();
    const listings = listingsOf(broker);
    const late = bracketOrder({ clientOrderId: "trader-0:MSFT:1", symbol: "MSFT", filledAt: 400, qty: 3 });
    broker.orders.push(late);
    broker.heldPositions.set("MSFT", brokerPosition("MSFT", 3, 400));

    const view = await readLiveView(broker, state);
    // Its entry's fill is not booked by this session, so the fills are read to price it.
    expect(broker.calls).toEqual(["account", "positions", "ordersSince", "fillsSince", "positions"]);
    expect(listings).toEqual([{ after: new Date(SUBMITTED_AT.getTime() - MINUTE), symbols: ["MSFT"] }]);
    expect([...view.examined]).toEqual(["MSFT"]);
    expect(view.orders).toEqual([late]);
  });
});

describe("exact fill prices (FILL activities)", () => {
  const ENTRY = entryClientOrderId(SESSION, "AAPL", 1);

  /**
   * Long 300 AAPL entered in three fills of 100 at 10.01, 10.01 and 10.02 (exactly 10.013333…), its order's
   * filled_avg_price rounded to 10.0133 as a broker may send it; the take-profit leg `tp-1` then filled whole at
   * 10.05. The broker's fills realised 3015.00 - 3004.00 = 11.00; the rounded entry price makes it 11.01.
   */
  function closedByTakeProfit(recordFills: boolean) {
    const state = newState();
    state.open(openPosition("AAPL", { qty: 300, entryPrice: 10.0133 }));
    const broker = new ScriptedBroker();
    const entry = bracketOrder({ id: "entry-1", clientOrderId: ENTRY, symbol: "AAPL", qty: 300, filledAt: 10.0133, takeProfitLeg: { id: "tp-1", filledAt: 10.05 }, stopLossLeg: { id: "sl-1", status: "canceled" } });
    broker.orders.push(entry);
    if (recordFills) {
      const at = (minutes: number) => new Date(SUBMITTED_AT.getTime() + minutes * MINUTE);
      const fill = (id: string, orderId: string, side: "buy" | "sell", qty: number, price: number, time: Date) => ({ id, orderId, symbol: "AAPL", side, qty, price, time });
      broker.fills.push(
        fill("f1", "entry-1", "buy", 100, 10.01, at(0)),
        fill("f2", "entry-1", "buy", 100, 10.01, at(0)),
        fill("f3", "entry-1", "buy", 100, 10.02, at(1)),
        fill("f4", "MSFT-order", "buy", 5, 400, at(2)),
        fill("f5", "tp-1", "sell", 300, 10.05, at(3)),
      );
    }
    return { state, broker };
  }

  it("prices the trade's orders from their fills once a leg has filled beyond what is booked: the P&L is the fills' cent", async () => {
    const { state, broker } = closedByTakeProfit(true);
    const fillReads: Date[] = [];
    const fillsSince = broker.fillsSince.bind(broker);
    broker.fillsSince = (after) => (fillReads.push(after), fillsSince(after));

    const view = await readLiveView(broker, state);
    expect(broker.calls).toEqual(["account", "positions", "order", "ordersSince", "fillsSince", "positions"]);
    // From a minute before the earliest of the symbol's filled orders was submitted.
    expect(fillReads).toEqual([new Date(SUBMITTED_AT.getTime() - MINUTE)]);
    const [entry] = view.orders;
    expect(entry!.filledAvgPrice).toBe(3004 / 300);
    expect(entry!.legs.map((leg) => [leg.id, leg.filledAvgPrice])).toEqual([["tp-1", 10.05], ["sl-1", null]]);

    reconcile(state, view, SESSION);
    expect(state.realizedPl).toBe(11);
  });

  it("keeps filled_avg_price for an order whose fills do not add up to its filled quantity (and so books the broker's rounded price)", async () => {
    const { state, broker } = closedByTakeProfit(true);
    // The activities do not show the entry's last fill yet.
    broker.fills.splice(2, 1);

    const view = await readLiveView(broker, state);
    expect(view.orders[0]!.filledAvgPrice).toBe(10.0133);
    reconcile(state, view, SESSION);
    expect(state.realizedPl).toBe(11.01);
  });

  it("reads no fills when every filled order in the view is booked: an entry still filling, read each tick, that has not filled further", async () => {
    const state = newState();
    state.open(openPosition("AAPL", { qty: 4, entryFilling: true }));
    const broker = new ScriptedBroker();
    broker.orders.push(bracketOrder({ id: "entry-1", clientOrderId: ENTRY, symbol: "AAPL", filledAt: 100, filledQty: 4 }));
    broker.heldPositions.set("AAPL", brokerPosition("AAPL", 4, 100));

    await readLiveView(broker, state);
    expect(broker.calls).toEqual(["account", "positions", "order", "positions"]);
  });

  it("reads the fills, then positions and account, on resume when an order filled beyond what the checkpoint booked", async () => {
    const { state, broker } = closedByTakeProfit(true);

    const view = await readFullView(broker, state);
    expect(broker.calls).toEqual(["ordersSince", "openOrders", "fillsSince", "positions", "account"]);
    expect(view.orders[0]!.filledAvgPrice).toBe(3004 / 300);
  });

  it("reads no fills on resume when no order has filled", async () => {
    const state = newState();
    const broker = new ScriptedBroker();
    broker.orders.push(bracketOrder({ id: "entry-1", clientOrderId: ENTRY, symbol: "AAPL" }));

    await readFullView(broker, state);
    expect(broker.calls).toEqual(["ordersSince", "openOrders", "positions", "account"]);
  });
});
