import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AlpacaBroker } from "../src/broker/alpaca-broker.js";
import { BrokerReadError } from "../src/broker/errors.js";
import { readFullView, readLiveView } from "../src/session/broker-view.js";
import { closeClientOrderId, entryClientOrderId } from "../src/session/client-order-ids.js";
import { pendingFrom, reconcile } from "../src/session/reconcile.js";
import { TradingState } from "../src/session/state.js";
import type { RunningSimulator } from "@savepoint/alpaca-simulator";
import { sdk } from "@savepoint/alpaca-simulator/testing";
import { advanceUntil, orderIn, START, startTestSimulator, TEST_REQUESTS_PER_MINUTE } from "./support.js";
import { createLogger } from "@savepoint/shared";
import { cancelOtherSessionsEntries } from "../src/trader.js";

const SESSION = "trader-20260105-153000-abcdef";
const cents = (value: number) => Math.round(value * 100) / 100;

/**
 * Reconciliation on what the simulator answers through the SDK: the books agree with the broker's own
 * accounting, fill times are the broker's, orders the listing misses are looked up, and a failed read fails
 * closed. Every case of the reconciliation logic itself is a row of reconcile.unit.test.ts.
 */
describe("reconciliation with the broker", () => {
  let sim: RunningSimulator;
  let broker: AlpacaBroker;

  beforeEach(async () => {
    sim = await startTestSimulator();
    broker = new AlpacaBroker({ tradingUrl: sim.url, dataUrl: sim.url, keyId: "k", secret: "s", simulated: true, timeoutMs: 5_000, readRetries: 0, requestsPerMinute: TEST_REQUESTS_PER_MINUTE.trader });
  });
  afterEach(async () => {
    await sim?.close();
  });

  const newState = (brokerSessionStartedAt = START) =>
    new TradingState({
      sessionStartedAt: new Date().toISOString(),
      brokerSessionStartedAt: brokerSessionStartedAt.toISOString(),
      symbols: ["AAPL", "MSFT"],
      strategy: { kind: "rule", stopLossPct: 5, takeProfitPct: 5, positionSize: 2_000, lookbackBars: 5, entryThresholdPct: 0 },
    });

  /**
   * Places the session's next bracket entry for `symbol` the way the trading loop does, records it as pending,
   * and moves the simulated clock until the broker has filled it whole (answered pending_new, it fills later).
   */
  async function placeEntry(state: TradingState, symbol: string) {
    const price = sim.control.price(symbol);
    const tradeNo = state.nextTradeNo(symbol);
    const clientOrderId = entryClientOrderId(SESSION, symbol, tradeNo);
    const order = await broker.submitBracket({ clientOrderId, symbol, side: "buy", qty: 10, takeProfit: cents(price * 1.05), stopLoss: cents(price * 0.95) });
    expect(order.status).toBe("pending_new");
    state.pendingEntries.set(symbol, pendingFrom(order, symbol, tradeNo, new Date()));
    state.markTradeNoUsed(symbol, tradeNo);
    advanceUntil(sim, `entry ${clientOrderId} filled`, () => orderIn(sim, order.id, "filled"));
    return order;
  }

  /** One sync of the trading loop. */
  const sync = async (state: TradingState) => reconcile(state, await readLiveView(broker, state), SESSION);
  /** Reconciliation on resume. */
  const resume = async (state: TradingState) => reconcile(state, await readFullView(broker, state), SESSION);

  it("records a position closed at the broker while down from its take-profit fill, with the broker's P&L", async () => {
    const state = newState();
    const entry = await placeEntry(state, "AAPL");
    await sync(state);
    const checkpoint = state.clone();
    const position = checkpoint.positions.get("AAPL")!;
    expect(position).toMatchObject({ qty: 10, orders: { entryId: entry.id } });

    // Trades through the take-profit until it has filled whole (a fill may come in parts).
    const takeProfitId = position.orders.takeProfitId!;
    while (!orderIn(sim, takeProfitId, "filled")) sim.control.setPrice("AAPL", position.takeProfit! + 0.4);
    const changes = await resume(checkpoint);
    const exit = sim.control.state().fills.at(-1)!;
    expect(changes).toEqual([
      {
        kind: "position_closed",
        openedUnseen: false,
        trade: { symbol: "AAPL", side: "long", qty: 10, entryPrice: position.entryPrice, exitPrice: Number(exit.price), realizedPl: sim.control.state().realizedPl, via: "take_profit", tradeNo: 1 },
      },
    ]);
    expect(checkpoint.positions.size).toBe(0);
    expect([checkpoint.closedTrades, checkpoint.realizedPl]).toEqual([1, sim.control.state().realizedPl]);
  });

  it("books a close made outside the session from that order's fill", async () => {
    const state = newState();
    const entry = await placeEntry(state, "AAPL");
    await sync(state);
    const checkpoint = state.clone();
    const legs = (await broker.order(entry.id)).legs;
    await broker.cancelOrder(legs[0]!.id);
    // The cancel is accepted, not done: until it completes the legs hold the shares, and a sell is refused.
    await expect(broker.submitMarket({ clientOrderId: "too-early", symbol: "AAPL", side: "sell", qty: 10 })).rejects.toMatchObject({ refusal: "held_for_orders", status: 403 });
    advanceUntil(sim, "the legs canceled", () => orderIn(sim, legs[1]!.id, "canceled"));
    sim.control.setPrice("AAPL", sim.control.price("AAPL") - 1.5);
    const close = await broker.submitMarket({ clientOrderId: "closed-by-hand", symbol: "AAPL", side: "sell", qty: 10 });
    advanceUntil(sim, "the close filled", () => orderIn(sim, close.id, "filled"));

    const [closed, ...rest] = await resume(checkpoint);
    expect(rest).toEqual([]);
    const exitFills = sim.control.state().fills.filter((fill) => fill.order_id === close.id);
    const exitPrice = exitFills.reduce((sum, fill) => sum + Number(fill.qty) * Number(fill.price), 0) / 10;
    expect(closed).toMatchObject({ kind: "position_closed", trade: { via: "other_order", qty: 10, exitPrice: cents(exitPrice), realizedPl: sim.control.state().realizedPl } });
    expect(sim.control.state().realizedPl).toBeLessThan(0);
  });

  it("re-attaches open bracket legs by client_order_id, the parent first and then its nested legs", async () => {
    const state = newState(new Date(START.getTime() + 10 * 60_000));
    const entry = await placeEntry(state, "AAPL");
    await sync(state);
    const before = (await broker.order(entry.id)).legs;
    const replacement = await sdk(sim.url).orders.patchOrderByOrderId({ orderId: before[1]!.id, patchOrderRequest: { stopPrice: String(cents(Number(before[1]!.stopPrice) + 1)) } });
    // The replace is accepted, not done: the replacement takes the leg's place once the broker completes it.
    advanceUntil(sim, "the replace completed", () => orderIn(sim, before[1]!.id, "replaced"));
    const lookupsBefore = sim.control.requests({ path: "/v2/orders" }).length;

    // As a start reads the broker: the open orders listed (to cancel other sessions' entries; none here), then the full view reusing that listing.
    const { changes: canceled, stillOpen } = await cancelOtherSessionsEntries(broker, SESSION, createLogger({ service: "trader", level: "silent" }));
    expect(canceled).toEqual([]);
    const changes = reconcile(state, await readFullView(broker, state, stillOpen), SESSION);
    expect(changes).toEqual([{ kind: "legs_attached", symbol: "AAPL", takeProfitId: before[0]!.id, stopLossId: replacement.id }]);
    expect(state.positions.get("AAPL")).toMatchObject({ stopLoss: Number(replacement.stopPrice), orders: { stopLossId: replacement.id } });
    // The orders still working are listed once, whenever placed (another session's bracket an adopted position
    // keeps); the session began after this order (per its broker clock), so its own listing missed it and it was looked up.
    const lookups = sim.control
      .requests({ path: "/v2/orders" })
      .slice(lookupsBefore)
      .map((request) => `${request.method} ${request.path}${request.path === "/v2/orders" ? `?status=${new URLSearchParams(request.query).get("status")}` : ""}`);
    expect(lookups).toEqual(["GET /v2/orders?status=open", "GET /v2/orders?status=all", "GET /v2/orders:by_client_order_id", `GET /v2/orders/${entry.id}`]);
  });

  it("exits through the take-profit leg replaced at a marketable price while the legs hold the shares, booked as the session's exit", async () => {
    const state = newState();
    const entry = await placeEntry(state, "AAPL");
    await sync(state);
    const position = state.positions.get("AAPL")!;
    // A sell beside the working legs is refused: they hold every share.
    await expect(broker.submitMarket({ clientOrderId: "sell-beside", symbol: "AAPL", side: "sell", qty: 10 })).rejects.toMatchObject({ refusal: "held_for_orders" });
    const clientOrderId = closeClientOrderId(SESSION, "AAPL", 1);
    const replacement = await broker.replaceOrder(position.orders.takeProfitId!, { clientOrderId, limitPrice: cents(sim.control.price("AAPL") * 0.975) });
    expect(replacement.status).toBe("pending_new");
    Object.assign(position, { exit: { clientOrderId, orderId: replacement.id, method: "replace_take_profit", requestedAt: new Date().toISOString() }, closeAttempts: 1 });
    // Until the replace completes the old leg works on, pending_replace; the stop-loss works throughout.
    expect((await broker.order(entry.id)).legs.map((leg) => leg.status)).toEqual(["pending_replace", "held"]);

    advanceUntil(sim, "the exit filled", () => orderIn(sim, replacement.id, "filled"));
    const changes = await sync(state);
    expect(changes).toEqual([{ kind: "position_closed", openedUnseen: false, trade: expect.objectContaining({ via: "close_order", qty: 10, realizedPl: sim.control.state().realizedPl }) }]);
    expect(orderIn(sim, position.orders.stopLossId!, "canceled")).toBeDefined();
  });

  it("reads the broker's fills page by page (100 a page, page_token the last id) with each fill's own price", async () => {
    const client = sdk(sim.url);
    for (let index = 0; index < 105; index++) await client.orders.market({ symbol: index % 2 ? "AAPL" : "MSFT", qty: 1 + (index % 3), side: "buy" });
    advanceUntil(sim, "every order filled", () => (sim.control.state().orders.every((order) => order.status === "filled") ? true : undefined));
    const atBroker = sim.control.state().fills;
    expect(atBroker.length).toBeGreaterThan(100);

    const fills = await broker.fillsSince(new Date(START.getTime() - 60_000));
    expect(fills.map((fill) => [fill.id, fill.orderId, fill.symbol, fill.side, fill.qty, fill.price])).toEqual(
      atBroker.map((fill) => [fill.id, fill.order_id, fill.symbol, fill.side, Number(fill.qty), Number(fill.price)]),
    );
    const pages = sim.control.requests({ method: "GET", path: "/v2/account/activities/FILL" });
    expect(pages.map((page) => new URLSearchParams(page.query).get("page_token"))).toEqual([null, atBroker[99]!.id]);
    expect(new URLSearchParams(pages[0]!.query).get("page_size")).toBe("100");
  });

  it("fails closed on a failed positions read, leaving the session untouched", async () => {
    const state = newState();
    await placeEntry(state, "AAPL");
    await sync(state);
    const before = state.toSnapshot(new Date(0));
    sim.control.injectFault({ kind: "error", count: 3, status: 503, path: "/v2/positions" });

    const failure = await resume(state).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(BrokerReadError);
    expect((failure as Error).message).toBe("GET /v2/positions failed: HTTP 503 (code 50300000): simulated failure: HTTP 503 injected by a simulator fault");
    expect(state.toSnapshot(new Date(0))).toEqual(before);
  });

});
