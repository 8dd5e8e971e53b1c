import { listenOn, type Logger } from "@savepoint/shared";
import Fastify, { type FastifyReply, type FastifyRequest } from "fastify";
import { setTimeout as delay } from "node:timers/promises";
import { z } from "zod";
import { createControl, type SimulatorControl } from "./control.js";
import { AlpacaError, codeForStatus, malformedRequest, rateLimited, unauthorized } from "./errors.js";
import { FaultInjector, type RequestFailure } from "./faults.js";
import { DEFAULT_RATE_WINDOW_MS, DEFAULT_REQUESTS_PER_MINUTE, RateLimiter } from "./rate-limit.js";
import { RequestLog, type RequestRecord } from "./request-log.js";
import { registerAdminRoutes } from "./routes/admin.js";
import { registerMarketDataRoutes } from "./routes/market-data.js";
import { registerTradingRoutes } from "./routes/trading.js";
import { DEFAULT_LIFECYCLE } from "./broker.js";
import { latestSessionOpen } from "./calendar.js";
import { Simulation } from "./simulation.js";
import { DEFAULT_UNIVERSE, SYMBOL_PATTERN, type SymbolSpec } from "./universe.js";

export type { SimulatorControl, SimulatorState } from "./control.js";
export type { FaultSpec } from "./faults.js";

const symbolSpecSchema = z.object({
  price: z.number().positive(),
  volatility: z.number().positive().max(0.2).optional(),
  name: z.string().min(1).optional(),
  exchange: z.enum(["NASDAQ", "NYSE", "ARCA"]).optional(),
  shortable: z.boolean().optional(),
  volume: z.number().int().positive().optional(),
});

export const simulatorOptionsSchema = z.object({
  host: z.string().min(1).default("127.0.0.1"),
  /** 0 picks a free port (the default, for tests); the standalone simulator uses SIM_PORT. */
  port: z.number().int().min(0).max(65_535).default(0),
  /** Same seed, same prices: every symbol's walk is a function of the seed and the ticks applied. */
  seed: z.union([z.string().min(1), z.number()]).transform(String).default("42"),
  /** Simulated time at start; defaults to the real time, so bar timestamps look current. */
  start: z.union([z.date(), z.iso.datetime({ offset: true })]).transform((value) => new Date(value)).optional(),
  historyBars: z.number().int().min(1).max(500_000).default(1_440),
  retainBars: z.number().int().min(1).max(2_000_000).default(20_160),
  /** Symbols and their starting prices; a symbol of the default universe keeps its other traits. */
  universe: z.record(z.string().regex(SYMBOL_PATTERN, "must be an upper-case ticker such as AAPL"), symbolSpecSchema).optional(),
  initialCash: z.number().positive().default(100_000),
  multiplier: z.union([z.literal(1), z.literal(2), z.literal(4)]).default(2),
  /** `nyse`: the NYSE calendar (the default). `always_open`: a shortcut, every minute is a regular-session minute. */
  marketHours: z.enum(["nyse", "always_open"]).default("nyse"),
  /** Shortcut, off by default: orders route and fill within their request, cancels and replaces complete in theirs. */
  instantOrders: z.boolean().default(DEFAULT_LIFECYCLE.instantOrders),
  /** Simulated milliseconds before an order routes, a cancel completes, a replace completes (next clock step after). */
  routeAfterMs: z.number().int().min(0).default(DEFAULT_LIFECYCLE.routeAfterMs),
  cancelAfterMs: z.number().int().min(0).default(DEFAULT_LIFECYCLE.cancelAfterMs),
  replaceAfterMs: z.number().int().min(0).default(DEFAULT_LIFECYCLE.replaceAfterMs),
  /** Chance that an eligible fill is partial (Alpaca paper: 10%). */
  partialFillChance: z.number().min(0).max(1).default(DEFAULT_LIFECYCLE.partialFillChance),
  /** Share of a trade's volume one order may take; null (Alpaca paper) for no limit. */
  tradeVolumeShare: z.number().positive().max(1).nullable().default(DEFAULT_LIFECYCLE.tradeVolumeShare),
  /** Requests a minute per API key, as Alpaca's 200 by default; null is a shortcut with no limit. */
  requestsPerMinute: z.number().int().positive().nullable().default(DEFAULT_REQUESTS_PER_MINUTE),
  /** The rate limit's window in real milliseconds, Alpaca's minute by default; shorter is a shortcut, so a test meets the reset sooner. */
  rateLimitWindowMs: z.number().int().min(1_000).max(DEFAULT_RATE_WINDOW_MS).default(DEFAULT_RATE_WINDOW_MS),
  /** Real milliseconds between automatic ticks (one simulated minute each); 0 ticks only when told to. */
  tickIntervalMs: z.number().int().min(0).default(0),
});

