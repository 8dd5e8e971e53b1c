import { describe, expect, it } from "vitest";
import type { MarketSnapshot } from "../src/tools/market-data.js";
import { positionLookupTool } from "../src/tools/position-lookup.js";

const market = (price: number, position: MarketSnapshot["position"]): MarketSnapshot => ({ source: "broker", symbol: "AAPL", price, recentCloses: [], position, asOf: "2026-11-21T12:00:00.000Z" });
const lookUp = (shown: MarketSnapshot) => positionLookupTool.run({}, { agentId: "a", symbol: "AAPL", market: shown });

describe("position lookup", () => {
  it("answers null when flat", async () => {
    expect(await lookUp(market(100, null))).toEqual({ symbol: "AAPL", position: null, asOf: "2026-11-21T12:00:00.000Z" });
  });

  it.each([
    { name: "a long in profit", side: "long", price: 110, pnl: 50, pct: 10 },
    { name: "a long at a loss", side: "long", price: 95, pnl: -25, pct: -5 },
    { name: "a short in profit", side: "short", price: 90, pnl: 50, pct: 10 },
    { name: "a short at a loss", side: "short", price: 105, pnl: -25, pct: -5 },
  ] as const)("values $name at the market price", async ({ side, price, pnl, pct }) => {
    expect(await lookUp(market(price, { side, qty: 5, entryPrice: 100 }))).toMatchObject({
      position: { side, qty: 5, entryPrice: 100, marketValue: price * 5, unrealizedPnl: pnl, unrealizedPnlPct: pct },
    });
  });

  it("takes no input", () => {
    expect(positionLookupTool.input.safeParse({ symbol: "MSFT" }).success).toBe(false);
  });
});
