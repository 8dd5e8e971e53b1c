import { describe, expect, it } from "vitest";
import type { Bar } from "../src/broker/types.js";
import { closeClientOrderId, entryClientOrderId, parseClientOrderId } from "../src/session/client-order-ids.js";
import { BarHistory } from "../src/strategy/bar-history.js";
import { planBracket } from "../src/strategy/bracket-plan.js";
import { momentumSignal, RuleStrategy } from "../src/strategy/rule-strategy.js";

const params = { positionSize: 1_000, stopLossPct: 2, takeProfitPct: 4 };
const bar = (minute: number, close: number): Bar => ({ t: new Date(Date.UTC(2026, 0, 5, 15, minute)), o: close, h: close, l: close, c: close, v: 100 });

describe("rule strategy", () => {
  it("holds until the lookback window is full", () => {
    expect(momentumSignal([100, 101], 5, 0.1)).toEqual({ action: "HOLD", reason: "warming up: 2 of 6 bars" });
  });

  it("opens long on momentum at or above the threshold and short at or below its negative", () => {
    expect(momentumSignal([100, 99, 100.2], 2, 0.2).action).toBe("OPEN_LONG");
    expect(momentumSignal([100, 101, 99.8], 2, 0.2).action).toBe("OPEN_SHORT");
    expect(momentumSignal([100, 101, 100.1], 2, 0.2).action).toBe("HOLD");
  });

  it("never enters on a flat market, even with a zero threshold", () => {
    expect(momentumSignal([100, 101, 100], 2, 0).action).toBe("HOLD");
  });

  it("leaves an open position to its bracket", async () => {
    const market = { symbol: "AAPL", price: 110, bars: [bar(0, 100), bar(1, 110)], asOf: new Date() };
    const strategy = new RuleStrategy({ lookbackBars: 1, entryThresholdPct: 0 });
    expect((await strategy.decide(market, null)).action).toBe("OPEN_LONG");
    expect((await strategy.decide(market, { side: "long", qty: 1, entryPrice: 100 })).action).toBe("HOLD");
  });
});

describe("bracket plan", () => {
  it("buys whole shares for the position size with exits the configured percentages away", () => {
    expect(planBracket("long", 190, params, 10_000)).toEqual({ side: "long", qty: 5, takeProfit: 197.6, stopLoss: 186.2 });
    expect(planBracket("short", 190, params, 10_000)).toEqual({ side: "short", qty: 5, takeProfit: 182.4, stopLoss: 193.8 });
  });

  it("keeps both exits at least a cent from the price", () => {
    expect(planBracket("long", 10, { positionSize: 100, stopLossPct: 0.01, takeProfitPct: 0.01 }, 1_000)).toEqual({ side: "long", qty: 10, takeProfit: 10.01, stopLoss: 9.99 });
  });

  it("skips an entry the size or the buying power cannot pay for", () => {
    expect(planBracket("long", 2_000, params, 10_000)).toEqual({ skip: "position size $1000 buys no whole share at $2000" });
    expect(planBracket("long", 100, params, 500)).toEqual({ skip: "needs $1000 of buying power; $500 left" });
  });
});

describe("bar history", () => {
  it("keeps one bar per minute in order, the newest copy of a minute winning", () => {
    const history = new BarHistory(3);
    history.add("AAPL", [bar(1, 10), bar(2, 11)]);
    history.add("AAPL", [bar(2, 12), bar(0, 9), bar(3, 13)]);
    expect(history.snapshot("AAPL")?.bars.map((b) => b.c)).toEqual([10, 12, 13]);
    expect(history.snapshot("AAPL")?.price).toBe(13);
    expect(history.snapshot("MSFT")).toBeUndefined();
  });
});

describe("client order ids", () => {
  it("name a session's trade and round-trip, and ignore other sessions' orders", () => {
    expect(entryClientOrderId("trader-1", "BRK.B", 7)).toBe("trader-1:BRK.B:7");
    expect(parseClientOrderId("trader-1", "trader-1:BRK.B:7")).toEqual({ symbol: "BRK.B", tradeNo: 7, role: "entry" });
    expect(parseClientOrderId("trader-1", closeClientOrderId("trader-1", "AAPL", 3))).toEqual({ symbol: "AAPL", tradeNo: 3, role: "close" });
    expect(parseClientOrderId("trader-1", "trader-10:AAPL:1")).toBeNull();
    expect(parseClientOrderId("trader-1", "trader-1:AAPL:0")).toBeNull();
    expect(parseClientOrderId("trader-1", "6a1f0c52-8f6e-4a38-9d4e-1d2b7a3e5c91")).toBeNull();
  });
});
