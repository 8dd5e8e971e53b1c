import { hashSeed } from "@savepoint/shared";
import { Broker, type LifecycleOptions } from "./broker.js";
import { MarketClock, type MarketHours } from "./market-clock.js";
import { PriceModel } from "./price-model.js";
import { SeededRandom, stableUuid } from "./random.js";
import type { SymbolSpec } from "./universe.js";

export interface SimulationSettings {
  seed: string;
  universe: Readonly<Record<string, SymbolSpec>>;
  start: Date;
  historyBars: number;
  retainBars: number;
  initialCash: number;
  multiplier: number;
  marketHours: MarketHours;
  lifecycle: LifecycleOptions;
}

/**
 * The simulated market and the paper account trading in it, moved together: every tick moves the clock one
 * minute; a minute with trading generates one bar per symbol, and the broker completes due lifecycle steps and
 * matches working orders against each trade of the bar, oldest order first, symbols in alphabetical order, so
 * the same seed and the same calls give the same fills.
 */
export class Simulation {
  readonly model: PriceModel;
  readonly clock: MarketClock;
  readonly broker: Broker;
  readonly account: { id: string; number: string; createdAt: Date };

  constructor(settings: SimulationSettings) {
    const now = () => this.model.now();
    this.clock = new MarketClock(now, settings.marketHours);
    this.model = new PriceModel({ ...settings, activity: (ms) => this.clock.activity(ms) });
    const fills = new SeededRandom(hashSeed(`fills:${settings.seed}`));
    this.broker = new Broker(
      {
        now,
        price: (symbol) => this.model.price(symbol),
        spec: (symbol) => this.model.spec(symbol),
        phase: () => this.clock.phase(),
        random: () => fills.next(),
      },
      { initialCash: settings.initialCash, multiplier: settings.multiplier, lifecycle: settings.lifecycle },
    );
    this.account = {
      id: stableUuid(`account:${settings.seed}`),
      number: `PA${String(hashSeed(`account-number:${settings.seed}`)).padStart(10, "0")}`,
      createdAt: this.model.now(),
    };
  }

  /** Moves the simulated clock on by `minutes` one-minute steps. */
  advance(minutes = 1): void {
    for (let minute = 0; minute < minutes; minute++) {
      const day = this.clock.tradingDate();
      const phaseBefore = this.clock.phase();
      const trades = this.model.advance();
      if (this.clock.tradingDate() !== day) this.broker.startDay();
      const phase = this.clock.phase();
      if (phaseBefore === "regular" && phase !== "regular") this.broker.sessionEnded(false);
      if (phaseBefore !== "closed" && phase === "closed") this.broker.sessionEnded(true);
      this.broker.step();
      const steps = Math.max(0, ...[...trades.values()].map((prices) => prices.length));
      for (let step = 0; step < steps; step++) {
        for (const [symbol, prices] of trades) {
          const volume = this.model.latestBar(symbol)!.v / prices.length;
          this.broker.matchAt(symbol, prices[step]!, volume);
        }
      }
    }
  }

  /** A trade at `price` now; working orders on the symbol are matched against it. Returns the traded price. */
  setPrice(symbol: string, price: number): number {
    const traded = this.model.setPrice(symbol, price);
    this.broker.matchAt(symbol, traded, Number.POSITIVE_INFINITY);
    return traded;
  }

  /** Forces the market open or closed (a halt), or hands it back to the calendar with null. */
  setMarketOpen(open: boolean | null): void {
    const wasOpen = this.clock.isOpen();
    this.clock.setOverride(open);
    if (wasOpen && !this.clock.isOpen()) return;
    this.broker.step();
  }

  /** The close Alpaca reports as `lastday_price`: the last trade of the previous trading day's session. */
  previousClose(symbol: string): number {
    return this.model.closeBefore(symbol, this.clock.previousSessionClose());
  }

  prices(): Record<string, number> {
    return Object.fromEntries(this.model.symbols().map((symbol) => [symbol, this.model.price(symbol)]));
  }
}
