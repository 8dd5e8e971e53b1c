import { newYorkDate, nextTradingDay, phaseAt, previousTradingDay, tradingDay, type SessionPhase } from "./calendar.js";

/**
 * Which hours the simulated market keeps. `nyse` (the default) follows the NYSE calendar: regular sessions,
 * pre-market and after-hours, weekends, holidays and early closes. `always_open` is a shortcut for tests
 * written against an instant broker: every minute is a regular-session minute.
 */
export type MarketHours = "nyse" | "always_open";

export interface ClockReading {
  timestamp: Date;
  isOpen: boolean;
  isMarketDay: boolean;
  phase: SessionPhase;
  /** When the current phase ends: the open, the close, the end of after-hours, or the next pre-market. */
  phaseUntil: Date;
  nextOpen: Date;
  nextClose: Date;
}

/** Share of a regular minute's volume traded in a pre-market or after-hours minute. */
export const EXTENDED_HOURS_ACTIVITY = 0.05;

/**
 * The market's hours at the simulated time. Besides the calendar, a test can force the market open or closed
 * (as a trading halt does) with `setOverride`, and hand it back to the calendar with `setOverride(null)`.
 */
export class MarketClock {
  private override: boolean | null = null;

  constructor(
    private readonly now: () => Date,
    readonly hours: MarketHours,
  ) {}

  /** The phase of the trading day an instant is in (the current one by default). */
  phase(ms = this.now().getTime()): SessionPhase {
    if (this.override !== null) return this.override ? "regular" : "closed";
    return this.hours === "always_open" ? "regular" : phaseAt(ms);
  }

  isOpen(): boolean {
    return this.phase() === "regular";
  }

  /** Share of a regular minute's trading that the minute starting at `ms` sees; 0: no trades, no bar. */
  activity(ms: number): number {
    if (this.hours === "always_open") return 1;
    const phase = phaseAt(ms);
    return phase === "regular" ? 1 : phase === "closed" ? 0 : EXTENDED_HOURS_ACTIVITY;
  }

  setOverride(open: boolean | null): void {
    this.override = open;
  }

  /** The New York date the simulated present trades on (UTC days when the market is always open). */
  tradingDate(ms = this.now().getTime()): string {
    return this.hours === "always_open" ? new Date(ms).toISOString().slice(0, 10) : newYorkDate(ms);
  }

  /** The end of the previous trading day's session: the UTC day's start when the market is always open. */
  previousSessionClose(): number {
    const ms = this.now().getTime();
    if (this.hours === "always_open") return Math.floor(ms / 86_400_000) * 86_400_000;
    const today = newYorkDate(ms);
    return previousTradingDay(today).close;
  }

  read(): ClockReading {
    const timestamp = this.now();
    const ms = timestamp.getTime();
    const date = newYorkDate(ms);
    const today = tradingDay(date);
    const phase = this.phase(ms);
    const upcoming = today && ms < today.open ? today : nextTradingDay(date);
    const current = today && ms < today.close ? today : upcoming;
    const nextSession = today && ms < today.sessionOpen ? today : nextTradingDay(date);
    const phaseUntil = { pre: today?.open, regular: today?.close, post: today?.sessionClose, closed: nextSession.sessionOpen }[phase];
    return {
      timestamp,
      isOpen: phase === "regular",
      isMarketDay: today !== null,
      phase,
      phaseUntil: new Date(phaseUntil ?? current.close),
      nextOpen: new Date(upcoming.open),
      nextClose: new Date(current.close),
    };
  }
}
