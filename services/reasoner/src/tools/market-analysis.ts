import { z } from "zod";
import { round, type AgentTool } from "./agent-tool.js";
import type { MarketSnapshot } from "./market-data.js";

/** Beyond ±this momentum (percent) the trend counts as up or down. */
const TREND_THRESHOLD_PCT = 0.5;

export type MarketAnalysis = {
  symbol: string;
  price: number;
  asOf: string;
  changePct: number | null;
  /** Price against the close `closesUsed` sessions ago, percent. */
  momentumPct: number | null;
  /** Price against the simple moving average of the closes used, percent. */
  vsAveragePct: number | null;
  /** Standard deviation of close-to-close returns, percent. */
  volatilityPct: number | null;
  volumeRatio: number | null;
  trend: "up" | "down" | "flat" | "unknown";
  closesUsed: number;
};

const pct = (value: number, base: number) => round((value / base - 1) * 100);

export function analyzeMarket(market: MarketSnapshot, lookback: number): MarketAnalysis {
  const closes = market.recentCloses.slice(-lookback);
  const first = closes[0];
  const momentumPct = first === undefined ? null : pct(market.price, first);
  const average = closes.length ? closes.reduce((sum, close) => sum + close, 0) / closes.length : undefined;
  const returns = closes.slice(1).map((close, index) => close / closes[index]! - 1);
  const meanReturn = returns.reduce((sum, value) => sum + value, 0) / (returns.length || 1);
  const variance = returns.reduce((sum, value) => sum + (value - meanReturn) ** 2, 0) / (returns.length || 1);
  return {
    symbol: market.symbol,
    price: market.price,
    asOf: market.asOf,
    changePct: market.previousClose === undefined ? null : pct(market.price, market.previousClose),
    momentumPct,
    vsAveragePct: average === undefined ? null : pct(market.price, average),
    volatilityPct: returns.length >= 2 ? round(Math.sqrt(variance) * 100) : null,
    volumeRatio:
      market.volume === undefined || market.averageVolume === undefined ? null : round(market.volume / market.averageVolume),
    trend:
      momentumPct === null ? "unknown" : momentumPct > TREND_THRESHOLD_PCT ? "up" : momentumPct < -TREND_THRESHOLD_PCT ? "down" : "flat",
    closesUsed: closes.length,
  };
}

const input = z.strictObject({
  lookback: z.number().int().min(2).max(250).default(20).describe("How many recent closes to use (2-250)."),
});

export const marketAnalysisTool: AgentTool<typeof input> = {
  name: "analyze_market",
  description:
    "Analyze the symbol's current market: day change, momentum and trend over the lookback, price against its " +
    "moving average, volatility and volume against average. Numbers are percentages unless named a ratio.",
  input,
  run: async ({ lookback }, { market }) => analyzeMarket(market, lookback),
};
