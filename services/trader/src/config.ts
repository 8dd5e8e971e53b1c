import { alpacaEndpoint, alpacaEnvShape, commonEnvSchema, port, refineAlpacaKeys, type AlpacaEndpoint } from "@savepoint/shared";
import { z } from "zod";
import { ALPACA_REQUESTS_PER_MINUTE, MAX_INLINE_WAIT_MS } from "./broker/rate-limit.js";

/** The simulator shipped in this repository (`npm run sim -w @savepoint/trader`), used when no keys are set. */
export const SIMULATOR_URL = "http://127.0.0.1:8090";

/** The longest an order request can take: the broker's timeout, after the rate-limit back-off's wait within a request. */
export const orderRequestMs = (brokerTimeoutMs: number) => brokerTimeoutMs + MAX_INLINE_WAIT_MS;
/**
 * How long a trader that took the account from another live session waits before reading the broker: an
 * order the old trader had checked its lease for may reach the broker up to one order request later.
 */
export const takeOverSettleMs = (brokerTimeoutMs: number, marginMs: number) => orderRequestMs(brokerTimeoutMs) + marginMs;
/** How much longer than an order request the account lease must live: the renewal before each order, and its answer. */
const LEASE_RENEWAL_ALLOWANCE_MS = 1_000;

/** The trader's environment: the common variables, Alpaca's own names, and the trader's tuning knobs. */
export const traderEnvSchema = commonEnvSchema
  .extend({
    HTTP_PORT: port().default(8082),
    ...alpacaEnvShape,
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
    /**
     * On --take-over of a live session: how much longer than an order request (BROKER_TIMEOUT_MS + 2 s) the
     * taker waits before reading the broker, for the process between the old trader's ownership check and its
     * order reaching the broker (a scheduling pause, the network).
     */
    TRADER_TAKEOVER_MARGIN_MS: z.coerce.number().int().min(0).max(60_000).default(2_000),
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
    refineAlpacaKeys(env, context);
    if (env.APCA_API_KEY_ID !== undefined && env.APCA_API_SECRET_KEY !== undefined && env.BROKER_REQUESTS_PER_MINUTE === 0) {
      context.addIssue({
        code: "custom",
        path: ["BROKER_REQUESTS_PER_MINUTE"],
        message: `must be more than 0 with Alpaca keys: Alpaca limits every key (${ALPACA_REQUESTS_PER_MINUTE} a minute by default), and 0, no client-side limit, is only for the simulator`,
      });
    }
  });
export type TraderEnv = z.infer<typeof traderEnvSchema>;

export interface BrokerConnection extends AlpacaEndpoint {
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
  // Always an endpoint: keyless, the simulator's default address stands in for a base URL.
  return { ...common, ...alpacaEndpoint(env, SIMULATOR_URL)! };
}
