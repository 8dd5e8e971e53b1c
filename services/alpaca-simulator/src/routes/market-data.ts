import { hashSeed } from "@savepoint/shared";
import type { FastifyInstance } from "fastify";
import type { z } from "zod";
import { invalidRequest, notFound } from "../errors.js";
import type { Bar } from "../price-model.js";
import {
  barsQuerySchema,
  latestQuerySchema,
  multiBarsQuerySchema,
  multiLatestQuerySchema,
  parseInput,
  symbolParamSchema,
} from "../schemas.js";
import { newYorkDate, newYorkMidnight, phaseAt } from "../calendar.js";
import type { Simulation } from "../simulation.js";
import { aggregate, bucketStart } from "../timeframe.js";
import { barJson, tradeJson } from "../wire.js";

type SymbolParams = { Params: { symbol: string } };
type BarsQuery = z.output<typeof barsQuerySchema>;

const DAY_MS = 86_400_000;

/** Alpaca's market-data API (data.alpaca.markets) for stocks: latest and historical bars, latest trades. */
export function registerMarketDataRoutes(app: FastifyInstance, sim: Simulation): void {
  const { model } = sim;
  const knownSymbol = (params: unknown) => {
    const { symbol } = parseInput(symbolParamSchema, params, "symbol");
    if (!model.spec(symbol)) throw notFound(`no data for symbol ${symbol}: the simulator has ${model.symbols().join(", ")}`);
    return symbol;
  };
  const latestBar = (symbol: string, feed?: string) => {
    const bar = latestBarOf(sim, symbol, feed);
    return bar ? barJson(bar) : undefined;
  };
  const latestTrade = (symbol: string) => tradeJson(model.price(symbol), model.now(), model.now().getTime() / 60_000);

  app.get<SymbolParams>("/v2/stocks/:symbol/bars/latest", async (request) => {
    const { feed } = parseInput(latestQuerySchema, request.query, "latest bar query");
    const symbol = knownSymbol(request.params);
    const bar = latestBar(symbol, feed);
    if (!bar) throw notFound(`no bar for ${symbol} on the ${feed} feed in the last day`);
    return { symbol, bar };
  });

  app.get("/v2/stocks/bars/latest", async (request) => {
    const { symbols, feed } = parseInput(multiLatestQuerySchema, request.query, "latest bars query");
    const bars = symbols.filter((symbol) => model.spec(symbol)).map((symbol) => [symbol, latestBar(symbol, feed)] as const);
    return { bars: Object.fromEntries(bars.filter(([, bar]) => bar !== undefined)) };
  });

  app.get<SymbolParams>("/v2/stocks/:symbol/trades/latest", async (request) => {
    parseInput(latestQuerySchema, request.query, "latest trade query");
    const symbol = knownSymbol(request.params);
    return { symbol, trade: latestTrade(symbol) };
  });

  app.get("/v2/stocks/trades/latest", async (request) => {
    const { symbols } = parseInput(multiLatestQuerySchema, request.query, "latest trades query");
    return { trades: Object.fromEntries(symbols.filter((symbol) => model.spec(symbol)).map((symbol) => [symbol, latestTrade(symbol)])) };
  });

  app.get<SymbolParams>("/v2/stocks/:symbol/bars", async (request) => {
    const query = parseInput(barsQuerySchema, request.query, "bars query");
    const { symbol } = parseInput(symbolParamSchema, request.params, "symbol");
    const series = model.spec(symbol) ? barsFor(sim, symbol, query).map((bar) => ({ symbol, bar })) : [];
    const { items, nextPageToken } = paginate(series, query);
    return { symbol, bars: items.map(({ bar }) => barJson(bar)), next_page_token: nextPageToken };
  });

  app.get("/v2/stocks/bars", async (request) => {
    const query = parseInput(multiBarsQuerySchema, request.query, "bars query");
    const symbols = [...new Set(query.symbols)].filter((symbol) => model.spec(symbol)).sort();
    const series = symbols.flatMap((symbol) => barsFor(sim, symbol, query).map((bar) => ({ symbol, bar })));
    const { items, nextPageToken } = paginate(series, query);
    const bars: Record<string, unknown[]> = {};
    for (const { symbol, bar } of items) (bars[symbol] ??= []).push(barJson(bar));
    return { bars, next_page_token: nextPageToken };
  });
}

/**
 * Bars of `query.timeframe` starting in [start, end], in `query.sort` order. As on Alpaca, `start` defaults
 * to the beginning of the current (simulated, New York) day and `end` to now; nothing lies in the simulated
 * future. Minute and hour bars include pre-market and after-hours trading; daily and weekly bars are built from
 * the regular session and stamped at New York midnight. `feed=iex` gives IEX's share of the tape.
 */
function barsFor(sim: Simulation, symbol: string, query: BarsQuery): Bar[] {
  const now = sim.model.now().getTime();
  const start = query.start?.getTime() ?? newYorkMidnight(newYorkDate(now));
  const end = Math.min(query.end?.getTime() ?? now, now);
  let minutes = sim.model.bars(symbol, bucketStart(start, query.timeframe), end);
  if (query.feed === "iex") minutes = minutes.map((bar) => iexBar(symbol, bar)).filter((bar): bar is Bar => bar !== null);
  if (query.timeframe.calendar !== null && sim.clock.hours === "nyse") minutes = minutes.filter((bar) => phaseAt(bar.t) === "regular");
  const bars = aggregate(minutes, query.timeframe).filter((bar) => bar.t >= start && bar.t <= end);
  return query.sort === "desc" ? bars.reverse() : bars;
}

/**
 * IEX's share of consolidated volume, about 2-3% (Alpaca: the free plan's IEX feed "~2-3% of the market"); a
 * minute has an IEX bar only if at least one of its trades printed on IEX, so thinly traded minutes have none.
 */
const IEX_SHARE = 0.025;

/** The IEX-only bar of a consolidated minute bar, or null when no trade of the minute was on IEX. */
function iexBar(symbol: string, bar: Bar): Bar | null {
  const presence = 1 - Math.exp(-bar.n * IEX_SHARE);
  if (hashSeed(`iex:${symbol}:${bar.t}`) / 4_294_967_296 >= presence) return null;
  return { ...bar, v: Math.max(1, Math.round(bar.v * IEX_SHARE)), n: Math.max(1, Math.round(bar.n * IEX_SHARE)) };
}

/** The latest bar of the feed: for IEX the latest minute that printed there (looking back up to a day). */
function latestBarOf(sim: Simulation, symbol: string, feed: string | undefined): Bar | undefined {
  const latest = sim.model.latestBar(symbol);
  if (feed !== "iex" || !latest) return latest;
  const recent = sim.model.bars(symbol, latest.t - DAY_MS, latest.t);
  for (let index = recent.length - 1; index >= 0; index--) {
    const bar = iexBar(symbol, recent[index]!);
    if (bar) return bar;
  }
  return undefined;
}

/** A page of `limit` items; the token names the first item of the next page. */
function paginate<T extends { symbol: string; bar: Bar }>(items: T[], query: { limit: number; page_token?: string }) {
  const keyOf = (item: T) => Buffer.from(`${item.symbol}@${item.bar.t}`).toString("base64url");
  let first = 0;
  if (query.page_token !== undefined) {
    first = items.findIndex((item) => keyOf(item) === query.page_token);
    if (first < 0) throw invalidRequest(`page_token: ${JSON.stringify(query.page_token)} is not a token from a previous page of this query`);
  }
  const next = items[first + query.limit];
  return { items: items.slice(first, first + query.limit), nextPageToken: next ? keyOf(next) : null };
}
