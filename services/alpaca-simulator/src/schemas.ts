import { z } from "zod";
import type { OrderReplacement, OrderRequest } from "./broker.js";
import { invalidRequest } from "./errors.js";
import { parseTimeframe, type Timeframe } from "./timeframe.js";
import { SYMBOL_PATTERN } from "./universe.js";

/** Validates `input`; on failure throws Alpaca's 422 naming every offending field of `what`. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    // A parameter the simulator does not implement is refused by name, never ignored: ignoring it would answer
    // something other than what Alpaca would.
    if (issue.code === "unrecognized_keys") return issue.keys.map((key) => `${key}: is not supported by the simulator`).join("; ");
    const field = issue.path.length > 0 ? issue.path.join(".") : "(body)";
    const message = issue.message.replace(/^Invalid input: expected \w+, received undefined$/, "is required");
    return `${field}: ${message}`;
  });
  throw invalidRequest(`invalid ${what}: ${problems.join("; ")}`);
}

/** Absent and null mean the same: some clients send `"notional": null` for an unused field. */
const optional = <S extends z.ZodType>(schema: S) => schema.nullish().transform((value) => value ?? undefined);

/** A number, or a decimal string as SDK 4.x sends quantities and prices ("10", "150.25"). */
const decimal = z.union([z.number(), z.string()]).transform((value, context) => {
  const parsed = typeof value === "number" ? value : /^\s*-?\d+(\.\d+)?\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isFinite(parsed)) {
    context.addIssue({ code: "custom", message: `must be a decimal number such as "10" or "150.25" (got ${JSON.stringify(value)})` });
    return z.NEVER;
  }
  return parsed;
});
const positiveDecimal = decimal.pipe(z.number().positive("must be greater than 0"));

const symbol = z.string().regex(SYMBOL_PATTERN, "must be an upper-case ticker such as AAPL");

const timestamp = z.string().transform((value, context) => {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) {
    context.addIssue({ code: "custom", message: `must be an RFC-3339 timestamp such as 2024-01-02T15:04:05Z (got ${JSON.stringify(value)})` });
    return z.NEVER;
  }
  return new Date(ms);
});

const booleanFlag = z.enum(["true", "false"], "must be true or false").transform((value) => value === "true");

const symbolList = z.string().transform((value, context) => {
  const symbols = value.split(",").map((part) => part.trim()).filter((part) => part !== "");
  const bad = symbols.filter((part) => !SYMBOL_PATTERN.test(part));
  if (symbols.length === 0 || bad.length > 0) {
    context.addIssue({ code: "custom", message: `must be comma-separated upper-case tickers such as AAPL,MSFT (bad: ${JSON.stringify(bad.length > 0 ? bad : value)})` });
    return z.NEVER;
  }
  return symbols;
});

const limit = (max: number, fallback: number) =>
  z.coerce.number().int(`must be an integer from 1 to ${max}`).min(1, `must be from 1 to ${max}`).max(max, `must be from 1 to ${max}`).default(fallback);

const side = z.enum(["buy", "sell"]);
const timeInForce = z.enum(["day", "gtc", "opg", "cls", "ioc", "fok"]);

