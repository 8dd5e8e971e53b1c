import type { StrategyParams } from "../session/state.js";
import { hold, type HeldPosition, type MarketSnapshot, type Signal, type Strategy } from "./strategy.js";

/**
 * Momentum over the last `lookbackBars` one-minute closes: at or above +threshold percent it opens long, at
 * or below -threshold it opens short. A flat market never triggers. Exits are left to the bracket's legs.
 */
export function momentumSignal(closes: number[], lookbackBars: number, thresholdPct: number): Signal {
  if (closes.length < lookbackBars + 1) return hold(`warming up: ${closes.length} of ${lookbackBars + 1} bars`);
  const first = closes[closes.length - 1 - lookbackBars]!;
  const last = closes[closes.length - 1]!;
  const momentumPct = ((last - first) / first) * 100;
  const described = `momentum ${momentumPct.toFixed(3)}% over ${lookbackBars} bars`;
  if (momentumPct !== 0 && momentumPct >= thresholdPct) return { action: "OPEN_LONG", reason: described };
  if (momentumPct !== 0 && momentumPct <= -thresholdPct) return { action: "OPEN_SHORT", reason: described };
  return hold(described);
}

export class RuleStrategy implements Strategy {
  readonly kind = "rule";

  constructor(private readonly params: Pick<StrategyParams, "lookbackBars" | "entryThresholdPct">) {}

  async decide(market: MarketSnapshot, position: HeldPosition | null): Promise<Signal> {
    if (position) return hold("holding; the bracket's legs manage the exit");
    return momentumSignal(
      market.bars.map((bar) => bar.c),
      this.params.lookbackBars,
      this.params.entryThresholdPct,
    );
  }

  async close(): Promise<void> {}
}
