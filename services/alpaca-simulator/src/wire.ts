import type { AccountFigures, Fill, Order, OrderWithLegs, Position } from "./broker.js";
import { newYorkOffsetMinutes, settlementDate, type TradingDay } from "./calendar.js";
import type { ClockReading } from "./market-clock.js";
import { decimalString } from "./numbers.js";
import type { Bar } from "./price-model.js";
import { assetIdFor, type SymbolSpec } from "./universe.js";

/**
 * Alpaca's JSON shapes. Trading responses carry numbers as decimal strings and every documented field
 * (null when unset); market-data bars carry plain numbers, as Alpaca's do.
 */

const qty = (value: number) => decimalString(value, 9);
const money = (value: number) => decimalString(value, 2);
const price = (value: number) => decimalString(value, 4);
const ratio = (value: number) => decimalString(value, 6);
/**
 * An average price (an order's `filled_avg_price`, a position's `avg_entry_price`), which Alpaca sends unrounded:
 * "105.8988475" for an order filled in parts (alpaca-docs, content/api-references/trading-api/streaming.md,
 * the trade_updates example), "286.9749783265074366" for a position (alpaca-py's recorded broker response,
 * tests/broker/broker_client/test_trading_routes.py). Rounding it to a price's four decimals would lose the
 * cents a multi-fill average carries (x.xx3333…); ten decimals keep it to far below a cent over any quantity
 * while dropping a binary double's last-bit noise ("150.25", not "150.25000000000003").
 */
const average = (value: number) => decimalString(value, 10);
const time = (value: Date | null) => value?.toISOString() ?? null;
const optional = <T>(value: T | null, format: (value: T) => string) => (value === null ? null : format(value));

export function orderJson(order: Order, legs: Order[] | null): Record<string, unknown> {
  return {
    id: order.id,
    client_order_id: order.clientOrderId,
    created_at: time(order.createdAt),
    updated_at: time(order.updatedAt),
    submitted_at: time(order.submittedAt),
    filled_at: time(order.filledAt),
    expired_at: time(order.expiredAt),
    expires_at: null,
    canceled_at: time(order.canceledAt),
    failed_at: time(order.failedAt),
    replaced_at: time(order.replacedAt),
    replaced_by: order.replacedBy,
    replaces: order.replaces,
    asset_id: assetIdFor(order.symbol),
    symbol: order.symbol,
    asset_class: "us_equity",
    notional: optional(order.notional, money),
    qty: order.notional === null ? qty(order.qty) : null,
    filled_qty: qty(order.filledQty),
    filled_avg_price: optional(order.filledAvgPrice, average),
    order_class: order.orderClass,
    order_type: order.type,
    type: order.type,
    side: order.side,
    position_intent: order.positionIntent,
    time_in_force: order.timeInForce,
    limit_price: optional(order.limitPrice, price),
    stop_price: optional(order.stopPrice, price),
    status: order.status,
    extended_hours: order.extendedHours,
    // A leg is the SDK's OrderLeg, which has no expires_at.
    legs: legs === null ? null : legs.map((leg) => { const { expires_at: _expiresAt, ...json } = orderJson(leg, null); return json; }),
    trail_percent: null,
    trail_price: null,
    hwm: null,
  };
}

/** An order with its legs under `legs` (Alpaca's `nested=true` and placement answers). */
export const nestedOrderJson = ({ order, legs }: OrderWithLegs) => orderJson(order, legs.length > 0 ? legs : null);

/** An order as a flat listing shows it: `legs` is null even for a bracket's entry. */
export const flatOrderJson = ({ order }: OrderWithLegs) => orderJson(order, null);

export interface PositionQuote {
  currentPrice: number;
  lastdayPrice: number;
  qtyAvailable: number;
  exchange: SymbolSpec["exchange"];
}