export const orderRequestSchema = z
  .object({
    symbol,
    qty: optional(positiveDecimal),
    notional: optional(positiveDecimal),
    side,
    type: z.enum(["market", "limit", "stop", "stop_limit", "trailing_stop"]),
    time_in_force: timeInForce,
    limit_price: optional(positiveDecimal),
    stop_price: optional(positiveDecimal),
    trail_price: optional(positiveDecimal),
    trail_percent: optional(positiveDecimal),
    extended_hours: optional(z.boolean()),
    client_order_id: optional(z.string().min(1, "must not be empty").max(128, "must be no more than 128 characters")),
    order_class: optional(z.enum(["", "simple", "bracket", "oco", "oto", "mleg"])),
    take_profit: optional(z.object({ limit_price: positiveDecimal })),
    stop_loss: optional(z.object({ stop_price: positiveDecimal, limit_price: optional(positiveDecimal) })),
    position_intent: optional(z.enum(["buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close"])),
  })
  .superRefine((order, context) => {
    const problem = (field: string, message: string) => context.addIssue({ code: "custom", path: [field], message });
    const { type } = order;
    const orderClass = order.order_class ?? "";
    if ((order.qty === undefined) === (order.notional === undefined)) problem("qty", "exactly one of qty and notional is required");
    if (type === "trailing_stop") problem("type", "trailing_stop orders are not simulated; use market, limit, stop or stop_limit");
    if (order.time_in_force === "opg" || order.time_in_force === "cls") {
      problem("time_in_force", `${order.time_in_force} (auction) orders are not simulated; use day, gtc, ioc or fok`);
    }
    const hasLimit = type === "limit" || type === "stop_limit";
    const hasStop = type === "stop" || type === "stop_limit";
    if (hasLimit && order.limit_price === undefined) problem("limit_price", `is required for ${type} orders`);
    if (!hasLimit && order.limit_price !== undefined) problem("limit_price", `must not be set for ${type} orders`);
    if (hasStop && order.stop_price === undefined) problem("stop_price", `is required for ${type} orders`);
    if (!hasStop && order.stop_price !== undefined) problem("stop_price", `must not be set for ${type} orders`);
    if (order.notional !== undefined && (type !== "market" || order.time_in_force !== "day" || orderClass === "bracket")) {
      problem("notional", "is only accepted on simple market orders with time_in_force day");
    }
    if (["oco", "oto", "mleg"].includes(orderClass)) problem("order_class", `"${orderClass}" orders are not simulated; use simple or bracket`);
    if (orderClass === "bracket") {
      if (!order.take_profit) problem("take_profit", "is required for bracket orders (take_profit.limit_price)");
      if (!order.stop_loss) problem("stop_loss", "is required for bracket orders (stop_loss.stop_price)");
      if (type !== "market" && type !== "limit") problem("type", "bracket entry orders must be market or limit");
      if (order.time_in_force !== "day" && order.time_in_force !== "gtc") problem("time_in_force", "bracket orders must be day or gtc");
    } else if (order.take_profit || order.stop_loss) {
      problem("order_class", 'take_profit and stop_loss need order_class "bracket"');
    }
  })
  .transform(
    (order): OrderRequest => ({
      symbol: order.symbol,
      side: order.side,
      type: order.type as OrderRequest["type"],
      timeInForce: order.time_in_force,
      qty: order.qty,
      notional: order.notional,
      limitPrice: order.limit_price,
      stopPrice: order.stop_price,
      clientOrderId: order.client_order_id,
      orderClass: (order.order_class ?? "") as OrderRequest["orderClass"],
      extendedHours: order.extended_hours ?? false,
      takeProfit: order.take_profit && { limitPrice: order.take_profit.limit_price },
      stopLoss: order.stop_loss && { stopPrice: order.stop_loss.stop_price, limitPrice: order.stop_loss.limit_price },
    }),
  );

export const orderReplacementSchema = z
  .object({
    qty: optional(positiveDecimal),
    time_in_force: optional(timeInForce),
    limit_price: optional(positiveDecimal),
    stop_price: optional(positiveDecimal),
    trail: optional(positiveDecimal),
    client_order_id: optional(z.string().min(1, "must not be empty").max(128, "must be no more than 128 characters")),
  })
  .superRefine((changes, context) => {
    if (changes.trail !== undefined) context.addIssue({ code: "custom", path: ["trail"], message: "trailing stops are not simulated" });
    if (Object.values(changes).every((value) => value === undefined)) {
      context.addIssue({ code: "custom", path: [], message: "give at least one of qty, time_in_force, limit_price, stop_price, client_order_id" });
    }
  })
  .transform(
    (changes): OrderReplacement => ({
      qty: changes.qty,
      timeInForce: changes.time_in_force,
      limitPrice: changes.limit_price,
      stopPrice: changes.stop_price,
      clientOrderId: changes.client_order_id,
    }),
  );

/** A calendar date, from "2026-01-05" or an RFC-3339 time (its date as written, as Alpaca reads it). */
const calendarDate = z.string().transform((value, context) => {
  const match = /^(\d{4}-\d{2}-\d{2})(T.*)?$/.exec(value);
  if (!match || Number.isNaN(Date.parse(`${match[1]}T00:00:00Z`))) {
    context.addIssue({ code: "custom", message: `must be a date such as 2026-01-05 or an RFC-3339 time (got ${JSON.stringify(value)})` });
    return z.NEVER;
  }
  return match[1]!;
});

export const legacyCalendarQuerySchema = z.strictObject({
  start: optional(calendarDate),
  end: optional(calendarDate),
  date_type: optional(z.enum(["TRADING", "SETTLEMENT"])),
});

export const calendarQuerySchema = z.strictObject({
  start: optional(calendarDate),
  end: optional(calendarDate),
  timezone: optional(z.enum(["UTC"])),
});

export const listOrdersQuerySchema = z.strictObject({
  status: z.enum(["open", "closed", "all"]).default("open"),
  limit: limit(500, 50),
  after: optional(timestamp),
  until: optional(timestamp),
  direction: z.enum(["asc", "desc"]).default("desc"),
  nested: booleanFlag.default(false),
  symbols: optional(symbolList),
  side: optional(side),
});

