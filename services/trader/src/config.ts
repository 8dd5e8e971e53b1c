import { commonEnvSchema, port } from "@savepoint/shared";
import { z } from "zod";
import { ALPACA_REQUESTS_PER_MINUTE, MAX_INLINE_WAIT_MS } from "./broker/rate-limit.js";

/** Alpaca's paper endpoints, used when keys are configured and no base URL overrides them. */
export const ALPACA_PAPER_TRADING_URL = "https://paper-api.alpaca.markets";
export const ALPACA_DATA_URL = "https://data.alpaca.markets";
/** The simulator shipped in this repository (`npm run sim -w @savepoint/trader`), used when no keys are set. */
export const SIMULATOR_URL = "http://127.0.0.1:8090";
const SIMULATOR_KEY_ID = "simulator-key";
const SIMULATOR_SECRET = "simulator-secret";

/** The longest an order request can take: the broker's timeout, after the rate-limit back-off's wait within a request. */
export const orderRequestMs = (brokerTimeoutMs: number) => brokerTimeoutMs + MAX_INLINE_WAIT_MS;
/** How much longer than an order request the account lease must live: the renewal before each order, and its answer. */
const LEASE_RENEWAL_ALLOWANCE_MS = 1_000;

const baseUrl = z
  .url({ protocol: /^https?$/, error: "must be an http(s) URL such as http://127.0.0.1:8090" })
  // The SDK's paths already start with /v2, so a base URL copied from Alpaca's docs with /v2 would double it.
  .transform((value) => value.replace(/\/+$/, "").replace(/\/v2$/, ""));

/** The trader's environment: the common variables, Alpaca's own names, and the trader's tuning knobs. */
export const traderEnvSchema = commonEnvSchema
  .extend({
    HTTP_PORT: port().default(8082),
    APCA_API_KEY_ID: z.string().min(1).optional(),
    APCA_API_SECRET_KEY: z.string().min(1).optional(),
    APCA_API_BASE_URL: baseUrl.optional(),
    APCA_DATA_BASE_URL: baseUrl.optional(),
    /** Per broker request, each attempt. */
    BROKER_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
    /** Retries of safe broker reads (GET) on 408/425/429/5xx and network errors; order placements are never retried. */
    BROKER_READ_RETRIES: z.coerce.number().int().min(0).max(10).default(3),
    /**
     * The SDK's client-side rate limit, per API (trading, market data): Alpaca's 200 a minute unless the account
     * has a higher one. 0 turns it off, which only the simulator started without a limit allows.
     */
    BROKER_REQUESTS_PER_MINUTE: z.coerce.number().int().min(0).max(100_000).default(ALPACA_REQUESTS_PER_MINUTE),
    /** How long the reasoner strategy waits for one decision before treating the symbol as HOLD this time. */
    REASONING_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(120_000),
    /**
     * The account lease's time to live: a trader renews it every third of this, and the account of a trader
     * that died stays locked this long (a --resume of its session takes it at once).
     */
    TRADER_ACCOUNT_LEASE_MS: z.coerce.number().int().min(1_000).max(600_000).default(15_000),
  })
  .superRefine((env, context) => {
    const leaseMinMs = orderRequestMs(env.BROKER_TIMEOUT_MS) + LEASE_RENEWAL_ALLOWANCE_MS;
    if (env.TRADER_ACCOUNT_LEASE_MS < leaseMinMs) {
      context.addIssue({
        code: "custom",
        path: ["TRADER_ACCOUNT_LEASE_MS"],
        message: `must be at least ${leaseMinMs} (BROKER_TIMEOUT_MS + ${MAX_INLINE_WAIT_MS + LEASE_RENEWAL_ALLOWANCE_MS}): every order is sent only while the lease outlives its request, so another trader cannot be granted the account while it is on its way; raise it or lower BROKER_TIMEOUT_MS`,
      });
    }
    const keys = [env.APCA_API_KEY_ID, env.APCA_API_SECRET_KEY].filter((value) => value !== undefined);
    if (keys.length === 1) {
      const missing = env.APCA_API_KEY_ID === undefined ? "APCA_API_KEY_ID" : "APCA_API_SECRET_KEY";
      context.addIssue({ code: "custom", path: [missing], message: "must be set together with the other Alpaca key (set both, or neither to use the simulator)" });
    }
    if (keys.length === 2 && env.BROKER_REQUESTS_PER_MINUTE === 0) {
      context.addIssue({
        code: "custom",
        path: ["BROKER_REQUESTS_PER_MINUTE"],
        message: `must be more than 0 with Alpaca keys: Alpaca limits every key (${ALPACA_REQUESTS_PER_MINUTE} a minute by default), and 0, no client-side limit, is only for the simulator`,
      });
    }
  });
export type TraderEnv = z.infer<typeof traderEnvSchema>;

export interface BrokerConnection {
  tradingUrl: string;
  dataUrl: string;
  keyId: string;
  secret: string;
  /** True when talking to the simulator with placeholder keys. */
  simulated: boolean;
  /** The SDK's client-side limit per API; null for none (the simulator without a limit). */
  requestsPerMinute: number | null;
  timeoutMs: number;
  readRetries: number;
}

/**
 * Where the broker is. With keys: Alpaca paper trading unless the base URLs say otherwise. Without keys: the
 * simulator, at the base URLs when given (e.g. a compose service) or at its default local address.
 */
export function brokerConnection(env: TraderEnv): BrokerConnection {
  const common = {
    timeoutMs: env.BROKER_TIMEOUT_MS,
    readRetries: env.BROKER_READ_RETRIES,
    requestsPerMinute: env.BROKER_REQUESTS_PER_MINUTE === 0 ? null : env.BROKER_REQUESTS_PER_MINUTE,
  };
  if (env.APCA_API_KEY_ID && env.APCA_API_SECRET_KEY) {
    return {
      ...common,
      tradingUrl: env.APCA_API_BASE_URL ?? ALPACA_PAPER_TRADING_URL,
      dataUrl: env.APCA_DATA_BASE_URL ?? ALPACA_DATA_URL,
      keyId: env.APCA_API_KEY_ID,
      secret: env.APCA_API_SECRET_KEY,
      simulated: false,
    };
  }
  const tradingUrl = env.APCA_API_BASE_URL ?? SIMULATOR_URL;
  return {
    ...common,
    tradingUrl,
    dataUrl: env.APCA_DATA_BASE_URL ?? tradingUrl,
    keyId: SIMULATOR_KEY_ID,
    secret: SIMULATOR_SECRET,
    simulated: true,
  };
}
