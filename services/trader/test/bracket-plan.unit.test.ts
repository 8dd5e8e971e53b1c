import { describe, expect, it } from "vitest";
import { planBracket } from "../src/strategy/bracket-plan.js";

const params = { positionSize: 1_000, stopLossPct: 2, takeProfitPct: 4 };

describe("bracket plan", () => {
  it.each([
    { name: "a long buys whole shares, take-profit above and stop-loss below", side: "long", price: 190, params, buyingPower: 10_000, plan: { side: "long", qty: 5, takeProfit: 197.6, stopLoss: 186.2 } },
    { name: "a short mirrors the exits", side: "short", price: 190, params, buyingPower: 10_000, plan: { side: "short", qty: 5, takeProfit: 182.4, stopLoss: 193.8 } },
    { name: "exits are rounded to the cent", side: "long", price: 33.33, params, buyingPower: 10_000, plan: { side: "long", qty: 30, takeProfit: 34.66, stopLoss: 32.66 } },
    {
      name: "a long keeps both exits at least a cent from the price",
      side: "long",
      price: 10,
      params: { positionSize: 100, stopLossPct: 0.01, takeProfitPct: 0.01 },
      buyingPower: 1_000,
      plan: { side: "long", qty: 10, takeProfit: 10.01, stopLoss: 9.99 },
    },
    {
      name: "a short keeps both exits at least a cent from the price",
      side: "short",
      price: 10,
      params: { positionSize: 100, stopLossPct: 0.01, takeProfitPct: 0.01 },
      buyingPower: 1_000,
      plan: { side: "short", qty: 10, takeProfit: 9.99, stopLoss: 10.01 },
    },
    { name: "the whole buying power is enough", side: "long", price: 100, params, buyingPower: 1_000, plan: { side: "long", qty: 10, takeProfit: 104, stopLoss: 98 } },
    { name: "skips a size that buys no whole share", side: "long", price: 2_000, params, buyingPower: 10_000, plan: { skip: "position size $1000 buys no whole share at $2000" } },
    { name: "skips an entry the buying power cannot pay for", side: "long", price: 100, params, buyingPower: 500, plan: { skip: "needs $1000 of buying power; $500 left" } },
    { name: "a short needs the buying power too", side: "short", price: 100, params, buyingPower: 999, plan: { skip: "needs $1000 of buying power; $999 left" } },
  ] as const)("$name", ({ side, price, params: sizing, buyingPower, plan }) => {
    expect(planBracket(side, price, sizing, buyingPower)).toEqual(plan);
  });
});
