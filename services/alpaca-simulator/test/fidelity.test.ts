import * as alpaca from "@alpacahq/alpaca-trade-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../src/server.js";
import { sdk, startTestSimulator, type Sdk } from "./support.js";

type Json = Record<string, unknown>;
type Codec = { from: (json: unknown) => Json; to: (model: unknown) => Json; instanceOf?: (model: Json) => boolean };

/** The SDK's generated models, trading's and market data's. */
const models = { ...(alpaca.marketData as unknown as Record<string, unknown>), ...(alpaca.trading as unknown as Record<string, unknown>) };

/** The SDK's own generated model functions for `name` (OrderFromJSON, OrderToJSON, instanceOfOrder). */
function codec(name: string): Codec {
  const exports = models;
  const from = exports[`${name}FromJSON`];
  const to = exports[`${name}ToJSON`];
  if (typeof from !== "function" || typeof to !== "function") throw new Error(`the SDK exports no ${name}FromJSON/ToJSON`);
  const instanceOf = exports[`instanceOf${name}`];
  return { from: from as Codec["from"], to: to as Codec["to"], instanceOf: typeof instanceOf === "function" ? (instanceOf as Codec["instanceOf"]) : undefined };
}

/** The values of one of the SDK's enums (OrderStatus, OrderSide, …). */
const enumValues = (name: string) => new Set(Object.values(models[name] as Record<string, string>));

/** Fields whose values must be one of an SDK enum's, per model. */
const ENUM_FIELDS: Record<string, Record<string, string>> = {
  Order: { status: "OrderStatus", side: "OrderSide", type: "OrderType", time_in_force: "TimeInForce", order_class: "OrderClass", position_intent: "PositionIntent", asset_class: "AssetClass" },
  OrderLeg: { status: "OrderStatus", side: "OrderSide", type: "OrderType", time_in_force: "TimeInForce", order_class: "OrderClass", position_intent: "PositionIntent", asset_class: "AssetClass" },
};

/**
 * Fields Alpaca's published OpenAPI document has (alpacahq/alpaca-docs, oas/trading/openapi.yaml, Account) that the
 * SDK 4.x model lacks: real answers carry them, so they are not errors.
 */
const DOCUMENTED_BEYOND_THE_SDK: Record<string, ReadonlySet<string>> = {
  Account: new Set(["daytrading_buying_power", "daytrade_count", "pattern_day_trader"]),
};

/** Nested models to check inside a model's fields. */
const NESTED: Record<string, Record<string, string>> = {
  Order: { legs: "OrderLeg" },
  ClockResp: { clocks: "Clock" },
  PublicCalendarResp: { calendar: "CalendarDay" },
};
const BY_SYMBOL: Record<string, Record<string, string>> = {
  StockBarsResp: { bars: "StockBar" },
  StockLatestBarsResp: { bars: "StockBar" },
  StockLatestTradesResp: { trades: "StockTrade" },
};

/**
 * Everything about a raw answer the SDK's model `name` would not accept as Alpaca's: a field the model does not
 * have, a required field missing, a date that does not parse, an enum value the SDK does not know.
 */
