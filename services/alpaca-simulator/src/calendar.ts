/**
 * The NYSE trading calendar in America/New_York, as Alpaca's `/v2/calendar` and `/v2/clock` report it.
 *
 * No maintained calendar package exists on the npm registry (`nyse-holidays`, the only NYSE one, has a single
 * release, no early closes and no special closures), so the rules are embedded here. Sources: NYSE's holiday and
 * early-close schedule (nyse.com/markets/hours-calendars, NYSE Rule 7.2) and the XNYS rules of the maintained
 * Python package exchange_calendars (us_holidays.py: observance rules, early closes, national days of mourning).
 *
 * - Holidays: New Year's Day (a Sunday is observed on Monday; a Saturday is not observed), Martin Luther King Jr.
 *   Day, Washington's Birthday, Good Friday, Memorial Day, Juneteenth (from 2022), Independence Day, Labor Day,
 *   Thanksgiving, Christmas (a Saturday holiday is observed on Friday, a Sunday one on Monday).
 * - Early closes at 13:00: July 3 when Independence Day falls Tuesday to Friday (from 2013), the day after
 *   Thanksgiving, and December 24 when it falls Monday to Thursday.
 * - Special closures: national days of mourning (2018-12-05 George H. W. Bush, 2025-01-09 Jimmy Carter).
 *
 * Years after the last published NYSE schedule follow the same rules, which NYSE has kept since 2022.
 */

export const FIRST_YEAR = 2013;
export const LAST_YEAR = 2035;

const SPECIAL_CLOSURES: ReadonlySet<string> = new Set(["2018-12-05", "2025-01-09"]);

const DAY_MS = 86_400_000;

/** One trading day: instants in epoch milliseconds, `date` as NYSE names it (YYYY-MM-DD in New York). */
export interface TradingDay {
  date: string;
  /** Regular session: 09:30 to 16:00 (13:00 on early-close days). */
  open: number;
  close: number;
  /** Alpaca's extended session: pre-market from 04:00, after-hours until 20:00 (17:00 after an early close). */
  sessionOpen: number;
  sessionClose: number;
  earlyClose: boolean;
}

export class CalendarRangeError extends Error {
  override name = "CalendarRangeError";
}

const pad = (value: number) => String(value).padStart(2, "0");
const isoDate = (year: number, month: number, day: number) => `${year}-${pad(month)}-${pad(day)}`;
/** Day of the week of a calendar date, 0 = Sunday. */
const weekday = (year: number, month: number, day: number) => new Date(Date.UTC(year, month - 1, day)).getUTCDay();

/** The `nth` (1-based) `dayOfWeek` of a month; `nth = -1` is the last one. */
function nthWeekday(year: number, month: number, dayOfWeek: number, nth: number): number {
  if (nth > 0) {
    const first = weekday(year, month, 1);
    return 1 + ((dayOfWeek - first + 7) % 7) + (nth - 1) * 7;
  }
  const lastDay = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const last = weekday(year, month, lastDay);
  return lastDay - ((last - dayOfWeek + 7) % 7);
}

/** Easter Sunday (anonymous Gregorian algorithm), as [month, day]. */
function easter(year: number): [number, number] {
  const a = year % 19;
  const b = Math.floor(year / 100);
  const c = year % 100;
  const d = Math.floor(b / 4);
  const e = b % 4;
  const f = Math.floor((b + 8) / 25);
  const g = Math.floor((b - f + 1) / 3);
  const h = (19 * a + b - d - g + 15) % 30;
  const i = Math.floor(c / 4);
  const k = c % 4;
  const l = (32 + 2 * e + 2 * i - h - k) % 7;
  const m = Math.floor((a + 11 * h + 22 * l) / 451);
  const month = Math.floor((h + l - 7 * m + 114) / 31);
  return [month, ((h + l - 7 * m + 114) % 31) + 1];
}

