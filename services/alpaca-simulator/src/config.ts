import { commonEnvSchema, port } from "@savepoint/shared";
import { z } from "zod";
import type { SimulatorOptions } from "./server.js";
import { SYMBOL_PATTERN } from "./universe.js";

const SYMBOL_ENTRY = /^([A-Z][A-Z0-9]{0,9}(?:\.[A-Z]{1,2})?)(?::(\d+(?:\.\d+)?))?$/;

/** The standalone simulator's environment (`npm start -w @savepoint/alpaca-simulator`, or `npm run sim -w @savepoint/trader`). */
export const simulatorEnvSchema = commonEnvSchema.pick({ LOG_LEVEL: true, LOG_FORMAT: true, SHUTDOWN_TIMEOUT_MS: true }).extend({
  SIM_PORT: port().default(8090),
  SIM_HOST: z.string().min(1).default("0.0.0.0"),
  SIM_SEED: z.string().min(1).default("42"),
  /** Simulated time at start (ISO-8601); unset: the open of the latest regular session (now, if always open). */
  SIM_START: z.iso.datetime({ offset: true, error: "must be an ISO-8601 time such as 2026-01-05T14:30:00Z" }).optional(),
  /** Real milliseconds per simulated one-minute bar; 0 advances only through POST /_sim/advance. */
  SIM_TICK_MS: z.coerce.number().int().min(0).max(3_600_000).default(1_000),
  SIM_HISTORY_BARS: z.coerce.number().int().min(1).max(500_000).default(1_440),
  /** "AAPL,MSFT:410.5,XYZ:12": the tradable symbols, each optionally with its starting price. */
  SIM_SYMBOLS: z
    .string()
    .transform((value, context) => {
      const entries = value.split(",").map((entry) => entry.trim()).filter((entry) => entry !== "");
      const parsed = entries.map((entry) => SYMBOL_ENTRY.exec(entry));
      const bad = entries.filter((_, index) => !parsed[index] || !SYMBOL_PATTERN.test(parsed[index]![1]!));
      if (entries.length === 0 || bad.length > 0) {
        context.addIssue({ code: "custom", message: `must be SYMBOL or SYMBOL:PRICE entries separated by commas, such as AAPL,XYZ:12.5 (bad: ${bad.join(", ") || "empty"})` });
        return z.NEVER;
      }
      return parsed.map((match) => ({ symbol: match![1]!, price: match![2] === undefined ? undefined : Number(match![2]) }));
    })
    .optional(),
  SIM_INITIAL_CASH: z.coerce.number().positive().default(100_000),
  SIM_MULTIPLIER: z.enum(["1", "2", "4"]).transform(Number).default(2),
  /** nyse: the NYSE calendar; always_open: a shortcut for tests, every minute a regular-session minute. */
  SIM_MARKET_HOURS: z.enum(["nyse", "always_open"]).default("nyse"),
  /** true: a shortcut, orders fill and cancels complete within their request. */
  SIM_INSTANT_ORDERS: z.enum(["true", "false"]).transform((value) => value === "true").default(false),
  /** Requests a minute per API key (Alpaca: 200); 0 is a shortcut with no limit. */
  SIM_REQUESTS_PER_MINUTE: z.coerce.number().int().min(0).default(200),
});
export type SimulatorEnv = z.infer<typeof simulatorEnvSchema>;

/** The options `startSimulator` takes, from the environment; unknown symbols without a price are an error. */
export function simulatorOptionsFromEnv(env: SimulatorEnv, knownPrices: Readonly<Record<string, { price: number }>>): SimulatorOptions {
  let universe: Record<string, { price: number }> | undefined;
  if (env.SIM_SYMBOLS) {
    universe = {};
    for (const { symbol, price } of env.SIM_SYMBOLS) {
      const startingPrice = price ?? knownPrices[symbol]?.price;
      if (startingPrice === undefined) {
        throw new Error(`SIM_SYMBOLS: ${symbol} is not in the default universe, so give its starting price as ${symbol}:PRICE`);
      }
      universe[symbol] = { price: startingPrice };
    }
  }
  return {
    host: env.SIM_HOST,
    port: env.SIM_PORT,
    seed: env.SIM_SEED,
    start: env.SIM_START,
    tickIntervalMs: env.SIM_TICK_MS,
    historyBars: env.SIM_HISTORY_BARS,
    universe,
    initialCash: env.SIM_INITIAL_CASH,
    multiplier: env.SIM_MULTIPLIER as 1 | 2 | 4,
    marketHours: env.SIM_MARKET_HOURS,
    instantOrders: env.SIM_INSTANT_ORDERS,
    requestsPerMinute: env.SIM_REQUESTS_PER_MINUTE === 0 ? null : env.SIM_REQUESTS_PER_MINUTE,
  };
}
