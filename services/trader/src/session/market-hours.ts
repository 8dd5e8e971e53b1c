import type { MarketClock } from "../broker/types.js";

/** A clock reading's broker time beside the local time it was taken at. */
interface Reading {
  brokerMs: number;
  localMs: number;
}

/**
 * With no measured pace, a closed market is looked at again this soon (local time) rather than slept through on
 * a guess: the broker's clock may run faster than this process's (the simulator runs a minute a second).
 */
export const UNMEASURED_STEP_MS = 1_000;
/** Clock readings this far apart (local time) measure the broker's pace; closer ones say too little. */
const MIN_PACE_SPAN_MS = 20;

/**
 * How fast the broker's clock runs against this process's, from its clock readings: Alpaca's runs at real time,
 * the simulator's at the pace it was started with, in steps of a simulated minute (and not at all while a test
 * moves it by hand). The pace is measured between moments the broker's time was first seen to change: from the
 * first change this process saw (so a clock that stood still before is not taken as slow) to the latest one (so
 * a reading within one of the simulator's minutes is not taken as a stopped clock).
 */
export class BrokerClockPace {
  private last: Reading | undefined;
  private firstChange: Reading | undefined;
  private previousChange: Reading | undefined;
  private lastChange: Reading | undefined;

  /** Records a reading of the broker's clock taken at `localMs` (local epoch milliseconds, the middle of the request). */
  observe(timestamp: Date, localMs: number): void {
    const reading = { brokerMs: timestamp.getTime(), localMs };
    if (this.last && reading.brokerMs !== this.last.brokerMs) {
      this.firstChange ??= reading;
      this.previousChange = this.lastChange;
      this.lastChange = reading;
    }
    this.last = reading;
  }

  /**
   * Broker milliseconds per local millisecond, and the local span it was measured over; undefined until the
   * broker's time has been seen changing twice, far enough apart. The rate is the faster of the whole span's and
   * the latest step's: a clock that sped up (a simulator whose process was held up for a while) is then met early
   * rather than late.
   */
  measured(): { rate: number; spanMs: number } | undefined {
    const whole = rateBetween(this.firstChange, this.lastChange);
    if (!whole) return undefined;
    const latest = rateBetween(this.previousChange, this.lastChange);
    return { rate: Math.max(whole.rate, latest?.rate ?? 0), spanMs: whole.spanMs };
  }
}

function rateBetween(from: Reading | undefined, to: Reading | undefined): { rate: number; spanMs: number } | undefined {
  if (!from || !to) return undefined;
  const spanMs = to.localMs - from.localMs;
  const brokerMs = to.brokerMs - from.brokerMs;
  if (spanMs < MIN_PACE_SPAN_MS || brokerMs <= 0) return undefined;
  return { rate: brokerMs / spanMs, spanMs };
}

/**
 * How long (local milliseconds) to sleep before looking at a closed market's clock again, aiming at its next
 * open at the broker's pace. A step lasts no longer than the span that pace was measured over, and its end is
 * the next measurement, so the span doubles with every step and an error in the pace (the jitter of a reading,
 * the simulator's one-minute steps) can make the trader wake late by about one reading's error at most. At real
 * time (Alpaca) after a day of ticking a night is two or three looks at the clock, the last one at the open.
 */
export function closedMarketStepMs(clock: Pick<MarketClock, "timestamp" | "nextOpen">, pace: BrokerClockPace): number {
  const untilOpenMs = Math.max(0, clock.nextOpen.getTime() - clock.timestamp.getTime());
  const measured = pace.measured();
  if (!measured) return Math.min(untilOpenMs, UNMEASURED_STEP_MS);
  return Math.min(untilOpenMs / measured.rate, measured.spanMs);
}
