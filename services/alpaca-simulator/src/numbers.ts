/** Rounds half away from zero to `places` decimals (quantities 9, money 6 internally). */
export function roundTo(value: number, places: number): number {
  const factor = 10 ** places;
  const rounded = Math.sign(value) * Math.round(Math.abs(value) * factor + Number.EPSILON) / factor;
  return Object.is(rounded, -0) ? 0 : rounded;
}

export const roundQty = (value: number): number => roundTo(value, 9);
export const roundMoney = (value: number): number => roundTo(value, 6);

/** Prices trade in cents at or above $1 and in hundredths of a cent below, as on US exchanges. */
export function roundPrice(value: number): number {
  return value >= 1 ? roundTo(value, 2) : Math.max(0.0001, roundTo(value, 4));
}

/**
 * Alpaca's wire format for numbers in trading responses: a decimal string without exponent or trailing
 * zeros ("10", "150.25", "-3.5").
 */
export function decimalString(value: number, places: number): string {
  const fixed = roundTo(value, places).toFixed(places);
  const trimmed = fixed.includes(".") ? fixed.replace(/\.?0+$/, "") : fixed;
  return trimmed === "-0" ? "0" : trimmed;
}
