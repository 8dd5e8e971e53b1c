import { describe, expect, it } from "vitest";
import {
  CalendarRangeError,
  latestSessionOpen,
  newYorkDate,
  phaseAt,
  settlementDate,
  tradingDay,
  tradingDaysBetween,
} from "../src/calendar.js";
import { sdk, startTestSimulator } from "./support.js";

const utc = (iso: string) => Date.parse(iso);

describe("NYSE calendar", () => {
  it("closes on 2026's exchange holidays, weekends included, and on days of mourning", () => {
    const closed = ["2026-01-01", "2026-01-19", "2026-02-16", "2026-04-03", "2026-05-25", "2026-06-19", "2026-07-03", "2026-09-07", "2026-11-26", "2026-12-25", "2026-01-03", "2026-01-04", "2025-01-09", "2018-12-05"];
    for (const date of closed) expect(tradingDay(date), date).toBeNull();
    const open = ["2026-01-02", "2026-04-02", "2026-10-12", "2026-11-11", "2026-07-02"];
    for (const date of open) expect(tradingDay(date), date).not.toBeNull();
    // 2026 has 251 sessions: 261 weekdays less 10 holidays (NYSE's published count for the year).
    expect(tradingDaysBetween("2026-01-01", "2026-12-31")).toHaveLength(251);
  });

  it("observes a Saturday holiday on Friday and a Sunday one on Monday, but not a Saturday New Year's Day", () => {
    expect(tradingDay("2027-12-24")).toBeNull(); // Christmas 2027 is a Saturday
    expect(tradingDay("2027-07-05")).toBeNull(); // Independence Day 2027 is a Sunday
    expect(tradingDay("2021-12-31")).not.toBeNull(); // New Year's Day 2022 is a Saturday: no observance
  });

  it("closes early at 13:00 New York time on the day after Thanksgiving, Christmas Eve and July 3", () => {
    expect(tradingDay("2026-11-27")).toMatchObject({ earlyClose: true, close: utc("2026-11-27T18:00:00Z"), sessionClose: utc("2026-11-27T22:00:00Z") });
    expect(tradingDay("2026-12-24")).toMatchObject({ earlyClose: true, close: utc("2026-12-24T18:00:00Z") });
    expect(tradingDay("2025-07-03")).toMatchObject({ earlyClose: true, close: utc("2025-07-03T17:00:00Z") });
    expect(tradingDay("2026-12-23")).toMatchObject({ earlyClose: false, close: utc("2026-12-23T21:00:00Z") });
  });

  it("follows daylight saving: 14:30 UTC opens in winter, 13:30 UTC from the second Sunday of March", () => {
    expect(tradingDay("2026-03-06")).toMatchObject({ open: utc("2026-03-06T14:30:00Z"), sessionOpen: utc("2026-03-06T09:00:00Z") });
    expect(tradingDay("2026-03-09")).toMatchObject({ open: utc("2026-03-09T13:30:00Z"), close: utc("2026-03-09T20:00:00Z") });
    expect(tradingDay("2026-11-02")).toMatchObject({ open: utc("2026-11-02T14:30:00Z") });
    expect(newYorkDate(utc("2026-01-06T03:00:00Z"))).toBe("2026-01-05");
  });

  it("tells the phase of an instant and the latest session open", () => {
    expect(phaseAt(utc("2026-01-05T08:59:00Z"))).toBe("closed");
    expect(phaseAt(utc("2026-01-05T09:00:00Z"))).toBe("pre");
    expect(phaseAt(utc("2026-01-05T14:30:00Z"))).toBe("regular");
    expect(phaseAt(utc("2026-01-05T21:00:00Z"))).toBe("post");
    expect(phaseAt(utc("2026-01-06T01:00:00Z"))).toBe("closed");
    expect(latestSessionOpen(utc("2026-01-04T12:00:00Z"))).toBe(utc("2026-01-02T14:30:00Z"));
    expect(latestSessionOpen(utc("2026-01-05T15:00:00Z"))).toBe(utc("2026-01-05T14:30:00Z"));
  });

  it("settles T+1 from 2024-05-28 and T+2 before, over trading days", () => {
    expect(settlementDate("2026-01-02")).toBe("2026-01-05");
    expect(settlementDate("2024-05-24")).toBe("2024-05-29");
  });

  it("refuses a year it does not cover, naming the range", () => {
    expect(() => tradingDay("2040-01-02")).toThrow(CalendarRangeError);
    expect(() => tradingDay("2040-01-02")).toThrow("covers 2013 to 2035");
  });
});