export function positionJson(position: Position, quote: PositionQuote): Record<string, unknown> {
  const marketValue = position.qty * quote.currentPrice;
  const costBasis = position.qty * position.avgEntryPrice;
  const unrealizedPl = marketValue - costBasis;
  const intradayBasis = position.qty * quote.lastdayPrice;
  const side = position.qty > 0 ? "long" : "short";
  return {
    asset_id: assetIdFor(position.symbol),
    symbol: position.symbol,
    exchange: quote.exchange,
    asset_class: "us_equity",
    asset_marginable: true,
    qty: qty(position.qty),
    qty_available: qty(Math.sign(position.qty) * quote.qtyAvailable),
    avg_entry_price: average(position.avgEntryPrice),
    side,
    market_value: money(marketValue),
    cost_basis: money(costBasis),
    unrealized_pl: money(unrealizedPl),
    unrealized_plpc: ratio(costBasis === 0 ? 0 : unrealizedPl / Math.abs(costBasis)),
    unrealized_intraday_pl: money(marketValue - intradayBasis),
    unrealized_intraday_plpc: ratio(intradayBasis === 0 ? 0 : (marketValue - intradayBasis) / Math.abs(intradayBasis)),
    current_price: price(quote.currentPrice),
    lastday_price: price(quote.lastdayPrice),
    change_today: ratio(quote.lastdayPrice === 0 ? 0 : (quote.currentPrice - quote.lastdayPrice) / quote.lastdayPrice),
  };
}

export function accountJson(figures: AccountFigures, identity: { id: string; number: string; createdAt: Date }, asOf: Date) {
  const buyingPower = money(figures.buyingPower);
  return {
    id: identity.id,
    account_number: identity.number,
    status: "ACTIVE",
    crypto_status: "INACTIVE",
    currency: "USD",
    cash: money(figures.cash),
    buying_power: buyingPower,
    regt_buying_power: buyingPower,
    daytrading_buying_power: figures.multiplier === 4 ? buyingPower : "0",
    non_marginable_buying_power: money(Math.max(0, Math.min(figures.cash, figures.buyingPower))),
    options_buying_power: "0",
    portfolio_value: money(figures.equity),
    equity: money(figures.equity),
    last_equity: money(figures.lastEquity),
    long_market_value: money(figures.longMarketValue),
    short_market_value: money(figures.shortMarketValue),
    initial_margin: money(figures.initialMargin),
    maintenance_margin: money(figures.maintenanceMargin),
    last_maintenance_margin: money(figures.maintenanceMargin),
    sma: "0",
    multiplier: String(figures.multiplier),
    daytrade_count: 0,
    balance_asof: asOf.toISOString().slice(0, 10),
    pattern_day_trader: false,
    trading_blocked: false,
    transfers_blocked: false,
    account_blocked: false,
    trade_suspended_by_user: false,
    shorting_enabled: true,
    accrued_fees: "0",
    pending_transfer_in: "0",
    pending_transfer_out: "0",
    options_approved_level: 0,
    options_trading_level: 0,
    created_at: identity.createdAt.toISOString(),
  };
}

export function clockJson(clock: ClockReading) {
  return {
    timestamp: clock.timestamp.toISOString(),
    is_open: clock.isOpen,
    next_open: clock.nextOpen.toISOString(),
    next_close: clock.nextClose.toISOString(),
  };
}

/** The v3 clock (`GET /v3/clock`), which SDK 4.x's `clock.clock()` calls; `legacyClock()` calls /v2/clock. */
export function clockV3Json(clock: ClockReading) {
  return {
    clocks: [
      {
        market: NYSE_MARKET,
        timestamp: clock.timestamp.toISOString(),
        is_market_day: clock.isMarketDay,
        next_market_open: clock.nextOpen.toISOString(),
        next_market_close: clock.nextClose.toISOString(),
        phase: clock.phase === "regular" ? "core" : clock.phase,
        phase_until: clock.phaseUntil.toISOString(),
      },
    ],
  };
}

