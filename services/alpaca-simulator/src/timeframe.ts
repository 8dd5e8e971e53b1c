import { newYorkDate, newYorkMidnight } from "./calendar.js";
import { roundTo } from "./numbers.js";
import { BAR_MS, type Bar } from "./price-model.js";

/** A bar size accepted by Alpaca's `timeframe` parameter, as a bucket width and alignment. */
export interface Timeframe {
  ms: number;
  /** Buckets start at multiples of `ms` after this instant. */
  alignMs: number;
  /**
   * Daily and weekly bars follow New York's calendar: Alpaca stamps a daily bar at midnight America/New_York
   * (04:00 or 05:00 UTC) and a weekly one at the midnight that starts its Monday.
   */
  calendar: "day" | "week" | null;
}

const UNITS: Record<string, { ms: number; max: number }> = {
  Min: { ms: BAR_MS, max: 59 },
  T: { ms: BAR_MS, max: 59 },
  Hour: { ms: 60 * BAR_MS, max: 23 },
  H: { ms: 60 * BAR_MS, max: 23 },
  Day: { ms: 1_440 * BAR_MS, max: 1 },
  D: { ms: 1_440 * BAR_MS, max: 1 },
  Week: { ms: 10_080 * BAR_MS, max: 1 },
  W: { ms: 10_080 * BAR_MS, max: 1 },
};

const FIRST_MONDAY_MS = Date.UTC(1970, 0, 5);

/** Parses "5Min", "1Hour", "1Day", "1Week" (and Alpaca's short forms "5T", "1H", "1D", "1W"). */
export function parseTimeframe(text: string): Timeframe | { error: string } {
  const match = /^(\d{1,2})([A-Za-z]+)$/.exec(text);
  const unit = match ? UNITS[match[2]!] : undefined;
  const amount = match ? Number(match[1]) : 0;
  if (!match || !unit) {
    const monthly = match && ["Month", "M"].includes(match[2]!);
    return {
      error: monthly
        ? "monthly bars are not simulated; use 1Min-59Min, 1Hour-23Hour, 1Day or 1Week"
        : `must be like 1Min, 15Min, 1Hour, 1Day or 1Week (got ${JSON.stringify(text)})`,
    };
  }
  if (amount < 1 || amount > unit.max) {
    return { error: `the amount of ${match[2]} must be between 1 and ${unit.max} (got ${JSON.stringify(text)})` };
  }
  const calendar = unit.ms === UNITS.Week!.ms ? "week" : unit.ms === UNITS.Day!.ms ? "day" : null;
  return { ms: amount * unit.ms, alignMs: calendar === "week" ? FIRST_MONDAY_MS : 0, calendar };
}

/** The start of the bucket of `timeframe` that contains `ms`. */
export function bucketStart(ms: number, timeframe: Timeframe): number {
  if (timeframe.calendar !== null) {
    const date = newYorkDate(ms);
    if (timeframe.calendar === "day") return newYorkMidnight(date);
    const mondayOffset = (new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7;
    return newYorkMidnight(new Date(Date.parse(`${date}T00:00:00Z`) - mondayOffset * 86_400_000).toISOString().slice(0, 10));
  }
  return Math.floor((ms - timeframe.alignMs) / timeframe.ms) * timeframe.ms + timeframe.alignMs;
}

/** Merges one-minute bars (oldest first) into bars of `timeframe`; volume-weighted price is re-weighted. */
export function aggregate(bars: readonly Bar[], timeframe: Timeframe): Bar[] {
  if (timeframe.ms === BAR_MS) return bars.map((bar) => ({ ...bar }));
  const merged: Bar[] = [];
  let notional = 0;
  for (const bar of bars) {
    const start = bucketStart(bar.t, timeframe);
    const current = merged.at(-1);
    if (current && current.t === start) {
      current.h = Math.max(current.h, bar.h);
      current.l = Math.min(current.l, bar.l);
      current.c = bar.c;
      current.v += bar.v;
      current.n += bar.n;
      notional += bar.vw * bar.v;
      current.vw = roundTo(notional / current.v, 4);
    } else {
      merged.push({ ...bar, t: start });
      notional = bar.vw * bar.v;
    }
  }
  return merged;
}