describe("clock and calendar endpoints through the official SDK", () => {
  it("agree with the calendar: the v2 and v3 clocks, /v2/calendar and /v3/calendar/NYSE", async () => {
    const sim = await startTestSimulator({ start: new Date("2026-11-27T17:55:00Z") });
    try {
      const api = sdk(sim.url);
      expect(await api.clock.legacyClock()).toMatchObject({
        isOpen: true,
        nextClose: new Date("2026-11-27T18:00:00Z"),
        nextOpen: new Date("2026-11-30T14:30:00Z"),
      });
      sim.control.advance(5);
      const [clock] = (await api.clock.clock()).clocks;
      expect(clock).toMatchObject({ phase: "post", isMarketDay: true, phaseUntil: new Date("2026-11-27T22:00:00Z"), nextMarketOpen: new Date("2026-11-30T14:30:00Z") });
      expect((await api.clock.legacyClock()).isOpen).toBe(false);

      const days = await api.calendar.legacyCalendar({ start: new Date("2026-11-25T00:00:00Z"), end: new Date("2026-11-30T00:00:00Z") });
      expect(days.map((day) => [day.date.toISOString().slice(0, 10), day.open, day.close, day.sessionOpen, day.sessionClose])).toEqual([
        ["2026-11-25", "09:30", "16:00", "0400", "2000"],
        ["2026-11-27", "09:30", "13:00", "0400", "1700"],
        ["2026-11-30", "09:30", "16:00", "0400", "2000"],
      ]);
      const v3 = await api.calendar.calendar({ market: "NYSE", start: new Date("2026-11-27T00:00:00Z"), end: new Date("2026-11-27T00:00:00Z") });
      expect(v3.calendar).toHaveLength(1);
      expect(v3.calendar[0]).toMatchObject({ coreStart: new Date("2026-11-27T14:30:00Z"), coreEnd: new Date("2026-11-27T18:00:00Z") });
    } finally {
      await sim.close();
    }
  });

  it("lets simulated time follow the calendar: after-hours bars to 20:00 New York time, none overnight or on the weekend, daily bars stamped at New York midnight", async () => {
    const sim = await startTestSimulator({ start: new Date("2026-01-02T20:50:00Z"), historyBars: 100 });
    try {
      const api = sdk(sim.url);
      sim.control.advance(60 * 24 * 3);
      expect(sim.control.now().toISOString()).toBe("2026-01-05T20:50:00.000Z");
      const minutes = (await api.stocks.stockBars({ symbols: "AAPL", timeframe: "1Min", start: new Date("2026-01-03T01:00:00Z"), end: new Date("2026-01-05T09:10:00Z"), limit: 10_000 })).bars.AAPL ?? [];
      expect(minutes.map((bar) => new Date(bar.t).toISOString())).toEqual(["2026-01-05T09:00:00.000Z", "2026-01-05T09:01:00.000Z", "2026-01-05T09:02:00.000Z", "2026-01-05T09:03:00.000Z", "2026-01-05T09:04:00.000Z", "2026-01-05T09:05:00.000Z", "2026-01-05T09:06:00.000Z", "2026-01-05T09:07:00.000Z", "2026-01-05T09:08:00.000Z", "2026-01-05T09:09:00.000Z", "2026-01-05T09:10:00.000Z"]);
      const daily = (await api.stocks.stockBars({ symbols: "AAPL", timeframe: "1Day", start: new Date("2026-01-02T00:00:00Z"), limit: 10 })).bars.AAPL ?? [];
      expect(daily.map((bar) => new Date(bar.t).toISOString())).toEqual(["2026-01-02T05:00:00.000Z", "2026-01-05T05:00:00.000Z"]);
    } finally {
      await sim.close();
    }
  });

  it("gives sparse minutes on the iex feed for a thinly traded symbol, and IEX's share of the volume", async () => {
    const sim = await startTestSimulator({ universe: { THIN: { price: 20, volume: 1_500 } }, historyBars: 400 });
    try {
      const api = sdk(sim.url);
      const query = { symbols: "THIN", timeframe: "1Min", start: new Date("2026-01-05T00:00:00Z"), limit: 10_000 } as const;
      const sip = (await api.stocks.stockBars({ ...query, feed: "sip" })).bars.THIN ?? [];
      const iex = (await api.stocks.stockBars({ ...query, feed: "iex" })).bars.THIN ?? [];
      expect(iex.length).toBeGreaterThan(0);
      expect(iex.length).toBeLessThan(sip.length * 0.6);
      const total = (bars: typeof sip) => bars.reduce((sum, bar) => sum + bar.v, 0);
      expect(total(iex)).toBeLessThan(total(sip) * 0.05);
    } finally {
      await sim.close();
    }
  });
});