const hhmm = (ms: number, separator: string) => {
  const local = new Date(ms - newYorkOffsetMinutes(ms) * 60_000);
  return `${String(local.getUTCHours()).padStart(2, "0")}${separator}${String(local.getUTCMinutes()).padStart(2, "0")}`;
};

/** A trading day as `GET /v2/calendar` lists it: New York times, "09:30" for the open, "0400" for the session. */
export function calendarDayJson(day: TradingDay) {
  return {
    date: day.date,
    open: hhmm(day.open, ":"),
    close: hhmm(day.close, ":"),
    session_open: hhmm(day.sessionOpen, ""),
    session_close: hhmm(day.sessionClose, ""),
    settlement_date: settlementDate(day.date),
  };
}

/** An instant as RFC-3339 in New York time ("2026-01-05T09:30:00-05:00"), or in UTC. */
function isoIn(ms: number, zone: "America/New_York" | "UTC"): string {
  if (zone === "UTC") return new Date(ms).toISOString().replace(".000Z", "Z");
  const offset = newYorkOffsetMinutes(ms);
  const local = new Date(ms - offset * 60_000).toISOString().slice(0, 19);
  const hours = Math.floor(Math.abs(offset) / 60);
  return `${local}${offset > 0 ? "-" : "+"}${String(hours).padStart(2, "0")}:${String(Math.abs(offset) % 60).padStart(2, "0")}`;
}

export const NYSE_MARKET = { acronym: "NYSE", name: "New York Stock Exchange", mic: "XNYS", bic: "XNYS", timezone: "America/New_York" };

/** `GET /v3/calendar/NYSE`: the market and its days with the phases' bounds. */
export function calendarV3Json(days: TradingDay[], zone: "America/New_York" | "UTC") {
  return {
    market: NYSE_MARKET,
    calendar: days.map((day) => ({
      date: day.date,
      pre_start: isoIn(day.sessionOpen, zone),
      pre_end: isoIn(day.open, zone),
      core_start: isoIn(day.open, zone),
      core_end: isoIn(day.close, zone),
      post_start: isoIn(day.close, zone),
      post_end: isoIn(day.sessionClose, zone),
      settlement_date: settlementDate(day.date),
    })),
  };
}

export function assetJson(symbol: string, spec: SymbolSpec) {
  return {
    id: assetIdFor(symbol),
    class: "us_equity",
    exchange: spec.exchange,
    symbol,
    name: spec.name,
    status: "active",
    tradable: true,
    marginable: true,
    shortable: spec.shortable,
    easy_to_borrow: spec.shortable,
    fractionable: true,
    maintenance_margin_requirement: 30,
    margin_requirement_long: "30",
    margin_requirement_short: "30",
    attributes: [],
  };
}

export function barJson(bar: Bar) {
  return { t: new Date(bar.t).toISOString(), o: bar.o, h: bar.h, l: bar.l, c: bar.c, v: bar.v, n: bar.n, vw: bar.vw };
}

/** The latest trade, as `GET /v2/stocks/{symbol}/trades/latest` returns it (the SDK's `getLatestPrice` reads it). */
export function tradeJson(traded: number, at: Date, sequence: number) {
  return { t: at.toISOString(), x: "V", p: traded, s: 100, c: ["@"], i: sequence, z: "C" };
}

/** A fill as Alpaca's account activity of type FILL. */
export function fillActivityJson(fill: Fill, orderStatus: string) {
  return {
    id: fill.id,
    activity_type: "FILL",
    transaction_time: fill.time.toISOString(),
    type: "fill",
    price: price(fill.price),
    qty: qty(fill.qty),
    side: fill.side,
    symbol: fill.symbol,
    leaves_qty: qty(fill.leavesQty),
    order_id: fill.orderId,
    cum_qty: qty(fill.cumQty),
    order_status: orderStatus,
  };
}