/** For endpoints that take no query parameters: any parameter is refused by name, as none is supported. */
export function noQuery(query: unknown): void {
  parseInput(z.strictObject({}), query, "query");
}

/** Every asset simulated is an active us_equity; filtering by those or by exchange works, other filters are refused. */
export const assetsQuerySchema = z.strictObject({
  status: optional(z.enum(["active", "inactive"])),
  asset_class: optional(z.enum(["us_equity", "us_option", "crypto"])),
  exchange: optional(z.enum(["AMEX", "ARCA", "BATS", "NYSE", "NASDAQ", "NYSEARCA", "OTC"])),
});

export const clockQuerySchema = z.strictObject({
  markets: optional(z.string().transform((value) => value.split(",").map((market) => market.trim()))),
});

export const nestedQuerySchema = z.strictObject({ nested: booleanFlag.default(false) });

export const clientOrderIdQuerySchema = z.strictObject({ client_order_id: z.string().min(1, "must not be empty") });

export const closePositionQuerySchema = z
  .strictObject({
    qty: optional(positiveDecimal),
    percentage: optional(decimal.pipe(z.number().positive("must be greater than 0").max(100, "must be at most 100"))),
  })
  .refine((part) => part.qty === undefined || part.percentage === undefined, { message: "give qty or percentage, not both", path: ["qty"] });

export const closeAllPositionsQuerySchema = z.strictObject({ cancel_orders: booleanFlag.default(false) });

/**
 * A page of account activities, as alpaca-docs (content/api-references/trading-api/account-activities.md,
 * "Paging of Results", and oas/trading/openapi.yaml) describe it: `after`/`until` "cannot be used with date";
 * `page_size` is at most 100 and 100 by default, except with `date`, where it has no maximum and all of the day is
 * returned by default (undefined here). The per-type route (`/v2/account/activities/{activity_type}`) takes no
 * `activity_types`.
 */
const activitiesPage = {
  direction: z.enum(["asc", "desc"]).default("desc"),
  page_size: optional(z.coerce.number().int("must be an integer of at least 1").min(1, "must be at least 1")),
  page_token: optional(z.string()),
  after: optional(timestamp),
  until: optional(timestamp),
  date: optional(timestamp),
};
const checkedPage = <S extends z.ZodType<{ page_size?: number; after?: Date; until?: Date; date?: Date }>>(schema: S) =>
  schema
    .superRefine((query, context) => {
      if (query.date !== undefined && (query.after !== undefined || query.until !== undefined)) {
        context.addIssue({ code: "custom", path: ["date"], message: "cannot be used with after or until" });
      }
      if (query.date === undefined && query.page_size !== undefined && query.page_size > 100) {
        context.addIssue({ code: "custom", path: ["page_size"], message: "must be from 1 to 100 without date" });
      }
    })
    .transform((query) => ({ ...query, page_size: query.page_size ?? (query.date === undefined ? 100 : Number.POSITIVE_INFINITY) }));
export const activitiesOfTypeQuerySchema = checkedPage(z.strictObject(activitiesPage));
export const activitiesQuerySchema = checkedPage(z.strictObject({ ...activitiesPage, activity_types: optional(z.string()) }));

const timeframe = z.string().transform((value, context): Timeframe => {
  const parsed = parseTimeframe(value);
  if ("error" in parsed) {
    context.addIssue({ code: "custom", message: parsed.error });
    return z.NEVER;
  }
  return parsed;
});

const feed = z.enum(["iex", "sip", "otc", "boats", "delayed_sip", "overnight"]);

export const barsQuerySchema = z.strictObject({
  timeframe,
  start: optional(timestamp),
  end: optional(timestamp),
  limit: limit(10_000, 1_000),
  page_token: optional(z.string()),
  sort: z.enum(["asc", "desc"]).default("asc"),
  feed: optional(feed),
  adjustment: optional(z.string()),
  asof: optional(z.string()),
  currency: optional(z.string()),
});

export const multiBarsQuerySchema = barsQuerySchema.extend({ symbols: symbolList });

export const latestQuerySchema = z.strictObject({ feed: optional(feed), currency: optional(z.string()) });

export const multiLatestQuerySchema = latestQuerySchema.extend({ symbols: symbolList });

export const symbolParamSchema = z.object({ symbol });

export const advanceBodySchema = z.object({ bars: z.number().int().min(1).max(100_000).default(1) });

export const pricesBodySchema = z.object({
  prices: z.record(symbol, z.number().positive("must be greater than 0")).refine((prices) => Object.keys(prices).length > 0, "give at least one symbol"),
});

export const marketBodySchema = z.object({ open: z.boolean().nullable() });

export const requestLogQuerySchema = z.strictObject({
  method: optional(z.string().transform((value) => value.toUpperCase())),
  path: optional(z.string()),
});
