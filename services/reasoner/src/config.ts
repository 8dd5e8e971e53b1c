import { alpacaEndpoint, alpacaEnvShape, commonEnvSchema, envFlag, envInt, MAX_ITERATIONS, MIN_ITERATIONS, port, refineAlpacaKeys } from "@savepoint/shared";
import { z } from "zod";
import type { BrokerEndpoint } from "./tools/broker-market-data.js";

const positiveInt = (max: number) => envInt(1, max);

/** Where the SDK goes when no ANTHROPIC_API_KEY is set: the local model server (`npm run model-server`). */
export const LOCAL_MODEL_SERVER_URL = "http://127.0.0.1:8091";
/** Sent as the API key to the local model server, which accepts any key unless it is given one. */
export const LOCAL_MODEL_SERVER_KEY = "local-model-server";

/** The reasoner's environment: every variable is optional and defaults to a local setup. */
export const reasonerEnvSchema = commonEnvSchema.extend({
  HTTP_PORT: port().default(8083),
  /** Runs one process works on at once. Runs mostly wait on the model, so this can be well above the core count. */
  REASONER_CONCURRENCY: positiveInt(1_000).default(8),
  /** Iterations when a job does not say (a job may ask for up to 500). */
  REASONER_MAX_ITERATIONS: z.coerce.number().int().min(MIN_ITERATIONS).max(MAX_ITERATIONS).default(12),
  /** A checkpoint older than this is not resumed: the market it reasoned about is gone. */
  REASONER_CHECKPOINT_TTL_MS: positiveInt(30 * 24 * 3_600_000).default(3_600_000),
  /** How long a job stays owned by a worker that stopped renewing it (crashed) before another takes it over. */
  REASONER_LOCK_DURATION_MS: positiveInt(600_000).default(30_000),
  /** Crashes (stalls) a run survives before it is failed; shutdowns do not count. */
  REASONER_MAX_STALLED_COUNT: positiveInt(1_000).default(5),
  /** How long a confirmed checkpoint save, or a state request, may take. */
  CHECKPOINT_TIMEOUT_MS: positiveInt(120_000).default(10_000),
  ANTHROPIC_API_KEY: z.string().optional(),
  ANTHROPIC_BASE_URL: z.url({ error: "must be a URL such as https://api.anthropic.com" }).optional(),
  ANTHROPIC_MODEL: z.string().min(1).default("claude-sonnet-5-5"),
  MODEL_MAX_TOKENS: positiveInt(64_000).default(1_024),
  /** One model call's deadline; a call that runs over is retried like a 529. */
  MODEL_TIMEOUT_MS: positiveInt(600_000).default(60_000),
  /**
   * Ask for answers streamed over server-sent events (`messages.stream()`) rather than in one piece. Streamed, an
   * answer complete up to its end marker when a shutdown aborts the call is kept rather than asked for again.
   */
  MODEL_STREAMING: envFlag().default(false),
  /** Retries of one model call on 429, 529, 5xx, timeouts and dropped connections. */
  MODEL_MAX_RETRIES: z.coerce.number().int().min(0).max(20).default(4),
  /** Cap on one wait between retries, whatever retry-after asks for. */
  MODEL_MAX_RETRY_WAIT_MS: positiveInt(600_000).default(30_000),
  /**
   * Time to save the interrupted runs and hand their jobs back on SIGTERM. Below Docker's default 10 s stop
   * grace period: a model call in flight gets REASONER_CALL_GRACE_MS to answer, the rest is two confirmed
   * saves per run (the answered iteration and the interrupt).
   */
  SHUTDOWN_TIMEOUT_MS: positiveInt(600_000).default(8_000),
  /**
   * On SIGTERM, how long a model call in flight may still answer before it is aborted; an answer within it is
   * kept and checkpointed, not paid for again on resume. Default: 40 % of SHUTDOWN_TIMEOUT_MS.
   */
  REASONER_CALL_GRACE_MS: envInt(0, 600_000).optional(),
  /**
   * Market data on every attempt (the trader's variables): with both keys, Alpaca (paper trading unless the
   * base URLs say otherwise); with a base URL and no keys, an Alpaca-compatible simulator there; with
   * neither, the job's own marketContext.
   */
  ...alpacaEnvShape,
  /** Per market-data request, each attempt. */
  MARKET_DATA_TIMEOUT_MS: positiveInt(120_000).default(10_000),
  /**
   * The bars whose closes a run reasons on (Alpaca's timeframe: 1Min … 59Min, 1Hour … 23Hour, 1Day, 1Week);
   * the previous close and the volume against its average always come from daily bars.
   */
  MARKET_BARS_TIMEFRAME: z
    .string()
    .regex(/^([1-9]|[1-5]\d)(Min|Hour|Day|Week)$/, "must be an Alpaca timeframe such as 1Min, 15Min, 1Hour or 1Day")
    .default("1Day"),
}).superRefine((env, context) => {
  refineAlpacaKeys(env, context);
  if (env.REASONER_CALL_GRACE_MS !== undefined && env.REASONER_CALL_GRACE_MS >= env.SHUTDOWN_TIMEOUT_MS) {
    context.addIssue({ code: "custom", path: ["REASONER_CALL_GRACE_MS"], message: "must be below SHUTDOWN_TIMEOUT_MS, which also covers the final saves" });
  }
});
export type ReasonerConfig = z.infer<typeof reasonerEnvSchema>;

export interface ModelEndpoint {
  baseURL: string;
  apiKey: string;
  /** True when talking to the local model server because no ANTHROPIC_API_KEY is set. */
  local: boolean;
}

/** The Anthropic API when a key is configured; otherwise the local model server, through the same SDK. */
export function modelEndpoint(config: Pick<ReasonerConfig, "ANTHROPIC_API_KEY" | "ANTHROPIC_BASE_URL">): ModelEndpoint {
  if (config.ANTHROPIC_API_KEY) {
    return { baseURL: config.ANTHROPIC_BASE_URL ?? "https://api.anthropic.com", apiKey: config.ANTHROPIC_API_KEY, local: false };
  }
  return { baseURL: config.ANTHROPIC_BASE_URL ?? LOCAL_MODEL_SERVER_URL, apiKey: LOCAL_MODEL_SERVER_KEY, local: true };
}

/** How long a model call in flight may still answer after SIGTERM (see REASONER_CALL_GRACE_MS). */
export function callGraceMs(config: Pick<ReasonerConfig, "REASONER_CALL_GRACE_MS" | "SHUTDOWN_TIMEOUT_MS">): number {
  return config.REASONER_CALL_GRACE_MS ?? Math.floor(config.SHUTDOWN_TIMEOUT_MS * 0.4);
}

type MarketSettings = Pick<
  ReasonerConfig,
  "APCA_API_KEY_ID" | "APCA_API_SECRET_KEY" | "APCA_API_BASE_URL" | "APCA_DATA_BASE_URL" | "MARKET_DATA_TIMEOUT_MS" | "MARKET_BARS_TIMEFRAME"
>;

/** The broker to read the market from, or undefined when none is configured (then the job's marketContext). */
export function marketEndpoint(config: MarketSettings): BrokerEndpoint | undefined {
  // Keyless, the simulator's market data is wherever a base URL says.
  const endpoint = alpacaEndpoint(config, config.APCA_DATA_BASE_URL);
  if (!endpoint) return undefined;
  return { ...endpoint, timeoutMs: config.MARKET_DATA_TIMEOUT_MS, readRetries: 2, barsTimeframe: config.MARKET_BARS_TIMEFRAME };
}
