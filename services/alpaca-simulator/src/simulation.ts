import { Broker } from "./broker.js";
import { MarketClock } from "./market-clock.js";
import { PriceModel } from "./price-model.js";
import { hashSeed, stableUuid } from "./random.js";
import type { SymbolSpec } from "./universe.js";

export interface SimulationSettings {
  seed: string;
  universe: Readonly<Record<string, SymbolSpec>>;
  start: Date;
  historyBars: number;
  retainBars: number;
  initialCash: number;
  multiplier: number;
  marketOpen: boolean;
}

const utcDay = (date: Date) => Math.floor(date.getTime() / 86_400_000);

/**
 * The simulated market and the paper account trading in it, moved together: every tick generates one bar
 * per symbol and matches working orders against each trade of the bar, oldest order first, symbols in
 * alphabetical order, so the same seed and the same calls give the same fills.
 */
export class Simulation {
  readonly model: PriceModel;
  readonly clock: MarketClock;
  readonly broker: Broker;
  readonly account: { id: string; number: string; createdAt: Date };

  constructor(settings: SimulationSettings) {
    this.model = new PriceModel(settings);
    this.clock = new MarketClock(() => this.model.now(), settings.marketOpen);
    this.broker = new Broker(
      {
        now: () => this.model.now(),
        price: (symbol) => this.model.price(symbol),
        spec: (symbol) => this.model.spec(symbol),
        isOpen: () => this.clock.isOpen(),
      },
      { initialCash: settings.initialCash, multiplier: settings.multiplier },
    );
    this.account = {
      id: stableUuid(`account:${settings.seed}`),
      number: `PA${String(hashSeed(`account-number:${settings.seed}`)).padStart(10, "0")}`,
      createdAt: this.model.now(),
    };
  }

  /** Moves the simulated clock on by `bars` one-minute bars. */
  advance(bars = 1): void {
    for (let bar = 0; bar < bars; bar++) {
      const day = utcDay(this.model.now());
      const trades = this.model.advance();
      if (utcDay(this.model.now()) !== day) this.broker.startDay();
      if (!this.clock.isOpen()) continue;
      const steps = Math.max(...[...trades.values()].map((prices) => prices.length));
      for (let step = 0; step < steps; step++) {
        for (const [symbol, prices] of trades) this.broker.matchAt(symbol, prices[step]!);
      }
    }
  }

  /** A trade at `price` now; working orders on the symbol are matched against it. Returns the traded price. */
  setPrice(symbol: string, price: number): number {
    const traded = this.model.setPrice(symbol, price);
    if (this.clock.isOpen()) this.broker.matchAt(symbol, traded);
    return traded;
  }

  setMarketOpen(open: boolean): void {
    const wasOpen = this.clock.isOpen();
    this.clock.setOpen(open);
    if (open && !wasOpen) this.broker.marketOpened();
  }

  prices(): Record<string, number> {
    return Object.fromEntries(this.model.symbols().map((symbol) => [symbol, this.model.price(symbol)]));
  }
}