/** A fixed-date holiday moved off a weekend: Saturday to Friday, Sunday to Monday. */
function nearestWeekday(year: number, month: number, day: number): string {
  const shifted = new Date(Date.UTC(year, month - 1, day));
  const dow = shifted.getUTCDay();
  if (dow === 6) shifted.setUTCDate(day - 1);
  if (dow === 0) shifted.setUTCDate(day + 1);
  return shifted.toISOString().slice(0, 10);
}

interface YearRules {
  holidays: Set<string>;
  earlyCloses: Set<string>;
}

const yearCache = new Map<number, YearRules>();

function rulesFor(year: number): YearRules {
  const cached = yearCache.get(year);
  if (cached) return cached;
  const holidays = new Set<string>();
  if (weekday(year, 1, 1) === 0) holidays.add(isoDate(year, 1, 2));
  else if (weekday(year, 1, 1) !== 6) holidays.add(isoDate(year, 1, 1));
  holidays.add(isoDate(year, 1, nthWeekday(year, 1, 1, 3)));
  holidays.add(isoDate(year, 2, nthWeekday(year, 2, 1, 3)));
  const [easterMonth, easterDay] = easter(year);
  holidays.add(new Date(Date.UTC(year, easterMonth - 1, easterDay - 2)).toISOString().slice(0, 10));
  holidays.add(isoDate(year, 5, nthWeekday(year, 5, 1, -1)));
  if (year >= 2022) holidays.add(nearestWeekday(year, 6, 19));
  holidays.add(nearestWeekday(year, 7, 4));
  holidays.add(isoDate(year, 9, nthWeekday(year, 9, 1, 1)));
  const thanksgiving = nthWeekday(year, 11, 4, 4);
  holidays.add(isoDate(year, 11, thanksgiving));
  holidays.add(nearestWeekday(year, 12, 25));
  for (const closure of SPECIAL_CLOSURES) if (closure.startsWith(`${year}-`)) holidays.add(closure);

  const earlyCloses = new Set<string>();
  const july4 = weekday(year, 7, 4);
  if (july4 >= 2 && july4 <= 5) earlyCloses.add(isoDate(year, 7, 3));
  earlyCloses.add(isoDate(year, 11, thanksgiving + 1));
  const christmasEve = weekday(year, 12, 24);
  if (christmasEve >= 1 && christmasEve <= 4) earlyCloses.add(isoDate(year, 12, 24));

  const rules = { holidays, earlyCloses };
  yearCache.set(year, rules);
  return rules;
}

const newYorkParts = new Intl.DateTimeFormat("en-US", {
  timeZone: "America/New_York",
  hourCycle: "h23",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
});

const HOUR_MS = 3_600_000;
/** New York's offset from UTC by UTC hour: daylight saving changes on the hour, so an hour has one offset. */
const offsetCache = new Map<number, number>();

/** Milliseconds New York's wall clock is behind UTC at an instant (Intl once per hour, then cached). */
function newYorkOffsetMs(ms: number): number {
  const hour = Math.floor(ms / HOUR_MS);
  let offset = offsetCache.get(hour);
  if (offset === undefined) {
    const at = hour * HOUR_MS;
    const parts = Object.fromEntries(newYorkParts.formatToParts(new Date(at)).map((part) => [part.type, part.value]));
    offset = at - Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute));
    offsetCache.set(hour, offset);
  }
  return offset;
}

/** New York's wall clock at an instant: [year, month, day, hour, minute]. */
function newYorkWallClock(ms: number): [number, number, number, number, number] {
  const local = new Date(ms - newYorkOffsetMs(ms));
  return [local.getUTCFullYear(), local.getUTCMonth() + 1, local.getUTCDate(), local.getUTCHours(), local.getUTCMinutes()];
}

/** The instant at which New York's wall clock shows `date` `hour`:`minute` (never inside a DST gap here). */
export function newYorkTime(date: string, hour: number, minute: number): number {
  const [year, month, day] = date.split("-").map(Number) as [number, number, number];
  const asUtc = Date.UTC(year, month - 1, day, hour, minute);
  let guess = asUtc + 5 * 3_600_000;
  for (let attempt = 0; attempt < 2; attempt++) {
    const [y, mo, d, h, mi] = newYorkWallClock(guess);
    guess += asUtc - Date.UTC(y, mo - 1, d, h, mi);
  }
  return guess;
}