function fieldErrors(name: string, raw: unknown, path = name): string[] {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return [`${path}: not an object`];
  const { from, to, instanceOf } = codec(name);
  const model = from(raw);
  const errors: string[] = [];
  if (instanceOf && !instanceOf(model)) errors.push(`${path}: a field the SDK's ${name} requires is missing`);
  const known = new Set(Object.keys(to(model)));
  for (const key of Object.keys(raw)) {
    if (!known.has(key) && !DOCUMENTED_BEYOND_THE_SDK[name]?.has(key)) errors.push(`${path}.${key}: not a field of the SDK's ${name}`);
  }
  for (const [key, value] of Object.entries(model)) {
    if (value instanceof Date && Number.isNaN(value.getTime())) errors.push(`${path}.${key}: not a date the SDK can parse`);
  }
  for (const [field, enumName] of Object.entries(ENUM_FIELDS[name] ?? {})) {
    const value = (raw as Json)[field];
    if (value !== undefined && value !== null && value !== "" && !enumValues(enumName).has(value as string)) {
      errors.push(`${path}.${field}: ${JSON.stringify(value)} is not one of the SDK's ${enumName}`);
    }
  }
  for (const [field, nested] of Object.entries(NESTED[name] ?? {})) {
    const value = (raw as Json)[field];
    if (Array.isArray(value)) value.forEach((item, index) => errors.push(...fieldErrors(nested, item, `${path}.${field}[${index}]`)));
  }
  // Market data keys bars and trades by symbol.
  for (const [field, nested] of Object.entries(BY_SYMBOL[name] ?? {})) {
    for (const [symbol, value] of Object.entries(((raw as Json)[field] as Json | undefined) ?? {})) {
      if (Array.isArray(value)) value.forEach((item, index) => errors.push(...fieldErrors(nested, item, `${path}.${field}.${symbol}[${index}]`)));
      else errors.push(...fieldErrors(nested, value, `${path}.${field}.${symbol}`));
    }
  }
  return errors;
}

const listErrors = (name: string, raw: unknown, path: string) =>
  Array.isArray(raw) ? raw.flatMap((item, index) => fieldErrors(name, item, `${path}[${index}]`)) : [`${path}: not a list`];

/** The raw JSON of an SDK call, through its own *Raw variant (the SDK's request, our answer unparsed). */
const rawOf = async (call: Promise<{ raw: Response }>) => (await call).raw.json() as Promise<unknown>;