export type SimulatorOptions = z.input<typeof simulatorOptionsSchema> & { logger?: Logger };

export interface RunningSimulator {
  /** Base URL for both APCA_API_BASE_URL and APCA_DATA_BASE_URL, e.g. http://127.0.0.1:8090 (no /v2). */
  url: string;
  port: number;
  control: SimulatorControl;
  close(): Promise<void>;
}

const FALLBACK_SPEC: Omit<SymbolSpec, "price" | "name"> = { volatility: 0.0015, exchange: "NASDAQ", shortable: true, volume: 20_000 };

function universeFrom(given: Record<string, z.output<typeof symbolSpecSchema>> | undefined): Record<string, SymbolSpec> {
  if (!given) return { ...DEFAULT_UNIVERSE };
  return Object.fromEntries(
    Object.entries(given).map(([symbol, spec]) => {
      const known = DEFAULT_UNIVERSE[symbol] ?? { ...FALLBACK_SPEC, name: `${symbol} (simulated)` };
      const defined = Object.fromEntries(Object.entries(spec).filter(([, value]) => value !== undefined));
      return [symbol, { ...known, ...defined } as SymbolSpec];
    }),
  );
}

/**
 * Simulated time starts at the open of the latest regular session (so `docker compose up` trades at any real
 * hour), then follows the calendar; with the market always open it starts now.
 */
function defaultStart(hours: "nyse" | "always_open", now: Date): Date {
  return hours === "nyse" ? new Date(latestSessionOpen(now.getTime())) : now;
}

const isApiPath = (path: string) => path.startsWith("/v2/") || path.startsWith("/v3/");
const isMarketDataPath = (path: string) => path.startsWith("/v2/stocks/");

