import { OrdersApi, marketData, trading } from "@alpacahq/alpaca-trade-api";
import { fileURLToPath } from "node:url";

/** The built standalone entry point, as compose runs it (`npm run build` first); the same from src/ and dist/. */
export const SIMULATOR_MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

export interface SdkOptions {
  /** SDK retries for safe verbs; off when false. Delays are shortened so retry tests stay fast. */
  retry?: trading.RetryConfig | false;
  timeoutMs?: number;
  /** Omit the key pair, to see how the simulator treats an unauthenticated client. */
  anonymous?: boolean;
  /** The key id sent (rate limits are per key); a fixed one by default. */
  keyId?: string;
}

/**
 * The official SDK's API classes pointed at the simulator the way 4.x supports: a Configuration with an
 * explicit basePath (the simulator's root URL, without /v2; the SDK's paths already start with /v2).
 */
export function sdk(url: string, options: SdkOptions = {}) {
  const settings: trading.ConfigurationParameters = {
    basePath: url,
    ...(options.anonymous ? {} : { keyId: options.keyId ?? "sim-key", secret: "sim-secret" }),
    retry: options.retry === false ? undefined : { maxRetries: 2, retryDelayMs: 5, maxDelayMs: 20, ...options.retry },
    timeoutMs: options.timeoutMs ?? 5_000,
  };
  const tradingConfig = new trading.Configuration(settings);
  const dataConfig = new marketData.Configuration(settings);
  return {
    account: new trading.AccountsApi(tradingConfig),
    orders: new OrdersApi(tradingConfig),
    positions: new trading.PositionsApi(tradingConfig),
    clock: new trading.ClockApi(tradingConfig),
    calendar: new trading.CalendarApi(tradingConfig),
    assets: new trading.AssetsApi(tradingConfig),
    activities: new trading.AccountActivitiesApi(tradingConfig),
    stocks: new marketData.StockApi(dataConfig),
  };
}

export type Sdk = ReturnType<typeof sdk>;

/** The rejection of `promise`, for asserting on an SDK error's class, status, code and message. */
export async function failureOf(promise: Promise<unknown>): Promise<Error & { status?: number; code?: number | string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { status?: number; code?: number | string };
  }
  throw new Error("expected the call to fail, but it succeeded");
}
