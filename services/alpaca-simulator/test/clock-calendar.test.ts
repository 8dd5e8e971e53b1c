import { describe, expect, it } from "vitest";
import { sdk, startTestSimulator } from "./support.js";

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
