import { describe, expect, it } from "vitest";
import type { Bar } from "../src/broker/types.js";
import { momentumSignal, RuleStrategy } from "../src/strategy/rule-strategy.js";

const bar = (minute: number, close: number): Bar => ({ t: new Date(Date.UTC(2026, 0, 5, 15, minute)), o: close, h: close, l: close, c: close, v: 100 });

describe("momentum signal", () => {
  it.each([
    { name: "holds until the lookback window is full", closes: [100, 101], lookback: 5, threshold: 0.1, action: "HOLD", reason: "warming up: 2 of 6 bars" },
    { name: "opens long at the threshold", closes: [100, 99, 100.2], lookback: 2, threshold: 0.2, action: "OPEN_LONG", reason: "momentum 0.200% over 2 bars" },
    { name: "opens long above the threshold", closes: [100, 103], lookback: 1, threshold: 2, action: "OPEN_LONG", reason: "momentum 3.000% over 1 bars" },
    { name: "opens short at the negative threshold", closes: [100, 101, 99.8], lookback: 2, threshold: 0.2, action: "OPEN_SHORT", reason: "momentum -0.200% over 2 bars" },
    { name: "holds between the thresholds", closes: [100, 101, 100.1], lookback: 2, threshold: 0.2, action: "HOLD", reason: "momentum 0.100% over 2 bars" },
    { name: "never enters on a flat market, even with a zero threshold", closes: [100, 101, 100], lookback: 2, threshold: 0, action: "HOLD", reason: "momentum 0.000% over 2 bars" },
    { name: "enters on any move with a zero threshold", closes: [100, 100.01], lookback: 1, threshold: 0, action: "OPEN_LONG", reason: "momentum 0.010% over 1 bars" },
    { name: "measures from the bar the window starts at, not the first one seen", closes: [50, 100, 100, 101], lookback: 2, threshold: 1, action: "OPEN_LONG", reason: "momentum 1.000% over 2 bars" },
  ])("$name", ({ closes, lookback, threshold, action, reason }) => {
    expect(momentumSignal(closes, lookback, threshold)).toEqual({ action, reason });
  });
});

describe("rule strategy", () => {
  const market = { symbol: "AAPL", price: 110, bars: [bar(0, 100), bar(1, 110)], asOf: new Date() };

  it("decides on the closes of the bars it is shown", async () => {
    expect(await new RuleStrategy({ lookbackBars: 1, entryThresholdPct: 0 }).decide(market, null)).toEqual({ action: "OPEN_LONG", reason: "momentum 10.000% over 1 bars" });
    expect((await new RuleStrategy({ lookbackBars: 1, entryThresholdPct: 20 }).decide(market, null)).action).toBe("HOLD");
  });

  it("leaves an open position to its bracket, whatever the momentum", async () => {
    const strategy = new RuleStrategy({ lookbackBars: 1, entryThresholdPct: 0 });
    expect(await strategy.decide(market, { side: "long", qty: 1, entryPrice: 100 })).toEqual({ action: "HOLD", reason: "holding; the bracket's legs manage the exit" });
    expect((await strategy.decide(market, { side: "short", qty: 1, entryPrice: 120 })).action).toBe("HOLD");
  });
});
