import { z } from "zod";

/**
 * The broker as the trader sees it, parsed from the SDK's models. SDK 4.x hands over numbers as strings and
 * times as Date objects or ISO strings depending on the call, so every field accepts both forms; anything
 * else fails the parse, and a failed parse is a failed read, never an empty one.
 */

const decimal = z
  .union([z.string(), z.number()])
  .transform((value) => Number(value))
  .refine((value) => Number.isFinite(value), "must be a decimal number");
const optionalDecimal = z
  .union([z.string(), z.number(), z.null(), z.undefined()])
  .transform((value) => (value === null || value === undefined || value === "" ? null : Number(value)))
  .refine((value) => value === null || Number.isFinite(value), "must be a decimal number");
const time = z.union([z.date(), z.iso.datetime({ offset: true })]).transform((value) => new Date(value));
const optionalTime = z
  .union([z.date(), z.iso.datetime({ offset: true }), z.null(), z.undefined()])
  .transform((value) => (value === null || value === undefined ? null : new Date(value)));

export const accountSchema = z.object({
  id: z.string().min(1),
  status: z.string(),
  cash: decimal,
  buyingPower: decimal,
  portfolioValue: decimal,
  shortingEnabled: z.boolean().optional(),
  tradingBlocked: z.boolean().optional(),
});
export type BrokerAccount = z.infer<typeof accountSchema>;

export const positionSchema = z.object({
  symbol: z.string().min(1),
  /** Alpaca signs the quantity of a short position ("-4"); `side` says the same. */
  qty: decimal,
  side: z.enum(["long", "short"]),
  avgEntryPrice: decimal,
  currentPrice: optionalDecimal,
});
export type BrokerPosition = z.infer<typeof positionSchema>;
export const positionsSchema = z.array(positionSchema);

export const ORDER_FINAL_STATUSES = new Set(["filled", "canceled", "expired", "rejected", "replaced"]);
/** True once the broker will do nothing more with the order. */
export const isOrderFinal = (order: Pick<BrokerOrder, "status">) => ORDER_FINAL_STATUSES.has(order.status);

const orderFields = {
  id: z.string().min(1),
  clientOrderId: z.string(),
  symbol: z.string().min(1),
  side: z.enum(["buy", "sell"]),
  type: z.string(),
  orderClass: z.string().optional().transform((value) => value ?? ""),
  qty: optionalDecimal,
  filledQty: decimal,
  filledAvgPrice: optionalDecimal,
  limitPrice: optionalDecimal,
  stopPrice: optionalDecimal,
  status: z.string(),
  submittedAt: optionalTime,
  filledAt: optionalTime,
};
const legSchema = z.object(orderFields);
export const orderSchema = z.object({
  ...orderFields,
  legs: z
    .array(legSchema)
    .nullable()
    .optional()
    .transform((legs) => legs ?? []),
});
export type BrokerOrder = z.infer<typeof orderSchema>;
export type BrokerLeg = z.infer<typeof legSchema>;
export const ordersSchema = z.array(orderSchema);

/**
 * One fill as Alpaca's FILL account activity (`GET /v2/account/activities/FILL`), parsed from the raw JSON: SDK
 * 4.0.2 parses every activity as a non-trade activity and drops its price, side and order_id. Its price is the
 * execution's own, so an order's fills give its exact average price where `filled_avg_price` may be rounded.
 */
export const fillActivitySchema = z
  .object({
    id: z.string().min(1),
    order_id: z.string().min(1),
    symbol: z.string().min(1),
    side: z.enum(["buy", "sell"]),
    qty: decimal,
    price: decimal,
    transaction_time: time,
  })
  .transform(({ order_id, transaction_time, ...fill }) => ({ ...fill, orderId: order_id, time: transaction_time }));
export type BrokerFill = z.infer<typeof fillActivitySchema>;
export const fillActivitiesSchema = z.array(fillActivitySchema);

export const clockSchema = z.object({ timestamp: time, isOpen: z.boolean(), nextOpen: time });
export type MarketClock = z.infer<typeof clockSchema>;

export const assetSchema = z.object({
  symbol: z.string(),
  tradable: z.boolean(),
  shortable: z.boolean().optional(),
  status: z.string(),
});
export type BrokerAsset = z.infer<typeof assetSchema>;

export const barSchema = z.object({ t: time, o: z.number(), h: z.number(), l: z.number(), c: z.number(), v: z.number() });
export type Bar = z.infer<typeof barSchema>;
export const latestBarsSchema = z.object({ bars: z.record(z.string(), barSchema) });
/** A page of `GET /v2/stocks/bars` as the raw JSON (alpaca-broker.ts barsSince reads it raw): bar times are ISO strings. */
export const barsPageSchema = z.object({
  bars: z.record(z.string(), z.array(barSchema)).nullable().transform((bars) => bars ?? {}),
  next_page_token: z.string().nullable().optional(),
});

/** What an order placement asks for; the trader always names it with its deterministic client order id. */
export interface BracketRequest {
  clientOrderId: string;
  symbol: string;
  side: "buy" | "sell";
  qty: number;
  takeProfit: number;
  stopLoss: number;
}

export interface MarketRequest {
  clientOrderId: string;
  symbol: string;
  side: "buy" | "sell";
  qty: number;
}

/** A gtc stop (market) order: the protection of a position whose bracket legs are gone. */
export interface StopRequest {
  clientOrderId: string;
  symbol: string;
  side: "buy" | "sell";
  qty: number;
  stopPrice: number;
}

/** A new limit price for a working limit order (a bracket's take-profit leg), under a client_order_id of its own. */
export interface ReplaceRequest {
  clientOrderId: string;
  limitPrice: number;
}
