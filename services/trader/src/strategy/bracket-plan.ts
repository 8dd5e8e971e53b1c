import type { PositionSide, StrategyParams } from "../session/state.js";

export interface BracketPlan {
  side: PositionSide;
  qty: number;
  takeProfit: number;
  stopLoss: number;
}

const cents = (value: number) => Math.round(value * 100) / 100;

/**
 * The bracket for entering `side` at about `price`: as many whole shares as the position size buys (brackets
 * take no fractions), the take-profit and stop-loss the configured percentages away, on the side each must
 * be (at least a cent from the price). Null with a reason when it cannot be placed.
 */
export function planBracket(
  side: PositionSide,
  price: number,
  params: Pick<StrategyParams, "positionSize" | "stopLossPct" | "takeProfitPct">,
  buyingPower: number,
): BracketPlan | { skip: string } {
  const qty = Math.floor(params.positionSize / price);
  if (qty < 1) return { skip: `position size $${params.positionSize} buys no whole share at $${price}` };
  if (qty * price > buyingPower) return { skip: `needs $${cents(qty * price)} of buying power; $${cents(buyingPower)} left` };
  const direction = side === "long" ? 1 : -1;
  const takeProfit = cents(price * (1 + (direction * params.takeProfitPct) / 100));
  const stopLoss = cents(price * (1 - (direction * params.stopLossPct) / 100));
  return {
    side,
    qty,
    takeProfit: side === "long" ? Math.max(takeProfit, cents(price + 0.01)) : Math.min(takeProfit, cents(price - 0.01)),
    stopLoss: side === "long" ? Math.min(stopLoss, cents(price - 0.01)) : Math.max(stopLoss, cents(price + 0.01)),
  };
}
