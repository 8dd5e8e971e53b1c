import { ApiError, FetchError, marketData, trading } from "@alpacahq/alpaca-trade-api/rest";
import { describeIssues, type MarketContext } from "@savepoint/shared";
import { z } from "zod";
import type { MarketDataSource, MarketSnapshot } from "./market-data.js";

/** Where the broker is: Alpaca (with keys) or the stack's Alpaca-compatible simulator. */
export interface BrokerEndpoint {
  tradingUrl: string;
  dataUrl: string;
  keyId: string;
  secret: string;
  timeoutMs: number;
  /** Retries of each read on 408/425/429/5xx and network errors (the SDK's own retry, safe verbs only). */
  readRetries: number;
  /** The bars whose closes the run reasons on, e.g. 1Min (as the trader decides) or 1Day. */
  barsTimeframe: string;
}

/** Bars asked for: enough for the analysis tool's default 20-close lookback, after holidays for daily bars. */
const RECENT_BARS = 30;
const DAILY = "1Day";
const CALENDAR_DAYS_BACK = 45;
const DAY_MS = 86_400_000;
/** Alpaca's free market-data plan serves the IEX feed only; the simulator accepts any. */
const DATA_FEED = "iex";

// SDK 4.x hands numbers over as strings or numbers and times as Date objects or ISO strings, depending on the call.
const decimal = z.union([z.string(), z.number()]).transform(Number).refine(Number.isFinite, "must be a decimal number");
const time = z.union([z.date(), z.iso.datetime({ offset: true })]).transform((value) => new Date(value));
const barSchema = z.object({ t: time, c: z.number().positive(), v: z.number().min(0) });
const latestBarSchema = z.object({ bar: barSchema });
const barsSchema = z.object({ bars: z.array(barSchema).nullable().transform((bars) => bars ?? []) });
const positionSchema = z.object({ qty: decimal, side: z.enum(["long", "short"]), avgEntryPrice: decimal });

/** A market read failed: the attempt fails (and is retried) rather than reason on prices it did not get. */
export class MarketDataError extends Error {
  override name = "MarketDataError";
}

const NOT_FOUND = Symbol("not found");

/** One read: the SDK call, then the parse. With `orNotFound`, a 404 answers NOT_FOUND instead of failing. */
async function read<S extends z.ZodType>(operation: string, schema: S, call: () => Promise<unknown>): Promise<z.output<S>>;
async function read<S extends z.ZodType>(
  operation: string,
  schema: S,
  call: () => Promise<unknown>,
  orNotFound: true,
): Promise<z.output<S> | typeof NOT_FOUND>;
async function read<S extends z.ZodType>(operation: string, schema: S, call: () => Promise<unknown>, orNotFound = false) {
  let answer: unknown;
  try {
    answer = await call();
  } catch (error) {
    if (orNotFound && error instanceof ApiError && error.status === 404) return NOT_FOUND;
    throw new MarketDataError(`${operation} failed: ${describeFailure(error)}`);
  }
  const parsed = schema.safeParse(answer);
  if (!parsed.success) throw new MarketDataError(`${operation} answered something unexpected: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

function describeFailure(error: unknown): string {
  if (error instanceof ApiError) return `HTTP ${error.status}: ${error.message}`;
  if (error instanceof FetchError) return `network error: ${error.cause?.message ?? error.message}`;
  return error instanceof Error ? error.message : String(error);
}

const sameUtcDay = (a: Date, b: Date) => a.toISOString().slice(0, 10) === b.toISOString().slice(0, 10);

/**
 * The market as the broker sees it now, through the official Alpaca SDK: the latest bar's close as the price,
 * the closes of the last bars of the configured timeframe, the previous close and volume from daily bars, and
 * the agent's position in the symbol as the broker holds it.
 * The job's marketContext is ignored: it is what the producer saw when it queued the job, maybe long ago.
 */
export class BrokerMarketData implements MarketDataSource {
  private readonly stocks: marketData.StockApi;
  private readonly positions: trading.PositionsApi;

  private readonly barsTimeframe: string;

  constructor(
    endpoint: BrokerEndpoint,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.barsTimeframe = endpoint.barsTimeframe;
    const common = {
      keyId: endpoint.keyId,
      secret: endpoint.secret,
      timeoutMs: endpoint.timeoutMs,
      retry: { maxRetries: endpoint.readRetries, retryDelayMs: 200, maxDelayMs: 2_000 },
    };
    this.stocks = new marketData.StockApi(new marketData.Configuration({ ...common, basePath: endpoint.dataUrl }));
    this.positions = new trading.PositionsApi(new trading.Configuration({ ...common, basePath: endpoint.tradingUrl }));
  }

  async refresh(symbol: string, _context: MarketContext): Promise<MarketSnapshot> {
    const asOf = this.now();
    const [latest, daily, recent, position] = await Promise.all([
      read(`GET /v2/stocks/${symbol}/bars/latest`, latestBarSchema, () => this.stocks.stockLatestBarSingle({ symbol, feed: DATA_FEED })),
      this.bars(symbol, DAILY, asOf),
      this.barsTimeframe === DAILY ? undefined : this.bars(symbol, this.barsTimeframe, asOf),
      this.position(symbol),
    ]);
    // Today's bar, while the session runs, is the day so far: its volume is today's, its close the latest price.
    const today = daily.at(-1) && sameUtcDay(daily.at(-1)!.t, latest.bar.t) ? daily.at(-1) : undefined;
    const completed = today ? daily.slice(0, -1) : daily;
    const averageVolume = completed.length ? completed.reduce((sum, bar) => sum + bar.v, 0) / completed.length : undefined;
    return {
      source: "broker",
      symbol,
      price: latest.bar.c,
      ...(completed.length ? { previousClose: completed.at(-1)!.c } : {}),
      ...(today ? { volume: today.v } : {}),
      ...(averageVolume ? { averageVolume: Math.round(averageVolume) } : {}),
      recentCloses: (recent ?? completed).map((bar) => bar.c),
      position,
      quotedAt: latest.bar.t.toISOString(),
      asOf: asOf.toISOString(),
    };
  }

  /** The last RECENT_BARS bars of `timeframe`, oldest first. */
  private async bars(symbol: string, timeframe: string, asOf: Date) {
    const page = await read(`GET /v2/stocks/${symbol}/bars?timeframe=${timeframe}`, barsSchema, () =>
      this.stocks.stockBarSingle({
        symbol,
        timeframe,
        start: new Date(asOf.getTime() - CALENDAR_DAYS_BACK * DAY_MS),
        limit: RECENT_BARS,
        sort: "desc",
        feed: DATA_FEED,
      }),
    );
    return [...page.bars].sort((a, b) => a.t.getTime() - b.t.getTime()).slice(-RECENT_BARS);
  }

  /** The broker's position in the symbol; its 404 ("position does not exist") is an answer: flat. */
  private async position(symbol: string): Promise<MarketSnapshot["position"]> {
    const held = await read(`GET /v2/positions/${symbol}`, positionSchema, () => this.positions.getOpenPosition({ symbolOrAssetId: symbol }), true);
    if (held === NOT_FOUND) return null;
    // Alpaca signs a short position's quantity ("-4"); `side` says the same.
    return { side: held.side, qty: Math.abs(held.qty), entryPrice: held.avgEntryPrice };
  }
}
