import { describe, expect, it } from "vitest";
import { analyzeMarket, marketAnalysisTool } from "../src/tools/market-analysis.js";
import type { MarketSnapshot } from "../src/tools/market-data.js";

const market = (fields: Partial<MarketSnapshot>): MarketSnapshot => ({ source: "job", symbol: "AAPL", price: 100, recentCloses: [], position: null, asOf: "2026-11-21T12:00:00.000Z", ...fields });

describe("market analysis", () => {
  it.each([
    { name: "no closes: nothing to measure", market: market({}), lookback: 20, expected: { momentumPct: null, vsAveragePct: null, volatilityPct: null, trend: "unknown", closesUsed: 0 } },
    { name: "an up trend past +0.5%", market: market({ price: 102, recentCloses: [100, 101] }), lookback: 20, expected: { momentumPct: 2, vsAveragePct: 1.4925, trend: "up", closesUsed: 2 } },
    { name: "a down trend past -0.5%", market: market({ price: 98, recentCloses: [100, 99] }), lookback: 20, expected: { momentumPct: -2, trend: "down" } },
    { name: "flat within ±0.5%", market: market({ price: 100.5, recentCloses: [100, 100.2] }), lookback: 20, expected: { momentumPct: 0.5, trend: "flat" } },
    { name: "only the lookback's closes", market: market({ price: 110, recentCloses: [50, 100, 105] }), lookback: 2, expected: { momentumPct: 10, closesUsed: 2 } },
    { name: "volatility once there are two returns", market: market({ price: 100, recentCloses: [100, 110, 99] }), lookback: 20, expected: { volatilityPct: 10 } },
    { name: "no volatility from one return", market: market({ price: 100, recentCloses: [100, 110] }), lookback: 20, expected: { volatilityPct: null } },
    { name: "day change and volume ratio when known", market: market({ price: 101, previousClose: 100, volume: 1_500, averageVolume: 1_000 }), lookback: 20, expected: { changePct: 1, volumeRatio: 1.5 } },
    { name: "neither without their inputs", market: market({ volume: 1_500 }), lookback: 20, expected: { changePct: null, volumeRatio: null } },
  ])("$name", ({ market: shown, lookback, expected }) => {
    expect(analyzeMarket(shown, lookback)).toMatchObject({ symbol: "AAPL", price: shown.price, asOf: shown.asOf, ...expected });
  });

  it("is the analyze_market tool, 20 closes unless asked, 2 to 250", async () => {
    const shown = market({ price: 102, recentCloses: Array.from({ length: 30 }, (_, index) => 70 + index) });
    const context = { agentId: "a", symbol: "AAPL", market: shown };
    expect(await marketAnalysisTool.run(marketAnalysisTool.input.parse({}), context)).toMatchObject({ closesUsed: 20 });
    expect(marketAnalysisTool.input.safeParse({ lookback: 1 }).success).toBe(false);
    expect(marketAnalysisTool.input.safeParse({ lookback: 251 }).success).toBe(false);
  });
});