// Drives the simulator through the official SDK in every state an order can reach, and holds each answer to the
// SDK's own generated models: zero field errors is the bar.
describe("fidelity to the SDK's models", () => {
  let sim: RunningSimulator;
  let api: Sdk;
  const errors: string[] = [];

  beforeAll(async () => {
    sim = await startTestSimulator({ partialFillChance: 0, tradeVolumeShare: 0.001 });
    api = sdk(sim.url);
    const price = sim.control.price("AAPL");
    const cents = (value: number) => String(Math.round(value * 100) / 100);
    await api.orders.bracket({ symbol: "AAPL", qty: 10, side: "buy", takeProfit: { limitPrice: Number(cents(price * 1.05)) }, stopLoss: { stopPrice: Number(cents(price * 0.95)) }, clientOrderId: "fidelity-bracket" });
    await api.orders.market({ symbol: "MSFT", qty: 400, side: "buy", clientOrderId: "fidelity-partial" });
    await api.orders.limit({ symbol: "GOOGL", qty: 1, side: "buy", limitPrice: Number(cents(sim.control.price("GOOGL") * 0.9)), clientOrderId: "fidelity-cancel" });
    await api.orders.limit({ symbol: "AMZN", qty: 1, side: "buy", limitPrice: Number(cents(sim.control.price("AMZN") * 0.9)), clientOrderId: "fidelity-replace" });
    sim.control.advance(1);
    const canceled = await api.orders.getOrderByClientOrderId({ clientOrderId: "fidelity-cancel" });
    await api.orders.deleteOrderByOrderID({ orderId: canceled.id! });
    const replaced = await api.orders.getOrderByClientOrderId({ clientOrderId: "fidelity-replace" });
    await api.orders.patchOrderByOrderId({ orderId: replaced.id!, patchOrderRequest: { limitPrice: cents(sim.control.price("AMZN") * 0.91) } });
  });
  afterAll(async () => {
    await sim?.close();
  });

  it("answers orders in every state (pending_cancel, pending_replace, partially_filled, held, filled) as the SDK's Order", async () => {
    const nested = await rawOf(api.orders.getAllOrdersRaw({ status: "all", nested: true }));
    errors.push(...listErrors("Order", nested, "GET /v2/orders?nested"));
    const statuses = (nested as Json[]).flatMap((order) => [order.status, ...((order.legs as Json[] | null) ?? []).map((leg) => leg.status)]);
    expect(new Set(statuses)).toEqual(new Set(["filled", "new", "held", "partially_filled", "pending_cancel", "pending_replace", "pending_new"]));
    errors.push(...listErrors("Order", await rawOf(api.orders.getAllOrdersRaw({ status: "all" })), "GET /v2/orders"));
    const byClient = await rawOf(api.orders.getOrderByClientOrderIdRaw({ clientOrderId: "fidelity-bracket" }));
    errors.push(...fieldErrors("Order", byClient, "GET /v2/orders:by_client_order_id"));
    sim.control.advance(1);
    errors.push(...listErrors("Order", await rawOf(api.orders.getAllOrdersRaw({ status: "closed", nested: true })), "GET /v2/orders?status=closed"));
    expect(errors).toEqual([]);
  });

  it("answers the account, positions, assets and activities as the SDK's models", async () => {
    errors.length = 0;
    errors.push(...fieldErrors("Account", await rawOf(api.account.getAccountRaw()), "GET /v2/account"));
    errors.push(...listErrors("Position", await rawOf(api.positions.getAllOpenPositionsRaw()), "GET /v2/positions"));
    errors.push(...fieldErrors("Position", await rawOf(api.positions.getOpenPositionRaw({ symbolOrAssetId: "AAPL" })), "GET /v2/positions/AAPL"));
    errors.push(...listErrors("Assets", await rawOf(api.assets.getV2AssetsRaw({})), "GET /v2/assets"));
    errors.push(...fieldErrors("Assets", await rawOf(api.assets.getV2AssetsSymbolOrAssetIdRaw({ symbolOrAssetId: "AAPL" })), "GET /v2/assets/AAPL"));
    errors.push(...listErrors("TradingActivities", await rawOf(api.activities.getAccountActivitiesByActivityTypeRaw({ activityType: "FILL" })), "GET /v2/account/activities/FILL"));
    expect(errors).toEqual([]);
  });

  it("answers the clocks and calendars as the SDK's models", async () => {
    errors.length = 0;
    errors.push(...fieldErrors("LegacyClock", await rawOf(api.clock.legacyClockRaw()), "GET /v2/clock"));
    errors.push(...fieldErrors("ClockResp", await rawOf(api.clock.clockRaw({})), "GET /v3/clock"));
    const days = await rawOf(api.calendar.legacyCalendarRaw({ start: new Date("2026-11-20T00:00:00Z"), end: new Date("2026-12-31T00:00:00Z") }));
    errors.push(...listErrors("LegacyCalendarDay", days, "GET /v2/calendar"));
    errors.push(...fieldErrors("PublicCalendarResp", await rawOf(api.calendar.calendarRaw({ market: "NYSE", start: new Date("2026-11-27T00:00:00Z") })), "GET /v3/calendar/NYSE"));
    expect(errors).toEqual([]);
  });

  it("answers market data as the SDK's models", async () => {
    errors.length = 0;
    const since = new Date(sim.control.now().getTime() - 30 * 60_000);
    errors.push(...fieldErrors("StockBarsResp", await rawOf(api.stocks.stockBarsRaw({ symbols: "AAPL,MSFT", timeframe: "1Min", start: since })), "GET /v2/stocks/bars"));
    errors.push(...fieldErrors("StockLatestBarsResp", await rawOf(api.stocks.stockLatestBarsRaw({ symbols: "AAPL" })), "GET /v2/stocks/bars/latest"));
    errors.push(...fieldErrors("StockLatestTradesResp", await rawOf(api.stocks.stockLatestTradesRaw({ symbols: "AAPL" })), "GET /v2/stocks/trades/latest"));
    expect(errors).toEqual([]);
  });
});