/** The path of a request URL, percent-decoded (as the router matches it); a malformed escape stays as sent. */
function decodedPath(url: string): string {
  const raw = url.split("?")[0]!;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
const injectedBody = (status: number) => ({ code: codeForStatus(status), message: `simulated failure: HTTP ${status} injected by a simulator fault` });

/**
 * Starts an Alpaca-compatible paper broker: the trading API, the stock market-data API and the /_sim admin
 * API on one port. Point both of the SDK's hosts (trading and market data) at `url`.
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  const { logger, ...rest } = options;
  const parsed = simulatorOptionsSchema.safeParse(rest);
  if (!parsed.success) throw new Error(`invalid simulator options:\n${z.prettifyError(parsed.error)}`);
  const settings = parsed.data;
  const sim = new Simulation({
    ...settings,
    start: settings.start ?? defaultStart(settings.marketHours, new Date()),
    universe: universeFrom(settings.universe),
    lifecycle: {
      instantOrders: settings.instantOrders,
      routeAfterMs: settings.routeAfterMs,
      cancelAfterMs: settings.cancelAfterMs,
      replaceAfterMs: settings.replaceAfterMs,
      partialFillChance: settings.partialFillChance,
      tradeVolumeShare: settings.tradeVolumeShare,
    },
  });
  const faults = new FaultInjector();
  const requestLog = new RequestLog(5_000);
  const rateLimiter = settings.requestsPerMinute === null ? undefined : new RateLimiter(settings.requestsPerMinute, Date.now, settings.rateLimitWindowMs);
  const closing = new AbortController();

  const control = createControl(sim, faults, requestLog);

  const app = Fastify({ logger: false, forceCloseConnections: true });
  const inFlight = new WeakMap<FastifyRequest, { record: RequestRecord; after?: RequestFailure; latencyAfterMs: number }>();

  // Alpaca's clients send Content-Type: application/json on some bodiless requests; an empty body is no body.
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) => {
    if (body === "") return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch (error) {
      done(malformedRequest(`request body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });

  app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
    // Whether a request needs keys is decided by the route the router matched (it decodes the path), never by
    // the raw URL, so "/%762/account" is checked exactly as "/v2/account" is; an unmatched path by its decoded form.
    const path = request.routeOptions.url ?? decodedPath(request.url);
    if (!isApiPath(path)) return;
    const record = requestLog.start(request.method, request.url);
    const { latencyMs, latencyAfterMs, failure } = faults.forRequest(request.method, decodedPath(request.url));
    inFlight.set(request, { record, after: failure?.when === "after" ? failure : undefined, latencyAfterMs });
    if (latencyMs > 0) await delay(latencyMs, undefined, { signal: closing.signal });
    if (failure?.when === "before") {
      if (failure.kind === "disconnect") {
        record.status = 0;
        reply.hijack();
        request.raw.socket.destroy();
        return reply;
      }
      if (failure.retryAfterSeconds !== undefined) reply.header("retry-after", String(failure.retryAfterSeconds));
      return reply.code(failure.status).send(injectedBody(failure.status));
    }
    const keyId = request.headers["apca-api-key-id"];
    const secret = request.headers["apca-api-secret-key"];
    if (!keyId || !secret) {
      const error = unauthorized(
        "request is not authorized: send the APCA-API-KEY-ID and APCA-API-SECRET-KEY headers (the simulator accepts any non-empty values)",
      );
      return reply.code(error.status).send(error.body());
    }
    if (rateLimiter) {
      const decision = rateLimiter.take(`${isMarketDataPath(path) ? "data" : "trading"}:${String(keyId)}`);
      reply.header("x-ratelimit-limit", String(decision.limit));
      reply.header("x-ratelimit-remaining", String(decision.remaining));
      reply.header("x-ratelimit-reset", String(decision.resetSeconds));
      if (!decision.allowed) return reply.code(429).send(rateLimited().body());
    }
  });

  app.addHook("onSend", async (request, reply, payload) => {
    const entry = inFlight.get(request);
    // The request has taken effect; only its answer waits.
    if (entry && entry.latencyAfterMs > 0) await delay(entry.latencyAfterMs, undefined, { signal: closing.signal });
    const failure = entry?.after;
    if (!failure) return payload;
    if (failure.kind === "disconnect") {
      inFlight.get(request)!.record.status = 0;
      request.raw.socket.destroy();
      return payload;
    }
    if (failure.retryAfterSeconds !== undefined) reply.header("retry-after", String(failure.retryAfterSeconds));
    reply.code(failure.status).header("content-type", "application/json; charset=utf-8");
    return JSON.stringify(injectedBody(failure.status));
  });

  app.addHook("onResponse", async (request, reply) => {
    const entry = inFlight.get(request);
    if (entry && entry.record.status === null) entry.record.status = reply.statusCode;
  });

  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    if (error instanceof AlpacaError) return reply.code(error.status).send(error.body());
    const status = error.statusCode ?? 500;
    if (status < 500) return reply.code(status).send({ code: codeForStatus(status), message: error.message });
    logger?.error({ err: error, method: request.method, url: request.url }, "simulator request failed");
    return reply.code(500).send({ code: codeForStatus(500), message: `internal simulator error: ${error.message}` });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      code: 40410000,
      message: `no such endpoint: ${request.method} ${request.url.split("?")[0]}; the simulator serves Alpaca's /v2 trading and stock market-data paths, /v3/clock and /_sim/*`,
    }),
  );

  registerTradingRoutes(app, sim, faults);
  registerMarketDataRoutes(app, sim);
  registerAdminRoutes(app, control);

  // A port in use or privileged is a PortUnavailableError naming SIM_PORT, which runService prints as one line.
  const port = await listenOn(app, { host: settings.host, port: settings.port, setting: "SIM_PORT" });
  const ticker = settings.tickIntervalMs > 0 ? setInterval(() => sim.advance(1), settings.tickIntervalMs) : undefined;
  const urlHost = settings.host === "0.0.0.0" || settings.host === "::" ? "127.0.0.1" : settings.host;

  return {
    url: `http://${urlHost.includes(":") ? `[${urlHost}]` : urlHost}:${port}`,
    port,
    control,
    close: async () => {
      clearInterval(ticker);
      closing.abort();
      await app.close();
    },
  };
}
