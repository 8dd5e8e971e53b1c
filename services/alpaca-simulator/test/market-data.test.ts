import { Alpaca, NotFoundError, TimeFrame, ValidationError } from "@alpacahq/alpaca-trade-api";
import { afterEach, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../src/server.js";
import { failureOf, sdk, START, startTestSimulator } from "./support.js";

const MINUTE = 60_000;

describe("simulator market data through the official SDK", () => {
  const running: RunningSimulator[] = [];
  const start = async (options: Parameters<typeof startTestSimulator>[0] = {}) => {
    const sim = await startTestSimulator(options);
    running.push(sim);
    return sim;
  };
  afterEach(async () => {
    await Promise.all(running.splice(0).map((sim) => sim.close()));
  });

  it("serves the latest bar of one symbol and of several, ending at the simulated now", async () => {
    const sim = await start();
    const api = sdk(sim.url);
    const latest = await api.stocks.stockLatestBarSingle({ symbol: "AAPL" });
    expect(latest.symbol).toBe("AAPL");
    expect(latest.bar).toMatchObject({ c: sim.control.price("AAPL"), t: new Date(START.getTime() - MINUTE) });
    expect(latest.bar.h).toBeGreaterThanOrEqual(Math.max(latest.bar.o, latest.bar.c));
    expect(latest.bar.l).toBeLessThanOrEqual(Math.min(latest.bar.o, latest.bar.c));

    sim.control.advance(2);
    const several = await api.stocks.stockLatestBars({ symbols: "AAPL,MSFT,NOPE" });
    expect(Object.keys(several.bars).sort()).toEqual(["AAPL", "MSFT"]);
    expect(several.bars.MSFT).toMatchObject({ c: sim.control.price("MSFT"), t: new Date(START.getTime() + MINUTE) });
    expect(await failureOf(api.stocks.stockLatestBarSingle({ symbol: "NOPE" }))).toBeInstanceOf(NotFoundError);
  });

  it("pages historical one-minute bars with next_page_token and aggregates them into larger timeframes", async () => {
    const sim = await start();
    const api = sdk(sim.url);
    const from = new Date(START.getTime() - 30 * MINUTE);
    const minutes = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const page = await api.stocks.stockBarSingle({ symbol: "AAPL", timeframe: "1Min", start: from, limit: 12, pageToken });
      minutes.push(...page.bars);
      pageToken = page.nextPageToken ?? undefined;
      pages += 1;
    } while (pageToken);
    expect(pages).toBe(3);
    expect(minutes.map((bar) => bar.t.getTime())).toEqual(Array.from({ length: 30 }, (_, index) => from.getTime() + index * MINUTE));

    const fives = (await api.stocks.stockBarSingle({ symbol: "AAPL", timeframe: "5Min", start: from })).bars;
    expect(fives).toHaveLength(6);
    const firstFive = minutes.slice(0, 5);
    expect(fives[0]).toMatchObject({
      t: from,
      o: firstFive[0]!.o,
      c: firstFive[4]!.c,
      h: Math.max(...firstFive.map((bar) => bar.h)),
      l: Math.min(...firstFive.map((bar) => bar.l)),
      v: firstFive.reduce((sum, bar) => sum + bar.v, 0),
    });

    const newestFirst = await api.stocks.stockBarSingle({ symbol: "AAPL", timeframe: "1Min", start: from, limit: 3, sort: "desc" });
    expect(newestFirst.bars.map((bar) => bar.t.getTime())).toEqual([1, 2, 3].map((back) => START.getTime() - back * MINUTE));
  });

  it("serves several symbols' bars keyed by symbol", async () => {
    const sim = await start();
    const api = sdk(sim.url);
    const response = await api.stocks.stockBars({ symbols: "MSFT,AAPL", timeframe: "1Hour", start: new Date(START.getTime() - 3 * 60 * MINUTE) });
    expect(Object.keys(response.bars).sort()).toEqual(["AAPL", "MSFT"]);
    expect(response.bars.AAPL!.map((bar) => bar.t)).toEqual(["2026-01-05T12:00:00.000Z", "2026-01-05T13:00:00.000Z", "2026-01-05T14:00:00.000Z"]);
    expect(response.nextPageToken).toBeNull();
  });

  it("gives identical bars to two simulators with the same seed and different ones to another seed", async () => {
    const [first, second, other] = await Promise.all([start({ seed: 7 }), start({ seed: 7 }), start({ seed: 8 })]);
    for (const sim of [first, second, other]) sim.control.advance(120);
    const barsOf = async (sim: RunningSimulator) =>
      (await sdk(sim.url).stocks.stockBars({ symbols: "AAPL,TSLA", timeframe: "1Min", start: new Date(START.getTime() - 600 * MINUTE), limit: 10_000 })).bars;
    const [a, b, c] = await Promise.all([barsOf(first), barsOf(second), barsOf(other)]);
    // From 04:00 New York time (pre-market) to 12:00: no bars before the extended session opens.
    expect(a.AAPL).toHaveLength(480);
    expect(b).toEqual(a);
    expect(c.AAPL).not.toEqual(a.AAPL);
  });

  it("rejects a malformed timeframe with 422 naming the parameter", async () => {
    const sim = await start();
    const error = await failureOf(sdk(sim.url).stocks.stockBarSingle({ symbol: "AAPL", timeframe: "1Fortnight" }));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toMatch(/^invalid bars query: timeframe: must be like 1Min/);
  });

  it("is reachable through the Alpaca facade with a fetchApi that sends both hosts to the simulator", async () => {
    const sim = await start();
    const toSimulator = (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url);
      return fetch(`${sim.url}${url.pathname}${url.search}`, init);
    };
    const alpaca = new Alpaca({ keyId: "sim-key", secret: "sim-secret", fetchApi: toSimulator, rateLimit: false, retry: { retryDelayMs: 5 } });
    expect((await alpaca.trading.account.getAccount()).cash).toBe("100000");
    expect(await alpaca.marketData.getLatestPrice("AAPL")).toBe(sim.control.price("AAPL"));
    const bars = await alpaca.marketData.getStockBarsFor("AAPL", { timeframe: TimeFrame.Hour, start: new Date(START.getTime() - 2 * 60 * MINUTE) });
    expect(bars.map((bar) => bar.timestamp.toISOString())).toEqual(["2026-01-05T13:00:00.000Z", "2026-01-05T14:00:00.000Z"]);
  });
});
