import { describe, expect, it } from "vitest";
import type { Bar } from "../src/price-model.js";
import { aggregate, bucketStart, parseTimeframe, type Timeframe } from "../src/timeframe.js";

const MINUTE = 60_000;
const utc = (iso: string) => Date.parse(iso);
const timeframe = (text: string) => parseTimeframe(text) as Timeframe;

describe("timeframes", () => {
  it.each([
    { text: "1Min", ms: MINUTE, calendar: null },
    { text: "15Min", ms: 15 * MINUTE, calendar: null },
    { text: "59T", ms: 59 * MINUTE, calendar: null },
    { text: "1Hour", ms: 60 * MINUTE, calendar: null },
    { text: "4H", ms: 240 * MINUTE, calendar: null },
    { text: "1Day", ms: 1_440 * MINUTE, calendar: "day" },
    { text: "1D", ms: 1_440 * MINUTE, calendar: "day" },
    { text: "1Week", ms: 10_080 * MINUTE, calendar: "week" },
  ])("reads $text", ({ text, ms, calendar }) => {
    expect(parseTimeframe(text)).toMatchObject({ ms, calendar });
  });

  it.each([
    { text: "60Min", error: 'the amount of Min must be between 1 and 59 (got "60Min")' },
    { text: "0Hour", error: 'the amount of Hour must be between 1 and 23 (got "0Hour")' },
    { text: "2Day", error: 'the amount of Day must be between 1 and 1 (got "2Day")' },
    { text: "1Month", error: "monthly bars are not simulated; use 1Min-59Min, 1Hour-23Hour, 1Day or 1Week" },
    { text: "1M", error: "monthly bars are not simulated; use 1Min-59Min, 1Hour-23Hour, 1Day or 1Week" },
    { text: "5min", error: 'must be like 1Min, 15Min, 1Hour, 1Day or 1Week (got "5min")' },
    { text: "Min", error: 'must be like 1Min, 15Min, 1Hour, 1Day or 1Week (got "Min")' },
    { text: "100Min", error: 'must be like 1Min, 15Min, 1Hour, 1Day or 1Week (got "100Min")' },
  ])("refuses $text, saying what it accepts", ({ text, error }) => {
    expect(parseTimeframe(text)).toEqual({ error });
  });

  it.each([
    { name: "a 15-minute bucket", text: "15Min", at: "2026-01-05T14:44:59Z", start: "2026-01-05T14:30:00Z" },
    { name: "an hour", text: "1Hour", at: "2026-01-05T14:44:00Z", start: "2026-01-05T14:00:00Z" },
    { name: "a winter day at New York midnight (05:00 UTC)", text: "1Day", at: "2026-01-05T20:00:00Z", start: "2026-01-05T05:00:00Z" },
    { name: "a summer day at New York midnight (04:00 UTC)", text: "1Day", at: "2026-07-06T20:00:00Z", start: "2026-07-06T04:00:00Z" },
    { name: "a day that is still yesterday in New York", text: "1Day", at: "2026-01-06T03:00:00Z", start: "2026-01-05T05:00:00Z" },
    { name: "a week from its Monday", text: "1Week", at: "2026-01-09T20:00:00Z", start: "2026-01-05T05:00:00Z" },
    { name: "a week seen on Sunday", text: "1Week", at: "2026-01-11T20:00:00Z", start: "2026-01-05T05:00:00Z" },
  ])("starts $name", ({ text, at, start }) => {
    expect(bucketStart(utc(at), timeframe(text))).toBe(utc(start));
  });
});

describe("aggregating minute bars", () => {
  const bar = (minute: number, fields: Partial<Bar>): Bar => ({ t: utc("2026-01-05T14:30:00Z") + minute * MINUTE, o: 10, h: 10, l: 10, c: 10, v: 100, n: 1, vw: 10, ...fields });

  it("merges each bucket: first open, highest high, lowest low, last close, summed volume and trades, re-weighted VWAP", () => {
    const bars = [bar(0, { o: 10, h: 11, l: 9, c: 10.5, v: 100, vw: 10 }), bar(1, { o: 10.5, h: 12, l: 10, c: 11, v: 300, vw: 11, n: 2 }), bar(5, { o: 11, c: 11.2 })];
    expect(aggregate(bars, timeframe("5Min"))).toEqual([
      { t: utc("2026-01-05T14:30:00Z"), o: 10, h: 12, l: 9, c: 11, v: 400, n: 3, vw: 10.75 },
      { ...bars[2], t: utc("2026-01-05T14:35:00Z") },
    ]);
  });

  it("copies minute bars for 1Min, leaving the originals alone", () => {
    const bars = [bar(0, {}), bar(1, {})];
    const copied = aggregate(bars, timeframe("1Min"));
    expect(copied).toEqual(bars);
    copied[0]!.c = 99;
    expect(bars[0]!.c).toBe(10);
  });
});
