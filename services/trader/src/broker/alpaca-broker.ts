import { ApiError, FetchError, marketData, OrdersApi, trading } from "@alpacahq/alpaca-trade-api/rest";
import { describeIssues, type Logger } from "@savepoint/shared";
import { ZodError, type z } from "zod";
import type { BrokerConnection } from "../config.js";
import type { Broker } from "./broker.js";
import { BrokerRateLimitedError, BrokerReadError, BrokerRefusedError, BrokerUnavailableError, type BrokerRefusal } from "./errors.js";
import { isRateLimitRefusal, RateLimitBackoff, RateLimitedError } from "./rate-limit.js";
import {
  accountSchema,
  assetSchema,
  barsPageSchema,
  clockSchema,
  fillActivitiesSchema,
  latestBarsSchema,
  orderSchema,
  ordersSchema,
  positionsSchema,
  type Bar,
  type BracketRequest,
  type BrokerFill,
  type BrokerOrder,
  type MarketRequest,
  type ReplaceRequest,
  type StopRequest,
} from "./types.js";

/** Alpaca's largest page of orders. */
const ORDER_PAGE = 500;
const BAR_PAGE = 10_000;
/** Alpaca's largest page of account activities without `date` (alpaca-docs, account-activities, "Paging of Results"). */
const ACTIVITY_PAGE = 100;
/** Alpaca's free market-data plan serves the IEX feed only; the simulator accepts any. */
const DATA_FEED = "iex";

const money = (value: number) => String(Math.round(value * 100) / 100);

/** The SDK's retried statuses less 429, whose wait (up to a minute) RateLimitBackoff takes from the refusal. */
const RETRIED_STATUSES = [408, 425, 500, 502, 503, 504];

/**
 * The broker through the official SDK 4.x: API classes built on a Configuration whose basePath points at
 * Alpaca or the simulator. The SDK's rate limiter keeps each API (trading, market data) under the limit, and
 * after a 429 nothing is sent to that API until the refusal's reset (RateLimitBackoff). Safe reads are retried
 * by the SDK (408/425/5xx and network errors, with backoff); order submissions never are, except after a 429.
 * The SDK comes from its REST entry (`/rest`: all but streaming, about half the load time of a start); its
 * error classes are `instanceof` only of the entry they came from, so code and tests take them from this one.
 */
export class AlpacaBroker implements Broker {
  private readonly accounts: trading.AccountsApi;
  private readonly ordersApi: OrdersApi;
  private readonly positionsApi: trading.PositionsApi;
  private readonly clockApi: trading.ClockApi;
  private readonly assets: trading.AssetsApi;
  private readonly activities: trading.AccountActivitiesApi;
  private readonly stocks: marketData.StockApi;
  private readonly tradingLimit: RateLimitBackoff;
  private readonly dataLimit: RateLimitBackoff;

  constructor(connection: BrokerConnection, logger?: Logger) {
    const common: trading.ConfigurationParameters = {
      keyId: connection.keyId,
      secret: connection.secret,
      timeoutMs: connection.timeoutMs,
      retry: { maxRetries: connection.readRetries, retryDelayMs: 200, maxDelayMs: 2_000, retryableStatuses: RETRIED_STATUSES },
      // Alpaca's 200 a minute per key unless BROKER_REQUESTS_PER_MINUTE says otherwise; null only against the
      // simulator started without a limit (a shortcut), since Alpaca always limits.
      ...(connection.requestsPerMinute === null ? {} : { rateLimit: { maxRequests: connection.requestsPerMinute, intervalMs: 60_000 } }),
    };
    const tradingConfig = new trading.Configuration({ ...common, basePath: connection.tradingUrl });
    const dataConfig = new marketData.Configuration({ ...common, basePath: connection.dataUrl });
    this.accounts = new trading.AccountsApi(tradingConfig);
    this.ordersApi = new OrdersApi(tradingConfig);
    this.positionsApi = new trading.PositionsApi(tradingConfig);
    this.clockApi = new trading.ClockApi(tradingConfig);
    this.assets = new trading.AssetsApi(tradingConfig);
    this.activities = new trading.AccountActivitiesApi(tradingConfig);
    this.stocks = new marketData.StockApi(dataConfig);
    const onPause = (api: string) => (until: Date, refusal: ApiError) =>
      logger?.warn(
        { api, until: until.toISOString(), limit: refusal.rateLimit?.limit, status: refusal.status },
        `the broker's ${api} rate limit is reached (HTTP 429); sending it nothing until ${until.toISOString()}`,
      );
    this.tradingLimit = new RateLimitBackoff(onPause("trading API"));
    this.dataLimit = new RateLimitBackoff(onPause("market data API"));
  }

