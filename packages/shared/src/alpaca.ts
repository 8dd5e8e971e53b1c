import { z } from "zod";

/** Alpaca's own endpoints, used when keys are set and no base URL overrides them. */
export const ALPACA_PAPER_TRADING_URL = "https://paper-api.alpaca.markets";
export const ALPACA_DATA_URL = "https://data.alpaca.markets";
/** Sent to a keyless Alpaca-compatible endpoint (the stack's simulator), which accepts any key. */
const SIMULATOR_KEYS = { keyId: "simulator-key", secret: "simulator-secret" };

const alpacaBaseUrl = z
  .url({ protocol: /^https?$/, error: "must be an http(s) URL such as http://127.0.0.1:8090" })
  // The SDK's paths already start with /v2, so a base URL copied from Alpaca's docs with /v2 would double it.
  .transform((value) => value.replace(/\/+$/, "").replace(/\/v2$/, ""));

/** Alpaca's own variables, as the trader and the reasoner (for its market data) read them. */
export const alpacaEnvShape = {
  APCA_API_KEY_ID: z.string().min(1).optional(),
  APCA_API_SECRET_KEY: z.string().min(1).optional(),
  APCA_API_BASE_URL: alpacaBaseUrl.optional(),
  APCA_DATA_BASE_URL: alpacaBaseUrl.optional(),
};
export type AlpacaEnv = z.output<z.ZodObject<typeof alpacaEnvShape>>;

/** For a schema's superRefine: one Alpaca key without the other is a mistake, named on the missing one. */
export function refineAlpacaKeys(env: AlpacaEnv, context: z.RefinementCtx): void {
  if ((env.APCA_API_KEY_ID === undefined) === (env.APCA_API_SECRET_KEY === undefined)) return;
  const missing = env.APCA_API_KEY_ID === undefined ? "APCA_API_KEY_ID" : "APCA_API_SECRET_KEY";
  context.addIssue({ code: "custom", path: [missing], message: "must be set together with the other Alpaca key (set both, or neither to use the simulator)" });
}

export interface AlpacaEndpoint {
  tradingUrl: string;
  dataUrl: string;
  keyId: string;
  secret: string;
  /** True when talking to a simulator with placeholder keys. */
  simulated: boolean;
}

/**
 * Where Alpaca is. With both keys: Alpaca, paper trading unless the base URLs say otherwise. Without keys: a
 * simulator at APCA_API_BASE_URL, else at `simulatorUrl`, with placeholder keys (its market data at
 * APCA_DATA_BASE_URL when set, else there too); undefined when neither says where.
 */
export function alpacaEndpoint(env: AlpacaEnv, simulatorUrl: string | undefined): AlpacaEndpoint | undefined {
  if (env.APCA_API_KEY_ID && env.APCA_API_SECRET_KEY) {
    return {
      tradingUrl: env.APCA_API_BASE_URL ?? ALPACA_PAPER_TRADING_URL,
      dataUrl: env.APCA_DATA_BASE_URL ?? ALPACA_DATA_URL,
      keyId: env.APCA_API_KEY_ID,
      secret: env.APCA_API_SECRET_KEY,
      simulated: false,
    };
  }
  const tradingUrl = env.APCA_API_BASE_URL ?? simulatorUrl;
  if (!tradingUrl) return undefined;
  return { tradingUrl, dataUrl: env.APCA_DATA_BASE_URL ?? tradingUrl, ...SIMULATOR_KEYS, simulated: true };
}
