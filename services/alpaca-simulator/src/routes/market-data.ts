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
  const latestBar = (symbol: string) => barJson(model.latestBar(symbol)!);
  const latestTrade = (symbol: string) => tradeJson(model.price(symbol), model.now(), model.now().getTime() / 60_000);

  app.get<SymbolParams>("/v2/stocks/:symbol/bars/latest", async (request) => {
    parseInput(latestQuerySchema, request.query, "latest bar query");
    const symbol = knownSymbol(request.params);
    return { symbol, bar: latestBar(symbol) };
  });

  app.get("/v2/stocks/bars/latest", async (request) => {
    const { symbols } = parseInput(multiLatestQuerySchema, request.query, "latest bars query");
    return { bars: Object.fromEntries(symbols.filter((symbol) => model.spec(symbol)).map((symbol) => [symbol, latestBar(symbol)])) };
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
 * to the beginning of the current (simulated, UTC) day and `end` to now; nothing lies in the simulated future.
 */
function barsFor(sim: Simulation, symbol: string, query: BarsQuery): Bar[] {
  const now = sim.model.now().getTime();
  const start = query.start?.getTime() ?? Math.floor(now / DAY_MS) * DAY_MS;
  const end = Math.min(query.end?.getTime() ?? now, now);
  const minutes = sim.model.bars(symbol, bucketStart(start, query.timeframe), end);
  const bars = aggregate(minutes, query.timeframe).filter((bar) => bar.t >= start && bar.t <= end);
  return query.sort === "desc" ? bars.reverse() : bars;
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