  account() {
    return read("GET /v2/account", accountSchema, () => this.tradingLimit.send(() => this.accounts.getAccount()));
  }

  clock() {
    return read("GET /v2/clock", clockSchema, () => this.tradingLimit.send(() => this.clockApi.legacyClock()));
  }

  async asset(symbol: string) {
    try {
      return await read(`GET /v2/assets/${symbol}`, assetSchema, () => this.tradingLimit.send(() => this.assets.getV2AssetsSymbolOrAssetId({ symbolOrAssetId: symbol })));
    } catch (error) {
      if (error instanceof BrokerReadError && error.status === 404) return null;
      throw error;
    }
  }

  positions() {
    return read("GET /v2/positions", positionsSchema, () => this.tradingLimit.send(() => this.positionsApi.getAllOpenPositions()));
  }

  order(orderId: string) {
    return read(`GET /v2/orders/${orderId}`, orderSchema, () => this.tradingLimit.send(() => this.ordersApi.getOrderByOrderID({ orderId, nested: true })));
  }

  async orderByClientOrderId(clientOrderId: string): Promise<BrokerOrder | null> {
    const operation = `GET /v2/orders:by_client_order_id?client_order_id=${clientOrderId}`;
    let found: BrokerOrder;
    try {
      found = await read(operation, orderSchema, () => this.tradingLimit.send(() => this.ordersApi.getOrderByClientOrderId({ clientOrderId })));
    } catch (error) {
      if (error instanceof BrokerReadError && error.status === 404) return null;
      throw error;
    }
    // This lookup never carries legs; the order itself, asked for nested, does.
    return found.orderClass === "bracket" ? this.order(found.id) : found;
  }

  ordersSince(after: Date, symbols?: string[]): Promise<BrokerOrder[]> {
    return this.listOrders("all", after, symbols);
  }

  openOrders(): Promise<BrokerOrder[]> {
    return this.listOrders("open", new Date(0));
  }

  private async listOrders(status: "all" | "open", after: Date, symbols?: string[]): Promise<BrokerOrder[]> {
    const seen = new Map<string, BrokerOrder>();
    let cursor = after;
    for (;;) {
      const page = await read(`GET /v2/orders?status=${status}&after=${cursor.toISOString()}`, ordersSchema, () =>
        this.tradingLimit.send(() => this.ordersApi.getAllOrders({ status, nested: true, direction: "asc", limit: ORDER_PAGE, after: cursor.toISOString(), symbols })),
      );
      const fresh = page.filter((order) => !seen.has(order.id));
      for (const order of fresh) seen.set(order.id, order);
      if (page.length < ORDER_PAGE) break;
      const last = page.at(-1)!.submittedAt;
      if (fresh.length === 0 || !last) {
        throw new BrokerReadError(
          "GET /v2/orders",
          `more than ${ORDER_PAGE} orders were submitted at ${cursor.toISOString()}; they cannot be paged through by submission time`,
        );
      }
      // `after` is exclusive and many orders can share a timestamp, so the next page starts just before it.
      cursor = new Date(last.getTime() - 1);
    }
    return [...seen.values()];
  }

  async fillsSince(after: Date): Promise<BrokerFill[]> {
    const fills: BrokerFill[] = [];
    let pageToken: string | undefined;
    for (;;) {
      // Read raw: SDK 4.0.2 parses every activity as a non-trade one, without its price, side and order_id.
      const page = await read(`GET /v2/account/activities/FILL?after=${after.toISOString()}`, fillActivitiesSchema, () =>
        this.tradingLimit.send(async () => {
          const response = await this.activities.getAccountActivitiesByActivityTypeRaw({ activityType: "FILL", after, direction: "asc", pageSize: ACTIVITY_PAGE, pageToken });
          return response.raw.json();
        }),
      );
      fills.push(...page);
      if (page.length < ACTIVITY_PAGE) return fills;
      // The next page begins after the activity this one ended with.
      pageToken = page.at(-1)!.id;
    }
  }

