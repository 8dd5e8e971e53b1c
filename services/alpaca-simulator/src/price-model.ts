import { hashSeed } from "@savepoint/shared";
import { roundPrice, roundTo } from "./numbers.js";
import { SeededRandom } from "./random.js";
import type { SymbolSpec } from "./universe.js";

/** One bar as the model keeps it: `t` is the bar's start in epoch milliseconds. */
export interface Bar {
  t: number;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
  n: number;
  vw: number;
}

/** The model's resolution: every tick of the simulated clock is one one-minute bar. */
export const BAR_MS = 60_000;

/** Trades inside one bar; orders are matched against each in turn, so a bar's high and low are reachable. */
const TRADES_PER_BAR = 3;

export interface PriceModelOptions {
  seed: string;
  universe: Readonly<Record<string, SymbolSpec>>;
  /** Simulated time when the model starts; floored to a whole minute. History bars end here. */
  start: Date;
  /** Bars generated before `start`, so historical requests have data from the first moment. */
  historyBars: number;
  /** Bars kept per symbol; older ones are dropped so a long standalone run has bounded memory. */
  retainBars: number;
  /**
   * How much trading the minute starting at `ms` sees, as a share of a regular minute's volume: 0 for a minute
   * without trading (the market closed), so no bar is made for it, as Alpaca has none.
   */
  activity: (ms: number) => number;
}

/** How far back history may reach to find its bars (the longest run of closed days is far shorter). */
const HISTORY_SEARCH_LIMIT_MS = 5 * 366 * 86_400_000;

interface Series {
  readonly spec: SymbolSpec;
  readonly random: SeededRandom;
  readonly bars: Bar[];
  price: number;
}

/**
 * A seeded geometric random walk per symbol, advanced one bar per tick of a simulated clock. Each symbol
 * draws from its own stream seeded by (seed, symbol), so a symbol's prices do not depend on which other
 * symbols exist; the same seed and the same sequence of ticks and price overrides give the same bars.
 */
export class PriceModel {
  private nowMs: number;
  private readonly series = new Map<string, Series>();
  private readonly retainBars: number;
  private readonly activity: (ms: number) => number;

  constructor(options: PriceModelOptions) {
    this.retainBars = options.retainBars;
    this.activity = options.activity;
    const startMs = Math.floor(options.start.getTime() / BAR_MS) * BAR_MS;
    this.nowMs = startMs;
    for (let found = 0; found < options.historyBars && startMs - this.nowMs < HISTORY_SEARCH_LIMIT_MS; ) {
      this.nowMs -= BAR_MS;
      if (this.activity(this.nowMs) > 0) found++;
    }
    for (const symbol of Object.keys(options.universe).sort()) {
      const spec = options.universe[symbol]!;
      this.series.set(symbol, {
        spec,
        random: new SeededRandom(hashSeed(`${options.seed}/${symbol}`)),
        bars: [],
        price: roundPrice(spec.price),
      });
    }
    while (this.nowMs < startMs) this.advance();
  }

  /** The simulated present: the end of the latest bar. */
  now(): Date {
    return new Date(this.nowMs);
  }

  symbols(): string[] {
    return [...this.series.keys()];
  }

  spec(symbol: string): SymbolSpec | undefined {
    return this.series.get(symbol)?.spec;
  }

  /** The last trade price. */
  price(symbol: string): number {
    return this.get(symbol).price;
  }

  latestBar(symbol: string): Bar | undefined {
    return this.get(symbol).bars.at(-1);
  }

  /** Bars whose start lies in [fromMs, toMs], oldest first (minutes without trading have none). */
  bars(symbol: string, fromMs: number, toMs: number): Bar[] {
    const { bars } = this.get(symbol);
    if (toMs < fromMs) return [];
    const begin = firstIndexAtOrAfter(bars, fromMs);
    const end = firstIndexAtOrAfter(bars, toMs + 1);
    return bars.slice(begin, end);
  }

  /** The close of the last bar that started before `beforeMs` (Alpaca's `lastday_price` with the day's start). */
  closeBefore(symbol: string, beforeMs: number): number {
    const { bars, price } = this.get(symbol);
    const index = firstIndexAtOrAfter(bars, beforeMs) - 1;
    if (index < 0) return bars[0]?.o ?? price;
    return bars[index]!.c;
  }

  /**
   * Moves the clock one minute on and, if the minute had trading, generates its bar for every symbol. Returns
   * each symbol's trades in that bar, in order, for order matching (an empty map for a minute without trading).
   */
  advance(): Map<string, number[]> {
    const trades = new Map<string, number[]>();
    const activity = this.activity(this.nowMs);
    if (activity <= 0) {
      this.nowMs += BAR_MS;
      return trades;
    }
    for (const [symbol, series] of this.series) {
      const bar = this.nextBar(series, activity);
      series.bars.push(bar.bar);
      series.price = bar.bar.c;
      if (series.bars.length > this.retainBars + 1_000) series.bars.splice(0, series.bars.length - this.retainBars);
      trades.set(symbol, bar.trades);
    }
    this.nowMs += BAR_MS;
    return trades;
  }

  /**
   * A trade at `price` now: the latest bar closes there (its high and low widen to include it) and the walk
   * continues from it. Tests use this to move a price through a take-profit or stop-loss level.
   */
  setPrice(symbol: string, price: number): number {
    const series = this.get(symbol);
    const traded = roundPrice(price);
    const bar = series.bars.at(-1);
    if (bar) {
      bar.c = traded;
      bar.h = Math.max(bar.h, traded);
      bar.l = Math.min(bar.l, traded);
    }
    series.price = traded;
    return traded;
  }

  private nextBar(series: Series, activity: number): { bar: Bar; trades: number[] } {
    const { spec, random } = series;
    const open = series.price;
    const stepVolatility = spec.volatility / Math.sqrt(TRADES_PER_BAR);
    const trades: number[] = [];
    let level = open;
    for (let step = 0; step < TRADES_PER_BAR; step++) {
      level = roundPrice(level * Math.exp(stepVolatility * random.normal() - (stepVolatility * stepVolatility) / 2));
      trades.push(level);
    }
    const volume = Math.max(1, Math.round(spec.volume * activity * (0.5 + random.next())));
    const count = Math.max(1, Math.round(volume / (80 + 40 * random.next())));
    const path = [open, ...trades];
    return {
      bar: {
        t: this.nowMs,
        o: open,
        h: Math.max(...path),
        l: Math.min(...path),
        c: level,
        v: volume,
        n: count,
        vw: roundTo(path.reduce((sum, price) => sum + price, 0) / path.length, 4),
      },
      trades,
    };
  }

  private get(symbol: string): Series {
    const series = this.series.get(symbol);
    if (!series) throw new Error(`unknown symbol ${JSON.stringify(symbol)}: the price model has ${this.symbols().join(", ")}`);
    return series;
  }
}

/** The index of the first bar starting at or after `ms` (bars are in time order); `bars.length` if none. */
function firstIndexAtOrAfter(bars: readonly Bar[], ms: number): number {
  let low = 0;
  let high = bars.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (bars[middle]!.t < ms) low = middle + 1;
    else high = middle;
  }
  return low;
}