/** Minutes New York is behind UTC at an instant: 300 in winter (EST), 240 in summer (EDT). */
export const newYorkOffsetMinutes = (ms: number): number => newYorkOffsetMs(ms) / 60_000;

/** The New York calendar date (YYYY-MM-DD) of an instant. */
export function newYorkDate(ms: number): string {
  const [year, month, day] = newYorkWallClock(ms);
  return isoDate(year, month, day);
}

/** Midnight in New York at the start of `date`: where Alpaca stamps a daily bar. */
export const newYorkMidnight = (date: string): number => newYorkTime(date, 0, 0);

function checkYear(year: number): void {
  if (year < FIRST_YEAR || year > LAST_YEAR) {
    throw new CalendarRangeError(`the simulator's NYSE calendar covers ${FIRST_YEAR} to ${LAST_YEAR}; ${year} is outside it`);
  }
}

const dayCache = new Map<string, TradingDay | null>();

/** The trading day on `date` (YYYY-MM-DD), or null on a weekend, holiday or special closure. */
export function tradingDay(date: string): TradingDay | null {
  const cached = dayCache.get(date);
  if (cached !== undefined) return cached;
  const [year, month, day] = date.split("-").map(Number) as [number, number, number];
  checkYear(year);
  const dow = weekday(year, month, day);
  const rules = rulesFor(year);
  let result: TradingDay | null = null;
  if (dow !== 0 && dow !== 6 && !rules.holidays.has(date)) {
    const earlyClose = rules.earlyCloses.has(date);
    result = {
      date,
      open: newYorkTime(date, 9, 30),
      close: newYorkTime(date, earlyClose ? 13 : 16, 0),
      sessionOpen: newYorkTime(date, 4, 0),
      sessionClose: newYorkTime(date, earlyClose ? 17 : 20, 0),
      earlyClose,
    };
  }
  dayCache.set(date, result);
  return result;
}

const nextDate = (date: string, days = 1) => new Date(Date.parse(`${date}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);

/** Trading days from `first` to `last` (dates, inclusive), oldest first. */
export function tradingDaysBetween(first: string, last: string): TradingDay[] {
  const days: TradingDay[] = [];
  for (let date = first; date <= last; date = nextDate(date)) {
    const day = tradingDay(date);
    if (day) days.push(day);
  }
  return days;
}

/** The first trading day strictly after `date`. */
export function nextTradingDay(date: string): TradingDay {
  for (let candidate = nextDate(date); ; candidate = nextDate(candidate)) {
    const day = tradingDay(candidate);
    if (day) return day;
  }
}

/** The last trading day strictly before `date`. */
export function previousTradingDay(date: string): TradingDay {
  for (let candidate = nextDate(date, -1); ; candidate = nextDate(candidate, -1)) {
    const day = tradingDay(candidate);
    if (day) return day;
  }
}

/**
 * Settlement of a trade on `date`: T+1 from 2024-05-28 (SEC rule 15c6-1 as amended), T+2 before, counted in NYSE
 * trading days (the bank holidays on which NYSE trades, Columbus and Veterans Day, are not skipped).
 */
export function settlementDate(date: string): string {
  let settled = date;
  for (let day = 0; day < (date >= "2024-05-28" ? 1 : 2); day++) settled = nextTradingDay(settled).date;
  return settled;
}

/** What part of the trading day an instant is in. */
export type SessionPhase = "pre" | "regular" | "post" | "closed";

export function phaseAt(ms: number): SessionPhase {
  const day = tradingDay(newYorkDate(ms));
  if (!day || ms < day.sessionOpen || ms >= day.sessionClose) return "closed";
  if (ms < day.open) return "pre";
  return ms < day.close ? "regular" : "post";
}

/** The open of the latest regular session that opened at or before `ms` (the simulator's default start). */
export function latestSessionOpen(ms: number): number {
  const today = tradingDay(newYorkDate(ms));
  if (today && today.open <= ms) return today.open;
  return previousTradingDay(newYorkDate(ms)).open;
}