  async latestBars(symbols: string[]): Promise<Map<string, Bar>> {
    const { bars } = await read("GET /v2/stocks/bars/latest", latestBarsSchema, () =>
      this.dataLimit.send(() => this.stocks.stockLatestBars({ symbols: symbols.join(","), feed: DATA_FEED })),
    );
    return new Map(Object.entries(bars));
  }

  async barsSince(symbols: string[], start: Date): Promise<Map<string, Bar[]>> {
    const result = new Map<string, Bar[]>(symbols.map((symbol) => [symbol, []]));
    let pageToken: string | undefined;
    do {
      // Read raw: the SDK parses market data with lossless-json, a parser in JavaScript that took most of a
      // start's warm-up for 100 symbols' history (thousands of bars); JSON.parse gives the same numbers (prices
      // and volumes are far from where lossless-json would keep an integer as a string).
      const page = await read("GET /v2/stocks/bars", barsPageSchema, () =>
        this.dataLimit.send(async () => {
          const response = await this.stocks.stockBarsRaw({ symbols: symbols.join(","), timeframe: "1Min", start, limit: BAR_PAGE, feed: DATA_FEED, pageToken });
          return response.raw.json();
        }),
      );
      for (const [symbol, bars] of Object.entries(page.bars)) result.get(symbol)?.push(...bars);
      pageToken = page.next_page_token ?? undefined;
    } while (pageToken);
    return result;
  }

  submitBracket(request: BracketRequest): Promise<BrokerOrder> {
    return write(`POST /v2/orders (bracket ${request.clientOrderId})`, orderSchema, () => this.tradingLimit.send(() => this.ordersApi.bracket({
      symbol: request.symbol,
      qty: request.qty,
      side: request.side,
      // Good till canceled, so the protective legs outlive the trading day and the process.
      timeInForce: "gtc",
      takeProfit: { limitPrice: money(request.takeProfit) },
      stopLoss: { stopPrice: money(request.stopLoss) },
      clientOrderId: request.clientOrderId,
    })));
  }

  submitMarket(request: MarketRequest): Promise<BrokerOrder> {
    return write(`POST /v2/orders (market ${request.clientOrderId})`, orderSchema, () =>
      this.tradingLimit.send(() =>
        this.ordersApi.market({
          symbol: request.symbol,
          qty: request.qty,
          side: request.side,
          // Good till canceled, so a close placed late in the day does not expire at the close half done.
          timeInForce: "gtc",
          clientOrderId: request.clientOrderId,
        }),
      ),
    );
  }

  submitStop(request: StopRequest): Promise<BrokerOrder> {
    return write(`POST /v2/orders (stop ${request.clientOrderId})`, orderSchema, () =>
      this.tradingLimit.send(() =>
        this.ordersApi.stop({
          symbol: request.symbol,
          qty: request.qty,
          side: request.side,
          stopPrice: money(request.stopPrice),
          // Good till canceled: it protects the position until it fills, across days, not for one session.
          timeInForce: "gtc",
          clientOrderId: request.clientOrderId,
        }),
      ),
    );
  }

  replaceOrder(orderId: string, request: ReplaceRequest): Promise<BrokerOrder> {
    return write(`PATCH /v2/orders/${orderId} (${request.clientOrderId})`, orderSchema, () =>
      this.tradingLimit.send(() =>
        this.ordersApi.patchOrderByOrderId({ orderId, patchOrderRequest: { limitPrice: money(request.limitPrice), clientOrderId: request.clientOrderId } }),
      ),
    );
  }

  async cancelOrder(orderId: string): Promise<void> {
    await write(`DELETE /v2/orders/${orderId}`, null, () => this.tradingLimit.send(() => this.ordersApi.deleteOrderByOrderID({ orderId })));
  }
}

