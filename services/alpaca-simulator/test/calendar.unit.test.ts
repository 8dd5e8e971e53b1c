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
