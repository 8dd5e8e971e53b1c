import type { Bar } from "../broker/types.js";
import type { MarketSnapshot } from "./strategy.js";

/**
 * The recent one-minute bars of each symbol, oldest first, one per minute. A bar seen again replaces the
 * earlier copy: the latest bar is still forming and its close moves until the minute ends.
 */
export class BarHistory {
  private readonly bars = new Map<string, Bar[]>();

  constructor(private readonly keep: number) {}

  add(symbol: string, incoming: Bar[]): void {
    const series = this.bars.get(symbol) ?? [];
    for (const bar of incoming) {
      const time = bar.t.getTime();
      const last = series.at(-1);
      if (!last || last.t.getTime() < time) series.push(bar);
      else {
        const index = series.findIndex((existing) => existing.t.getTime() >= time);
        if (series[index]!.t.getTime() === time) series[index] = bar;
        else series.splice(index, 0, bar);
      }
    }
    if (series.length > this.keep) series.splice(0, series.length - this.keep);
    this.bars.set(symbol, series);
  }

  /** The symbol's bars and last close, or undefined before any bar has arrived. */
  snapshot(symbol: string): MarketSnapshot | undefined {
    const series = this.bars.get(symbol);
    const last = series?.at(-1);
    if (!series || !last) return undefined;
    return { symbol, price: last.c, bars: [...series], asOf: last.t };
  }
}
