import { stableUuid } from "./random.js";

/** One tradable symbol of the simulated market. */
export interface SymbolSpec {
  /** Price of the first simulated bar's open. */
  price: number;
  /** Standard deviation of one one-minute bar's log return. */
  volatility: number;
  name: string;
  exchange: "NASDAQ" | "NYSE" | "ARCA";
  shortable: boolean;
  /** Typical shares traded per one-minute bar. */
  volume: number;
}

/** The market a simulator starts with when none is given: large, liquid US equities and ETFs. */
export const DEFAULT_UNIVERSE: Readonly<Record<string, SymbolSpec>> = {
  AAPL: { price: 190, volatility: 0.0015, name: "Apple Inc. Common Stock", exchange: "NASDAQ", shortable: true, volume: 60_000 },
  MSFT: { price: 410, volatility: 0.0013, name: "Microsoft Corporation Common Stock", exchange: "NASDAQ", shortable: true, volume: 30_000 },
  GOOGL: { price: 165, volatility: 0.0016, name: "Alphabet Inc. Class A Common Stock", exchange: "NASDAQ", shortable: true, volume: 35_000 },
  AMZN: { price: 180, volatility: 0.0017, name: "Amazon.com, Inc. Common Stock", exchange: "NASDAQ", shortable: true, volume: 45_000 },
  TSLA: { price: 240, volatility: 0.003, name: "Tesla, Inc. Common Stock", exchange: "NASDAQ", shortable: true, volume: 120_000 },
  NVDA: { price: 120, volatility: 0.0025, name: "NVIDIA Corporation Common Stock", exchange: "NASDAQ", shortable: true, volume: 250_000 },
  META: { price: 500, volatility: 0.0018, name: "Meta Platforms, Inc. Class A Common Stock", exchange: "NASDAQ", shortable: true, volume: 15_000 },
  AMD: { price: 155, volatility: 0.0024, name: "Advanced Micro Devices, Inc. Common Stock", exchange: "NASDAQ", shortable: true, volume: 50_000 },
  NFLX: { price: 650, volatility: 0.0019, name: "Netflix, Inc. Common Stock", exchange: "NASDAQ", shortable: true, volume: 8_000 },
  JPM: { price: 200, volatility: 0.0011, name: "JPMorgan Chase & Co. Common Stock", exchange: "NYSE", shortable: true, volume: 12_000 },
  SPY: { price: 550, volatility: 0.0007, name: "SPDR S&P 500 ETF Trust", exchange: "ARCA", shortable: true, volume: 80_000 },
  QQQ: { price: 470, volatility: 0.0009, name: "Invesco QQQ Trust, Series 1", exchange: "NASDAQ", shortable: true, volume: 45_000 },
};

/** Alpaca's symbols: upper-case letters and digits, optionally with a class suffix such as BRK.B. */
export const SYMBOL_PATTERN = /^[A-Z][A-Z0-9]{0,9}(\.[A-Z]{1,2})?$/;

/** Alpaca's asset ids never change for a listing; here the same symbol has the same id in every run. */
export const assetIdFor = (symbol: string): string => stableUuid(`asset:${symbol}`);
