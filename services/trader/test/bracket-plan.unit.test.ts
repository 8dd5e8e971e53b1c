import { describe, expect, it } from "vitest";
import { chargedPrice, planBracket } from "../src/strategy/bracket-plan.js";

const params = { positionSize: 1_000, stopLossPct: 2, takeProfitPct: 4 };
/** Exits a hundredth of a percent away: less than a cent at $10. */
const tight = { positionSize: 100, stopLossPct: 0.01, takeProfitPct: 0.01 };

describe("bracket plan", () => {
  it.each([
    { name: "a long buys whole shares, take-profit above and stop-loss below", side: "long", price: 190, params, buyingPower: 10_000, plan: { side: "long", qty: 5, takeProfit: 197.6, stopLoss: 186.2 } },
    { name: "a short mirrors the exits", side: "short", price: 190, params, buyingPower: 10_000, plan: { side: "short", qty: 5, takeProfit: 182.4, stopLoss: 193.8 } },
    { name: "exits are rounded to the cent", side: "long", price: 33.33, params, buyingPower: 10_000, plan: { side: "long", qty: 30, takeProfit: 34.66, stopLoss: 32.66 } },
    { name: "a long keeps both exits at least a cent from the price", side: "long", price: 10, params: tight, buyingPower: 1_000, plan: { side: "long", qty: 10, takeProfit: 10.01, stopLoss: 9.99 } },
    { name: "a short keeps both exits at least a cent from the price", side: "short", price: 10, params: tight, buyingPower: 1_000, plan: { side: "short", qty: 10, takeProfit: 9.99, stopLoss: 10.01 } },
    { name: "skips a size that buys no whole share", side: "long", price: 2_000, params, buyingPower: 10_000, plan: { skip: "position size $1000 buys no whole share at $2000" } },
  ] as const)("$name", ({ side, price, params: sizing, buyingPower, plan }) => {
    expect(planBracket(side, price, sizing, buyingPower)).toMatchObject(plan);
  });

  it("charges a market buy Alpaca's collar (4% under $50, 2.5% from $50) and a short sale 3% above the price", () => {
    expect(chargedPrice("long", 40)).toBeCloseTo(41.6, 9);
    expect(chargedPrice("long", 50)).toBeCloseTo(51.25, 9);
    expect(chargedPrice("short", 100)).toBeCloseTo(103, 9);
  });

  it("buys fewer shares when the buying power cannot pay for the position size at Alpaca's charge, with room for a 1% move", () => {
    // 10 shares at $100 cost $1000, but Alpaca charges $102.50 each (and a 1% move makes $103.53): 9 fit in $1000.
    expect(planBracket("long", 100, params, 1_000)).toEqual({ side: "long", qty: 9, takeProfit: 104, stopLoss: 98, buyingPowerNeeded: 931.73 });
    expect(planBracket("short", 100, params, 1_000)).toMatchObject({ qty: 9, buyingPowerNeeded: 936.27 });
    // Under $50 the collar is 4%: $41.60 and $42.02 with the allowance; 23 of the 25 shares fit in $1000.
    expect(planBracket("long", 40, params, 1_000)).toMatchObject({ qty: 23 });
  });

  it("says what one share needs when the buying power cannot pay for any", () => {
    expect(planBracket("long", 100, params, 100)).toEqual({ skip: "needs $103.53 of buying power for one share at $100 (Alpaca's charge for a market buy); $100 left" });
    expect(planBracket("short", 100, params, -5)).toEqual({ skip: "needs $104.03 of buying power for one share at $100 (Alpaca's charge for a short sale); $-5 left" });
  });
});
