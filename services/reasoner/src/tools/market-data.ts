import type { MarketContext, MarketPosition } from "@savepoint/shared";

/** Where an attempt's market came from: the broker now, or the job's payload as its producer saw it. */
export type MarketSource = "broker" | "job";

/** The market for one symbol as the reasoner sees it during one attempt of a run. */
export interface MarketSnapshot {
  source: MarketSource;
  symbol: string;
  price: number;
  previousClose?: number;
  volume?: number;
  averageVolume?: number;
  /** Oldest first. */
  recentCloses: number[];
  position: MarketPosition | null;
  /** When the source observed these prices, if it says. */
  quotedAt?: string;
  /** When this view of the market was read. */
  asOf: string;
}

/**
 * Where market data comes from. Called when an attempt starts, so a resumed run reasons about the market
 * as it is now, not as it was when the checkpoint was taken.
 */
export interface MarketDataSource {
  refresh(symbol: string, context: MarketContext): Promise<MarketSnapshot>;
}

/**
 * The market as the job's producer described it when it queued the job: the fallback when no market data is
 * configured. A resumed run sees the same prices as the first attempt did.
 */
export class JobContextMarketData implements MarketDataSource {
  constructor(private readonly now: () => Date = () => new Date()) {}

  async refresh(symbol: string, context: MarketContext): Promise<MarketSnapshot> {
    return {
      source: "job",
      symbol,
      price: context.price,
      ...(context.previousClose === undefined ? {} : { previousClose: context.previousClose }),
      ...(context.volume === undefined ? {} : { volume: context.volume }),
      ...(context.averageVolume === undefined ? {} : { averageVolume: context.averageVolume }),
      recentCloses: context.recentCloses ?? [],
      position: context.position ?? null,
      ...(context.asOf === undefined ? {} : { quotedAt: context.asOf }),
      asOf: this.now().toISOString(),
    };
  }
}
