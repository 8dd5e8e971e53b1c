/**
 * An error answered in Alpaca's shape: HTTP `status` and a body `{ code, message }` (plus optional extra
 * fields, as Alpaca adds `buying_power` and `cost_basis` to an insufficient-buying-power rejection).
 * Codes follow Alpaca's scheme: the HTTP status followed by five digits.
 */
export class AlpacaError extends Error {
  override name = "AlpacaError";

  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...this.extra };
  }
}

export const malformedRequest = (message: string) => new AlpacaError(400, 40010000, message);
export const invalidRequest = (message: string) => new AlpacaError(422, 40010001, message);
export const unauthorized = (message: string) => new AlpacaError(401, 40110000, message);
export const forbidden = (message: string, extra?: Record<string, string>) => new AlpacaError(403, 40310000, message, extra);
export const notFound = (message: string) => new AlpacaError(404, 40410000, message);
export const unprocessable = (message: string, extra?: Record<string, string>) => new AlpacaError(422, 42210000, message, extra);
export const rateLimited = () => new AlpacaError(429, 42910000, "rate limit exceeded");

/** Alpaca's code for an HTTP status the simulator answers without a more specific code. */
export const codeForStatus = (status: number): number => status * 100_000;
