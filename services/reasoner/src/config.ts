import { commonEnvSchema, envFlag, envInt, MAX_ITERATIONS, MIN_ITERATIONS, port } from "@savepoint/shared";
import { z } from "zod";

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
  /** Iterations when a job does not say. */
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
   * grace period: aborting a model call is immediate, the rest is one confirmed save per run.
   */
  SHUTDOWN_TIMEOUT_MS: positiveInt(600_000).default(8_000),
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
