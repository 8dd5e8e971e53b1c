import { describe, expect, it } from "vitest";
import type { Bar } from "../src/broker/types.js";
import { BarHistory } from "../src/strategy/bar-history.js";

const bar = (minute: number, close: number): Bar => ({ t: new Date(Date.UTC(2026, 0, 5, 15, minute)), o: close, h: close, l: close, c: close, v: 100 });

describe("bar history", () => {
  it.each([
    { name: "keeps bars oldest first", keep: 5, batches: [[bar(1, 10), bar(2, 11)]], closes: [10, 11] },
    { name: "the newest copy of a minute wins", keep: 5, batches: [[bar(1, 10), bar(2, 11)], [bar(2, 12)]], closes: [10, 12] },
    { name: "a late bar is put in its place", keep: 5, batches: [[bar(1, 10), bar(3, 13)], [bar(2, 12), bar(0, 9)]], closes: [9, 10, 12, 13] },
    { name: "keeps only the newest bars", keep: 3, batches: [[bar(1, 10), bar(2, 11)], [bar(2, 12), bar(0, 9), bar(3, 13)]], closes: [10, 12, 13] },
  ])("$name", ({ keep, batches, closes }) => {
    const history = new BarHistory(keep);
    for (const batch of batches) history.add("AAPL", batch);
    const snapshot = history.snapshot("AAPL");
    expect(snapshot?.bars.map((b) => b.c)).toEqual(closes);
    expect(snapshot?.price).toBe(closes.at(-1));
    expect(snapshot?.asOf).toEqual(snapshot?.bars.at(-1)?.t);
  });

  it("knows nothing of a symbol before its first bar, and keeps symbols apart", () => {
    const history = new BarHistory(3);
    history.add("AAPL", [bar(1, 10)]);
    expect(history.snapshot("MSFT")).toBeUndefined();
    history.add("MSFT", [bar(1, 400)]);
    expect(history.snapshot("AAPL")?.price).toBe(10);
  });

  it("hands out a copy, which later bars do not change", () => {
    const history = new BarHistory(3);
    history.add("AAPL", [bar(1, 10)]);
    const before = history.snapshot("AAPL")!;
    history.add("AAPL", [bar(2, 11)]);
    expect(before.bars).toHaveLength(1);
  });
});