/** One read: the SDK call, then the parse; either failing is a BrokerReadError naming the request. */
async function read<S extends z.ZodType>(operation: string, schema: S, call: () => Promise<unknown>): Promise<z.output<S>> {
  let answer: unknown;
  try {
    answer = await call();
  } catch (error) {
    const { detail, status } = describeSdkFailure(error);
    if (error instanceof RateLimitedError) throw new BrokerReadError(operation, detail, 429, error.until);
    throw new BrokerReadError(operation, detail, status);
  }
  const parsed = schema.safeParse(answer);
  if (!parsed.success) throw new BrokerReadError(operation, describeSdkFailure(parsed.error).detail);
  return parsed.data;
}

/**
 * One request that changes something: the SDK call, then the parse of its answer (none for `schema` null). A
 * refusal is a BrokerRefusedError, a 429 a BrokerRateLimitedError; anything else, an unparseable answer
 * included, is a BrokerUnavailableError, since the broker may have acted on it.
 */
async function write<S extends z.ZodType>(operation: string, schema: S | null, call: () => Promise<unknown>): Promise<z.output<S>> {
  let answer: unknown;
  try {
    answer = await call();
  } catch (error) {
    throw classifySdkError(operation, error);
  }
  if (schema === null) return undefined as z.output<S>;
  const parsed = schema.safeParse(answer);
  if (!parsed.success) throw new BrokerUnavailableError(operation, describeSdkFailure(parsed.error).detail);
  return parsed.data;
}

/** Statuses that say nothing about whether the request was carried out: retry-style answers, not refusals. */
const TRANSIENT_STATUSES = new Set([408, 425]);

/**
 * The SDK's error as the port's: a 429, or a request the back-off held back after one, was not carried out
 * (Alpaca refuses a rate-limited request before acting on it); another answered 4xx (other than 408/425) is a
 * refusal, told apart by what the trader acts on; everything else leaves the outcome unknown.
 */
export function classifySdkError(operation: string, error: unknown): BrokerRefusedError | BrokerRateLimitedError | BrokerUnavailableError {
  const { detail, status } = describeSdkFailure(error);
  if (error instanceof RateLimitedError) return new BrokerRateLimitedError(operation, detail, error.until);
  if (isRateLimitRefusal(error)) return new BrokerRateLimitedError(operation, detail, new Date(Date.now() + (error.retryAfterMs ?? 0)));
  if (error instanceof ApiError && error.status >= 400 && error.status < 500 && !TRANSIENT_STATUSES.has(error.status)) {
    return new BrokerRefusedError(operation, refusalOf(error.status, error.message), error.status, error.code, error.message);
  }
  return new BrokerUnavailableError(operation, detail, status);
}

/**
 * Alpaca gives one code to most refusals of a status (40010001 for any invalid request, 42210000 for any
 * unprocessable one, 40310000 for any forbidden one), so the kinds the trader acts on are told by the message,
 * here and nowhere else: "client_order_id must be unique"; `order is already in "filled" state` (cancel or
 * replace of a final order); "insufficient qty available for order" (the 403 with held_for_orders);
 * "insufficient buying power".
 */
function refusalOf(status: number, message: string): BrokerRefusal {
  if (status === 404) return "not_found";
  if (/client_order_id must be unique/i.test(message)) return "duplicate_client_order_id";
  if (status === 403 && /insufficient qty/i.test(message)) return "held_for_orders";
  if (status === 403 && /insufficient buying power/i.test(message)) return "insufficient_buying_power";
  if (status === 422 && /already in "\w+" state|cannot be replaced until|not (cancelable|replaceable)/i.test(message)) return "not_open";
  return "invalid";
}

/** What went wrong in an SDK call, in one line, with Alpaca's status, code and message when it answered. */
export function describeSdkFailure(error: unknown): { detail: string; status?: number } {
  if (error instanceof ApiError) {
    const code = error.code === undefined ? "" : ` (code ${error.code})`;
    return { detail: `HTTP ${error.status}${code}: ${error.message}`, status: error.status };
  }
  if (error instanceof FetchError) {
    const cause = error.cause;
    return { detail: cause?.name === "TimeoutError" ? "timed out" : `network error: ${cause?.message ?? error.message}` };
  }
  if (error instanceof ZodError) return { detail: `unexpected response: ${describeIssues(error)}` };
  return { detail: error instanceof Error ? error.message : String(error) };
}
