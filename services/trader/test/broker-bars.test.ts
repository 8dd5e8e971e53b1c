import { afterEach, describe, expect, it } from "vitest";
import { AlpacaBroker } from "../src/broker/alpaca-broker.js";
import type { RunningSimulator } from "@savepoint/alpaca-simulator";
import { sdk } from "@savepoint/alpaca-simulator/testing";
import { START, startTestSimulator, TEST_REQUESTS_PER_MINUTE } from "./support.js";

const MINUTE = 60_000;

/**
 * The warm-up's history read (barsSince) parses the raw JSON with JSON.parse, not through the SDK (lossless-json):
 * what it returns must be what the SDK's own parse of the same pages gives, every page of them (the SDK leaves
 * the multi-symbol endpoint's bar times as strings; the trader's schema makes them Dates either way).
 */
describe("recent bars from the broker", () => {
  let sim: RunningSimulator | undefined;
  afterEach(async () => {
    await sim?.close();
  });

  it("are the SDK's bars for every symbol, over every page (10,000 bars a page), times as Dates", async () => {
    // 120 symbols of the simulator's 96 minutes of history before START (extended hours included): 11,520 bars, two pages.
    const symbols = Array.from({ length: 120 }, (_, index) => `BAR${index}`);
    sim = await startTestSimulator({ universe: Object.fromEntries(symbols.map((symbol, index) => [symbol, { price: 20 + index }])) });
    const broker = new AlpacaBroker({ tradingUrl: sim.url, dataUrl: sim.url, keyId: "k", secret: "s", simulated: true, timeoutMs: 5_000, readRetries: 0, requestsPerMinute: TEST_REQUESTS_PER_MINUTE.trader });
    const start = new Date(START.getTime() - 240 * MINUTE);

    const history = await broker.barsSince(symbols, start);

    const expected = new Map<string, unknown[]>(symbols.map((symbol) => [symbol, []]));
    let pages = 0;
    let pageToken: string | undefined;
    do {
      const page = await sdk(sim.url).stocks.stockBars({ symbols: symbols.join(","), timeframe: "1Min", start, limit: 10_000, feed: "iex", pageToken });
      for (const [symbol, bars] of Object.entries(page.bars ?? {})) expected.get(symbol)!.push(...bars.map(({ t, o, h, l, c, v }) => ({ t: new Date(t), o, h, l, c, v })));
      pageToken = page.nextPageToken ?? undefined;
      pages += 1;
    } while (pageToken);
    expect(pages).toBe(2);
    expect([...history.keys()]).toEqual(symbols);
    expect(history).toEqual(expected);
    const times = history.get("BAR7")!.map((bar) => bar.t);
    expect(times.length).toBeGreaterThan(90);
    expect(times.every((time, index) => time instanceof Date && (index === 0 || time > times[index - 1]!))).toBe(true);
  });
});
