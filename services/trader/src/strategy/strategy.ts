import type { DecisionAction } from "@savepoint/shared";
import type { Bar } from "../broker/types.js";
import type { PositionSide } from "../session/state.js";

/** What a strategy sees of one symbol: recent one-minute bars, oldest first, and the last price. */
export interface MarketSnapshot {
  symbol: string;
  price: number;
  bars: Bar[];
  asOf: Date;
}

export interface HeldPosition {
  side: PositionSide;
  qty: number;
  entryPrice: number;
}

/** A strategy's call for one symbol on one tick, in the reasoner's vocabulary. */
export interface Signal {
  action: DecisionAction;
  reason: string;
}

export interface Strategy {
  readonly kind: "rule" | "reasoner";
  decide(market: MarketSnapshot, position: HeldPosition | null): Promise<Signal>;
  close(): Promise<void>;
}

export const hold = (reason: string): Signal => ({ action: "HOLD", reason });
