import type { MarketContext } from "@savepoint/shared";

/** The market a run is given in tests and benchmarks: AAPL near its recent closes, no position. Free of vitest, so the bench imports it too. */
export const market = (overrides: Partial<MarketContext> = {}): MarketContext => ({
  price: 187.4,
  previousClose: 184.1,
  volume: 61_000_000,
  averageVolume: 52_000_000,
  recentCloses: [176.2, 177.9, 178.4, 180.1, 179.6, 181.3, 182.8, 183.5, 184.1, 185.0],
  position: null,
  ...overrides,
});
