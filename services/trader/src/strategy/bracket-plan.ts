import type { PositionSide, StrategyParams } from "../session/state.js";

export interface BracketPlan {
  side: PositionSide;
  qty: number;
  takeProfit: number;
  stopLoss: number;
  /** What the broker charges the entry against buying power, with the allowance for a price move. */
  buyingPowerNeeded: number;
}

const cents = (value: number) => Math.round(value * 100) / 100;
/** Up to the cent: what is charged against buying power is never understated. */
const centsUp = (value: number) => Math.ceil(Math.round(value * 1e6) / 1e4) / 100;

/**
 * The price per share Alpaca charges an opening market order against buying power (alpaca-docs,
 * content/trading/orders.md, "Buying Power"): a buy at the last price plus its collar, 4% under $50 and 2.5%
 * from $50 ("the limit price is 2.5% to 4% above the current market price"); a short sale at 3% above the
 * market ("MAX(order's limit price, 3% above the current ask price)"). The simulator applies the same rule.
 */
export function chargedPrice(side: PositionSide, price: number): number {
  if (side === "short") return price * 1.03;
  return price * (price < 50 ? 1.04 : 1.025);
}

/**
 * The price is the latest one-minute bar's close; the broker charges the trade price at submission, which may
 * have moved since. Sizing leaves this much more room, so an entry is not refused for a move of that size.
 */
const PRICE_MOVE_ALLOWANCE = 0.01;

/**
 * The bracket for entering `side` at about `price`: as many whole shares as the position size buys (brackets
 * take no fractions), fewer when the buying power cannot pay for them at Alpaca's charge, the take-profit and
 * stop-loss the configured percentages away, on the side each must be (at least a cent from the price). A
 * reason to skip when not one share can be placed.
 */
export function planBracket(
  side: PositionSide,
  price: number,
  params: Pick<StrategyParams, "positionSize" | "stopLossPct" | "takeProfitPct">,
  buyingPower: number,
): BracketPlan | { skip: string } {
  const wanted = Math.floor(params.positionSize / price);
  if (wanted < 1) return { skip: `position size $${params.positionSize} buys no whole share at $${price}` };
  const perShare = chargedPrice(side, price) * (1 + PRICE_MOVE_ALLOWANCE);
  const qty = Math.min(wanted, Math.floor(Math.max(0, buyingPower) / perShare));
  if (qty < 1) return { skip: `needs $${centsUp(perShare)} of buying power for one share at $${price} (Alpaca's charge for a ${side === "long" ? "market buy" : "short sale"}); $${cents(buyingPower)} left` };
  const direction = side === "long" ? 1 : -1;
  const takeProfit = cents(price * (1 + (direction * params.takeProfitPct) / 100));
  const stopLoss = cents(price * (1 - (direction * params.stopLossPct) / 100));
  return {
    side,
    qty,
    takeProfit: side === "long" ? Math.max(takeProfit, cents(price + 0.01)) : Math.min(takeProfit, cents(price - 0.01)),
    stopLoss: side === "long" ? Math.min(stopLoss, cents(price - 0.01)) : Math.max(stopLoss, cents(price + 0.01)),
    buyingPowerNeeded: centsUp(qty * perShare),
  };
}
