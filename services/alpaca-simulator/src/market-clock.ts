const DAY_MS = 86_400_000;
/** NYSE's regular session in UTC (14:30-21:00, standard time); only used to report the next open and close. */
const OPEN_MINUTE_UTC = 14 * 60 + 30;
const CLOSE_MINUTE_UTC = 21 * 60;

export interface ClockReading {
  timestamp: Date;
  isOpen: boolean;
  isMarketDay: boolean;
  nextOpen: Date;
  nextClose: Date;
}

const isWeekday = (ms: number) => ![0, 6].includes(new Date(ms).getUTCDay());

/** The first weekday instant strictly after `afterMs` at `minuteOfDay` (UTC). */
function nextSessionEdge(afterMs: number, minuteOfDay: number): Date {
  let day = Math.floor(afterMs / DAY_MS) * DAY_MS;
  for (;;) {
    const candidate = day + minuteOfDay * 60_000;
    if (candidate > afterMs && isWeekday(candidate)) return new Date(candidate);
    day += DAY_MS;
  }
}

/**
 * Whether the simulated market is open. It is a switch (open by default, so the simulator trades at any hour
 * of the real day), not a calendar: tests close it to see orders wait as `accepted` until it reopens. The
 * next open and close are reported from the regular session times, for display only.
 */
export class MarketClock {
  constructor(
    private readonly now: () => Date,
    private open: boolean,
  ) {}

  isOpen(): boolean {
    return this.open;
  }

  setOpen(open: boolean): void {
    this.open = open;
  }

  read(): ClockReading {
    const timestamp = this.now();
    const ms = timestamp.getTime();
    return {
      timestamp,
      isOpen: this.open,
      isMarketDay: isWeekday(ms),
      nextOpen: nextSessionEdge(ms, OPEN_MINUTE_UTC),
      nextClose: nextSessionEdge(ms, CLOSE_MINUTE_UTC),
    };
  }
}
