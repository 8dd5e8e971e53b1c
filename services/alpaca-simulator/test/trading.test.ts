import { AuthError, NotFoundError, PermissionError, ValidationError } from "@alpacahq/alpaca-trade-api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../src/server.js";
import { failureOf, sdk, startTestSimulator, type Sdk } from "./support.js";

const cents = (value: number) => Math.round(value * 100) / 100;

// The books (positions, cash, legs, reservations) with the instantOrders shortcut, so each fill is where the
// test puts it; lifecycle.test.ts shows the same orders moving through Alpaca's asynchronous lifecycle.
describe("simulator trading API through the official SDK, with the instantOrders shortcut", () => {
  let sim: RunningSimulator;
  let api: Sdk;

  beforeEach(async () => {
    sim = await startTestSimulator({ instantOrders: true });
    api = sdk(sim.url);
  });
  afterEach(async () => {
    await sim?.close();
  });

  /** A market bracket buy of `qty` AAPL with exits 5% either side of the current price. */
  async function placeBracket(clientOrderId: string, qty = 10) {
    const price = sim.control.price("AAPL");
    const takeProfit = cents(price * 1.05);
    const stopLoss = cents(price * 0.95);
    const placed = await api.orders.bracket({ symbol: "AAPL", qty, side: "buy", takeProfit: { limitPrice: takeProfit }, stopLoss: { stopPrice: stopLoss }, clientOrderId });
    return { placed, price, takeProfit, stopLoss };
  }

  async function nested(orderId: string) {
    const order = await api.orders.getOrderByOrderID({ orderId, nested: true });
    const [takeProfit, stopLoss] = order.legs ?? [];
    return { order, takeProfit: takeProfit!, stopLoss: stopLoss! };
  }

  it("reports a fresh account with Alpaca's string-encoded figures", async () => {
    const account = await api.account.getAccount();
    expect(account).toMatchObject({
      status: "ACTIVE",
      currency: "USD",
      cash: "100000",
      equity: "100000",
      portfolioValue: "100000",
      lastEquity: "100000",
      buyingPower: "200000",
      multiplier: "2",
      longMarketValue: "0",
      shortMarketValue: "0",
    });
    expect(account.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("refuses a client without the APCA key headers with 401 in Alpaca's error shape", async () => {
    const error = await failureOf(sdk(sim.url, { anonymous: true }).account.getAccount());
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ status: 401, code: 40110000 });
    expect(error.message).toContain("APCA-API-KEY-ID");
  });

  it("answers a bracket placement with the accepted entry and both legs held", async () => {
    const { placed, takeProfit, stopLoss } = await placeBracket("bracket-1");
    expect(placed).toMatchObject({ clientOrderId: "bracket-1", symbol: "AAPL", side: "buy", type: "market", orderClass: "bracket", status: "accepted", qty: "10", filledQty: "0" });
    expect(placed.legs).toHaveLength(2);
    expect(placed.legs![0]).toMatchObject({ side: "sell", type: "limit", limitPrice: String(takeProfit), status: "held", qty: "10", orderClass: "bracket" });
    expect(placed.legs![1]).toMatchObject({ side: "sell", type: "stop", stopPrice: String(stopLoss), status: "held", qty: "10", orderClass: "bracket" });
  });

  it("fills the bracket's entry at once, then works the take-profit and holds the stop-loss out of the open list", async () => {
    const { placed, price } = await placeBracket("bracket-2");
    const { order, takeProfit, stopLoss } = await nested(placed.id!);
    expect(order).toMatchObject({ status: "filled", filledQty: "10", filledAvgPrice: String(price) });
    expect(takeProfit.status).toBe("new");
    expect(stopLoss.status).toBe("held");

    const open = await api.orders.getAllOrders({ status: "open" });
    expect(open.map((listed) => listed.id)).toEqual([takeProfit.id]);
    expect(open[0]!.legs).toBeUndefined();
    const openNested = await api.orders.getAllOrders({ status: "open", nested: true });
    expect(openNested.map((listed) => [listed.id, listed.legs?.map((leg) => leg.id)])).toEqual([[order.id, [takeProfit.id, stopLoss.id]]]);
  });

  it("moves positions and cash with fills, long and short", async () => {
    const { price } = await placeBracket("bracket-3");
    const msftPrice = sim.control.price("MSFT");
    await api.orders.market({ symbol: "MSFT", qty: 4, side: "sell", clientOrderId: "short-1" });

    const positions = await api.positions.getAllOpenPositions();
    expect(positions.map((position) => [position.symbol, position.qty, position.side, position.avgEntryPrice])).toEqual([
      ["AAPL", "10", "long", String(price)],
      ["MSFT", "-4", "short", String(msftPrice)],
    ]);
    expect((await api.positions.getOpenPosition({ symbolOrAssetId: "AAPL" })).qtyAvailable).toBe("0");

    const account = await api.account.getAccount();
    expect(Number(account.cash)).toBeCloseTo(100_000 - 10 * price + 4 * msftPrice, 6);
    expect(Number(account.longMarketValue)).toBeCloseTo(10 * price, 6);
    expect(Number(account.shortMarketValue)).toBeCloseTo(-4 * msftPrice, 6);
    expect(Number(account.portfolioValue)).toBeCloseTo(100_000, 6);
  });

  it("fills the take-profit when the price reaches it, cancels the stop-loss and realises the profit", async () => {
    const { placed, price, takeProfit } = await placeBracket("bracket-4");
    sim.control.setPrice("AAPL", takeProfit + 0.5);

    const { takeProfit: exit, stopLoss } = await nested(placed.id!);
    expect(exit).toMatchObject({ status: "filled", filledQty: "10", filledAvgPrice: String(takeProfit + 0.5) });
    expect(stopLoss.status).toBe("canceled");
    expect(await failureOf(api.positions.getOpenPosition({ symbolOrAssetId: "AAPL" }))).toBeInstanceOf(NotFoundError);

    const profit = cents(10 * (takeProfit + 0.5 - price));
    expect(Number((await api.account.getAccount()).cash)).toBeCloseTo(100_000 + profit, 6);
    // SDK 4.0.2 parses every activity as a non-trade activity and drops side, price and order_id, so fills are
    // read from the raw response.
    const response = await api.activities.getAccountActivitiesByActivityTypeRaw({ activityType: "FILL", direction: "asc" });
    const fills = (await response.raw.json()) as Array<Record<string, string>>;
    expect(fills.map((fill) => [fill.side, fill.qty, fill.price, fill.order_status])).toEqual([
      ["buy", "10", String(price), "filled"],
      ["sell", "10", String(takeProfit + 0.5), "filled"],
    ]);
    expect(sim.control.state().realizedPl).toBeCloseTo(profit, 6);
  });

  it("pages FILL activities as Alpaca does: after, direction, page_size up to 100, page_token the last id of a page", async () => {
    const orderIds: string[] = [];
    for (let index = 0; index < 5; index++) {
      orderIds.push((await api.orders.market({ symbol: "MSFT", qty: index + 1, side: "buy" })).id!);
      sim.control.advance(1);
    }
    /** A page through the SDK, read raw: SDK 4.0.2 parses every activity as a non-trade one (price, order_id dropped). */
    const page = async (query: Omit<Parameters<Sdk["activities"]["getAccountActivitiesByActivityTypeRaw"]>[0], "activityType">) =>
      (await (await api.activities.getAccountActivitiesByActivityTypeRaw({ activityType: "FILL", ...query })).raw.json()) as Array<Record<string, string>>;

    const all = await page({ direction: "asc" });
    expect(all.map((fill) => fill.order_id)).toEqual(orderIds);
    expect(all.map((fill) => fill.qty)).toEqual(["1", "2", "3", "4", "5"]);
    const first = await page({ direction: "asc", pageSize: 2 });
    const second = await page({ direction: "asc", pageSize: 2, pageToken: first.at(-1)!.id });
    const third = await page({ direction: "asc", pageSize: 2, pageToken: second.at(-1)!.id });
    expect([first, second, third].map((fills) => fills.map((fill) => fill.order_id))).toEqual([orderIds.slice(0, 2), orderIds.slice(2, 4), orderIds.slice(4)]);
    // Newest first by default; a token then ends the next page before it.
    const newest = await page({ pageSize: 2 });
    expect(newest.map((fill) => fill.order_id)).toEqual([orderIds[4], orderIds[3]]);
    expect((await page({ pageSize: 2, pageToken: newest.at(-1)!.id })).map((fill) => fill.order_id)).toEqual([orderIds[2], orderIds[1]]);
    // `after` is exclusive: a fill at that very time is left out.
    expect((await page({ direction: "asc", after: new Date(all[2]!.transaction_time!) })).map((fill) => fill.order_id)).toEqual(orderIds.slice(3));

    const refusals = await Promise.all([
      failureOf(page({ pageSize: 101 })),
      failureOf(page({ date: new Date(all[0]!.transaction_time!), after: new Date(0) })),
      failureOf(page({ pageToken: "20260105150000000::not-an-activity" })),
    ]);
    expect(refusals.map((error) => [error.constructor, (error as ValidationError).status])).toEqual([
      [ValidationError, 422],
      [ValidationError, 422],
      [ValidationError, 422],
    ]);
    expect(refusals.map((error) => error.message)).toEqual([
      expect.stringContaining("page_size: must be from 1 to 100 without date"),
      expect.stringContaining("date: cannot be used with after or until"),
      expect.stringContaining("page_token"),
    ]);
    // With `date` there is no maximum page size, and the whole day is the default.
    expect(await page({ date: new Date(all[0]!.transaction_time!), pageSize: 500 })).toHaveLength(5);
    // The per-type route takes no activity_types; an unsupported parameter is refused by name, never ignored.
    const unsupported = await fetch(`${sim.url}/v2/account/activities/FILL?activity_types=FILL`, { headers: { "APCA-API-KEY-ID": "sim-key", "APCA-API-SECRET-KEY": "sim-secret" } });
    expect(unsupported.status).toBe(422);
    expect(((await unsupported.json()) as { message: string }).message).toContain("activity_types: is not supported by the simulator");
  });

  it("triggers the stop-loss when a bar's price path crosses it and cancels the take-profit", async () => {
    const price = sim.control.price("AAPL");
    const placed = await api.orders.bracket({
      symbol: "AAPL",
      qty: 5,
      side: "buy",
      takeProfit: { limitPrice: cents(price * 1.5) },
      stopLoss: { stopPrice: cents(price - 0.05) },
      clientOrderId: "tight-stop",
    });
    let ticks = 0;
    while ((await nested(placed.id!)).stopLoss.status === "held" && ticks < 500) {
      sim.control.advance(1);
      ticks += 1;
    }
    const { takeProfit, stopLoss } = await nested(placed.id!);
    expect(stopLoss.status).toBe("filled");
    expect(Number(stopLoss.filledAvgPrice)).toBeLessThanOrEqual(cents(price - 0.05));
    expect(takeProfit.status).toBe("canceled");
    expect(await api.positions.getAllOpenPositions()).toEqual([]);
  });

  it("rests a limit bracket entry as new until a trade reaches its price, and cancels its legs with it", async () => {
    const price = sim.control.price("MSFT");
    const entry = cents(price - 2);
    const waiting = await api.orders.bracket({ symbol: "MSFT", qty: 1, side: "buy", limitPrice: entry, takeProfit: { limitPrice: cents(price + 5) }, stopLoss: { stopPrice: cents(price - 10) } });
    const resting = await api.orders.bracket({ symbol: "MSFT", qty: 2, side: "buy", limitPrice: cents(price - 20), takeProfit: { limitPrice: cents(price + 5) }, stopLoss: { stopPrice: cents(price - 30) } });
    expect((await nested(waiting.id!)).order.status).toBe("new");

    sim.control.setPrice("MSFT", entry - 0.25);
    const filled = await nested(waiting.id!);
    expect(filled.order).toMatchObject({ status: "filled", filledAvgPrice: String(cents(entry - 0.25)) });
    expect([filled.takeProfit.status, filled.stopLoss.status]).toEqual(["new", "held"]);

    await api.orders.deleteOrderByOrderID({ orderId: resting.id! });
    const canceled = await nested(resting.id!);
    expect([canceled.order.status, canceled.takeProfit.status, canceled.stopLoss.status]).toEqual(["canceled", "canceled", "canceled"]);
    const again = await failureOf(api.orders.deleteOrderByOrderID({ orderId: resting.id! }));
    expect(again).toMatchObject({ status: 422, message: 'order is already in "canceled" state' });
  });

  it("exits a short bracket through its stop-limit leg once the stop is reached and the limit allows", async () => {
    const price = sim.control.price("TSLA");
    const stop = cents(price * 1.05);
    const limit = cents(price * 1.06);
    const placed = await api.orders.bracket({ symbol: "TSLA", qty: 3, side: "sell", takeProfit: { limitPrice: cents(price * 0.9) }, stopLoss: { stopPrice: stop, limitPrice: limit } });
    expect((await api.positions.getOpenPosition({ symbolOrAssetId: "TSLA" })).qty).toBe("-3");

    sim.control.setPrice("TSLA", limit + 1);
    expect((await nested(placed.id!)).stopLoss.status).toBe("held");
    sim.control.setPrice("TSLA", limit - 0.5);
    const { takeProfit, stopLoss } = await nested(placed.id!);
    expect(stopLoss).toMatchObject({ type: "stop_limit", side: "buy", status: "filled", filledAvgPrice: String(cents(limit - 0.5)) });
    expect(takeProfit.status).toBe("canceled");
    expect(sim.control.state().realizedPl).toBeCloseTo(-3 * (cents(limit - 0.5) - price), 6);
  });

  it("looks an order up by client_order_id and answers 404 for an unknown one", async () => {
    const { placed } = await placeBracket("lookup-me");
    const found = await api.orders.getOrderByClientOrderId({ clientOrderId: "lookup-me" });
    expect(found).toMatchObject({ id: placed.id, clientOrderId: "lookup-me", status: "filled" });
    const missing = await failureOf(api.orders.getOrderByClientOrderId({ clientOrderId: "never-placed" }));
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({ status: 404, code: 40410000, message: "order not found" });
  });

  it("rejects a second order with the same client_order_id with 422 and places nothing", async () => {
    await placeBracket("only-once");
    const duplicate = await failureOf(placeBracket("only-once"));
    expect(duplicate).toBeInstanceOf(ValidationError);
    expect(duplicate).toMatchObject({ status: 422, code: 40010001, message: "client_order_id must be unique" });
    const all = await api.orders.getAllOrders({ status: "all", nested: true });
    expect(all.map((order) => order.clientOrderId)).toEqual(["only-once"]);
  });

  it("rejects an invalid order with 422 naming each offending field", async () => {
    const error = await failureOf(
      api.orders.postOrder({
        postOrderRequest: { symbol: "AAPL", qty: "1", side: "buy", type: "limit", timeInForce: "day", orderClass: "bracket", takeProfit: { limitPrice: "1" } },
      }),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toContain("limit_price: is required for limit orders");
    expect(error.message).toContain("stop_loss: is required for bracket orders");
  });

  it("refuses to close a position whose shares are promised to bracket legs until the legs are canceled", async () => {
    const { placed } = await placeBracket("protected");
    const refused = await failureOf(api.positions.deleteOpenPosition({ symbolOrAssetId: "AAPL" }));
    expect(refused).toBeInstanceOf(PermissionError);
    expect(refused.message).toBe("insufficient qty available for order (requested: 10, available: 0)");

    const { takeProfit, stopLoss } = await nested(placed.id!);
    await api.orders.deleteOrderByOrderID({ orderId: takeProfit.id! });
    const after = await nested(placed.id!);
    expect([after.takeProfit.status, after.stopLoss.status]).toEqual(["canceled", "canceled"]);
    expect(stopLoss.id).toBe(after.stopLoss.id);

    const closing = await api.positions.deleteOpenPosition({ symbolOrAssetId: "AAPL" });
    expect(closing).toMatchObject({ side: "sell", qty: "10", type: "market" });
    expect(await api.positions.getAllOpenPositions()).toEqual([]);
  });

  it("replaces a held stop-loss leg with a new order that takes its place in the bracket", async () => {
    const { placed, stopLoss } = await placeBracket("move-stop");
    const before = await nested(placed.id!);
    const replacement = await api.orders.patchOrderByOrderId({ orderId: before.stopLoss.id!, patchOrderRequest: { stopPrice: String(cents(stopLoss + 1)) } });
    expect(replacement).toMatchObject({ replaces: before.stopLoss.id, stopPrice: String(cents(stopLoss + 1)), status: "held" });
    expect((await api.orders.getOrderByOrderID({ orderId: before.stopLoss.id! })).status).toBe("replaced");
    expect((await nested(placed.id!)).stopLoss.id).toBe(replacement.id);
  });

  it("keeps orders accepted while the market is closed and fills them when it opens", async () => {
    sim.control.setMarketOpen(false);
    const placed = await api.orders.market({ symbol: "MSFT", qty: 2, side: "buy", clientOrderId: "after-hours" });
    sim.control.advance(3);
    expect((await api.orders.getOrderByOrderID({ orderId: placed.id! })).status).toBe("accepted");
    expect((await api.clock.legacyClock()).isOpen).toBe(false);

    sim.control.setMarketOpen(true);
    expect(await api.orders.getOrderByOrderID({ orderId: placed.id! })).toMatchObject({ status: "filled", filledAvgPrice: String(sim.control.price("MSFT")) });
  });

  it("reports the simulated time on the v2 and v3 clocks and moves it one minute per tick", async () => {
    const before = await api.clock.legacyClock();
    expect(before.timestamp.toISOString()).toBe("2026-01-05T15:00:00.000Z");
    expect(before).toMatchObject({ isOpen: true, nextClose: new Date("2026-01-05T21:00:00.000Z"), nextOpen: new Date("2026-01-06T14:30:00.000Z") });
    sim.control.advance(5);
    expect((await api.clock.legacyClock()).timestamp.toISOString()).toBe("2026-01-05T15:05:00.000Z");
    const [v3] = (await api.clock.clock()).clocks;
    expect(v3).toMatchObject({ phase: "core", timestamp: new Date("2026-01-05T15:05:00.000Z") });
  });

  it("describes a known asset and answers 404 in Alpaca's shape for an unknown one", async () => {
    const asset = await api.assets.getV2AssetsSymbolOrAssetId({ symbolOrAssetId: "AAPL" });
    expect(asset).toMatchObject({ symbol: "AAPL", status: "active", tradable: true, shortable: true, exchange: "NASDAQ" });
    expect((await api.assets.getV2AssetsSymbolOrAssetId({ symbolOrAssetId: asset.id })).symbol).toBe("AAPL");
    const unknown = await failureOf(api.assets.getV2AssetsSymbolOrAssetId({ symbolOrAssetId: "NOPE" }));
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect(unknown).toMatchObject({ status: 404, code: 40410000, message: "asset not found for NOPE" });
  });
});
