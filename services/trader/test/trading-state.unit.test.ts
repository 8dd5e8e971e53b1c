import { describe, expect, it } from "vitest";
import { profitOf, traderStateSchema, TradingState, type OpenPosition } from "../src/session/state.js";

const identity = {
  sessionStartedAt: "2026-01-05T15:30:00.000Z",
  brokerSessionStartedAt: "2026-01-05T15:29:58.000Z",
  symbols: ["AAPL", "MSFT"],
  strategy: { kind: "rule" as const, stopLossPct: 2, takeProfitPct: 4, positionSize: 1_000, lookbackBars: 5, entryThresholdPct: 0 },
};
const position = (symbol: string, fields: Partial<OpenPosition> = {}): OpenPosition => ({
  symbol,
  side: "long",
  qty: 10,
  entryPrice: 100,
  stopLoss: 98,
  takeProfit: 104,
  tradeNo: 1,
  origin: "strategy",
  openedAt: "2026-01-05T15:31:00.000Z",
  orders: { entryId: "o-1", entryClientOrderId: `s:${symbol}:1`, takeProfitId: "tp-1", stopLossId: "sl-1" },
  entryFilling: false,
  exit: null,
  closeAttempts: 0,
  exitFills: {},
  ...fields,
});

const fill = (id: string, filledQty: number, filledAvgPrice: number | null) => ({ id, filledQty, filledAvgPrice });

describe("profit of a trade", () => {
  it.each([
    { side: "long", qty: 10, entry: 100, exit: 104, pl: 40 },
    { side: "long", qty: 10, entry: 100, exit: 98, pl: -20 },
    { side: "short", qty: 10, entry: 100, exit: 96, pl: 40 },
    { side: "short", qty: 10, entry: 100, exit: 102, pl: -20 },
    { side: "long", qty: 3, entry: 10.001, exit: 10.01, pl: 0.03 },
    { side: "long", qty: 7, entry: 33.33, exit: 33.33, pl: 0 },
  ] as const)("$side $qty from $entry to $exit is $pl", ({ side, qty, entry, exit, pl }) => {
    expect(profitOf(side, qty, entry, exit)).toBe(pl);
  });
});

describe("trading state", () => {
  it("numbers each symbol's trades from 1, never reusing a number the broker has seen", () => {
    const state = new TradingState(identity);
    expect(state.nextTradeNo("AAPL")).toBe(1);
    state.markTradeNoUsed("AAPL", 3);
    state.markTradeNoUsed("AAPL", 2);
    expect(state.nextTradeNo("AAPL")).toBe(4);
    expect(state.takeTradeNo("AAPL")).toBe(4);
    expect(state.nextTradeNo("AAPL")).toBe(5);
    expect(state.nextTradeNo("MSFT")).toBe(1);
  });

  it("opens a position in place of its pending entry, and books its close", () => {
    const state = new TradingState(identity);
    state.pendingEntries.set("AAPL", { symbol: "AAPL", side: "long", qty: 10, tradeNo: 2, clientOrderId: "s:AAPL:2", orderId: "o-2", takeProfit: 104, stopLoss: 98, submittedAt: "2026-01-05T15:31:00.000Z", confirmed: true });
    expect(state.isEngaged("AAPL")).toBe(true);
    state.open(position("AAPL", { tradeNo: 2 }));
    expect([state.pendingEntries.size, state.positions.size, state.nextTradeNo("AAPL")]).toEqual([0, 1, 3]);

    expect(state.close("AAPL", { fills: [fill("tp-1", 10, 104)], via: "take_profit" })).toEqual({ symbol: "AAPL", side: "long", qty: 10, entryPrice: 100, exitPrice: 104, realizedPl: 40, via: "take_profit", tradeNo: 2 });
    expect([state.isEngaged("AAPL"), state.closedTrades, state.realizedPl]).toEqual([false, 1, 40]);
  });

  it("books a close at an unknown price without P&L, and a partial one for its quantity", () => {
    const state = new TradingState(identity);
    state.open(position("AAPL"));
    state.open(position("MSFT"));
    expect(state.close("AAPL", { fills: [], via: "unknown" })).toMatchObject({ qty: 10, exitPrice: null, realizedPl: 0 });
    expect(state.close("MSFT", { fills: [fill("other", 4, 90)], via: "other_order" })).toMatchObject({ qty: 4, exitPrice: 90, realizedPl: -40 });
    expect([state.closedTrades, state.realizedPl]).toEqual([2, -40]);
  });

  it("books each exit fill when it is seen, once, and the trade whole when it closes", () => {
    const state = new TradingState(identity);
    state.open(position("AAPL"));
    const held = state.positions.get("AAPL")!;
    expect(state.bookExitFills(held, [fill("tp-1", 3, 104)])).toBe(12);
    expect(state.bookExitFills(held, [fill("tp-1", 3, 104)])).toBe(0);
    // An order read filled less than booked (an older answer) changes nothing; one without a price waits.
    expect(state.bookExitFills(held, [fill("tp-1", 2, 104), fill("close-1", 1, null)])).toBe(0);
    expect(state.realizedPl).toBe(12);
    const resumed = TradingState.fromSnapshot(traderStateSchema.parse(state.toSnapshot(new Date(0))));
    expect(resumed.close("AAPL", { fills: [fill("tp-1", 7, 104.5)], via: "take_profit" })).toMatchObject({ qty: 7, exitPrice: 104.5, realizedPl: 31.5 });
    expect([resumed.closedTrades, resumed.realizedPl]).toEqual([1, 31.5]);
    // Booked earlier by one order, closed by another that the close sees alone.
    state.bookExitFills(held, [fill("tp-1", 4, 104)]);
    expect(state.close("AAPL", { fills: [fill("close-1", 6, 99)], via: "close_order" })).toMatchObject({ qty: 10, exitPrice: 101, realizedPl: 10 });
    expect(state.realizedPl).toBe(10);
  });

  it("books a trade closed by several orders at the cent its fills realised, not at the sum of its parts rounded", () => {
    const state = new TradingState(identity);
    // Entry 3 @ 100.003333 (2 @ 100.00, 1 @ 100.01), closed a share at a time @ 101: each part is 0.996667, a cent
    // each rounded, 3.00 together; the fills realised 303 - 300.01.
    state.open(position("AAPL", { qty: 3, entryPrice: 100.003333 }));
    const held = state.positions.get("AAPL")!;
    expect(state.bookExitFills(held, [fill("tp-1", 1, 101)])).toBe(1);
    expect(state.close("AAPL", { fills: [fill("close-1", 1, 101), fill("close-2", 1, 101)], via: "close_order" }).realizedPl).toBe(2.99);
    expect(state.realizedPl).toBe(2.99);
  });

  it("books the part-exited positions' P&L rounded once over all of them, as the broker's total is", () => {
    const state = new TradingState(identity);
    // Each entered 3 @ 100.003333 and part-exited 1 @ 101: 0.996667 each, 1.993334 together.
    state.open(position("AAPL", { qty: 3, entryPrice: 100.003333 }));
    state.open(position("MSFT", { qty: 3, entryPrice: 100.003333 }));
    expect(state.bookExitFills(state.positions.get("AAPL")!, [fill("tp-1", 1, 101)])).toBe(1);
    expect(state.bookExitFills(state.positions.get("MSFT")!, [fill("tp-1", 1, 101)])).toBe(0.99);
    expect(state.realizedPl).toBe(1.99);
    // Closed, each trade adds its own cents (2.99 for 3 @ 101 less 300.01), the one still open its part.
    expect(state.close("AAPL", { fills: [fill("tp-1", 3, 101)], via: "take_profit" }).realizedPl).toBe(2.99);
    expect(state.realizedPl).toBe(3.99);
  });

  it("reads a stored position from before exit fills were booked as none booked", () => {
    const snapshot = new TradingState(identity).toSnapshot(new Date(0));
    const { exitFills, ...older } = position("AAPL");
    expect(exitFills).toEqual({});
    expect(traderStateSchema.parse({ ...snapshot, positions: [older] }).positions[0]!.exitFills).toEqual({});
  });

  it("refuses to close what it does not hold, naming the symbol", () => {
    expect(() => new TradingState(identity).close("AAPL", { fills: [], via: "unknown" })).toThrow("cannot close AAPL: the session holds no position in it");
  });

  it("keeps realised P&L in cents however many trades add to it", () => {
    const state = new TradingState(identity);
    for (let tradeNo = 1; tradeNo <= 10; tradeNo += 1) state.book({ symbol: "AAPL", side: "long", qty: 1, entryPrice: 1, exitPrice: 1.1, realizedPl: 0.1, via: "take_profit", tradeNo });
    expect(state.realizedPl).toBe(1);
    expect(state.nextTradeNo("AAPL")).toBe(11);
  });

  it("counts reasoning runs per symbol", () => {
    const state = new TradingState(identity);
    expect([state.nextDecisionRun("AAPL"), state.nextDecisionRun("AAPL"), state.nextDecisionRun("MSFT")]).toEqual([1, 2, 1]);
  });

  it("round-trips through a snapshot that its schema accepts, in a stable order", () => {
    const state = new TradingState(identity);
    state.open(position("MSFT"));
    state.open(position("AAPL", { side: "short", tradeNo: 3 }));
    state.nextDecisionRun("MSFT");
    state.account = { id: "acct", portfolioValue: 100_000, buyingPower: 90_000, cash: 95_000, asOf: "2026-01-05T15:32:00.000Z" };
    state.book({ symbol: "MSFT", side: "long", qty: 1, entryPrice: 400, exitPrice: 401, realizedPl: 1, via: "close_order", tradeNo: 2 });

    const snapshot = state.toSnapshot(new Date("2026-01-05T15:33:00.000Z"));
    expect(traderStateSchema.parse(snapshot)).toEqual(snapshot);
    expect(snapshot.positions.map((held) => held.symbol)).toEqual(["AAPL", "MSFT"]);
    expect(snapshot.nextTradeNo).toEqual({ AAPL: 4, MSFT: 3 });
    expect(TradingState.fromSnapshot(snapshot).toSnapshot(new Date(snapshot.takenAt))).toEqual(snapshot);
  });

  it("clones deeply, so a dry run cannot change the session", () => {
    const state = new TradingState(identity);
    state.open(position("AAPL"));
    const copy = state.clone();
    copy.positions.get("AAPL")!.qty = 1;
    copy.close("AAPL", { fills: [], via: "unknown" });
    expect(state.positions.get("AAPL")?.qty).toBe(10);
    expect(state.closedTrades).toBe(0);
  });

  it("takes a snapshot that shares no object with the state, which changes on while the snapshot is sent", () => {
    const state = new TradingState(identity);
    state.open(position("AAPL", { exit: { clientOrderId: "s:AAPL:1:close", orderId: null, method: "market", requestedAt: "2026-01-05T15:32:00.000Z" }, exitFills: { "tp-1": { qty: 2, price: 104, realizedPl: 8 } } }));
    state.pendingEntries.set("MSFT", { symbol: "MSFT", side: "long", qty: 5, tradeNo: 1, clientOrderId: "s:MSFT:1", orderId: null, takeProfit: 104, stopLoss: 98, submittedAt: "2026-01-05T15:32:00.000Z", confirmed: false });
    state.account = { id: "acct", portfolioValue: 100_000, buyingPower: 90_000, cash: 95_000, asOf: "2026-01-05T15:32:00.000Z" };
    const snapshot = state.toSnapshot(new Date("2026-01-05T15:33:00.000Z"));
    const taken = structuredClone(snapshot);

    const held = state.positions.get("AAPL")!;
    held.qty = 20;
    held.orders.stopLossId = "sl-2";
    held.exit!.orderId = "close-1";
    held.exitFills["tp-1"]!.qty = 4;
    state.pendingEntries.get("MSFT")!.orderId = "o-2";
    state.account.buyingPower = 0;
    state.identity.symbols.push("TSLA");
    state.identity.strategy.positionSize = 5;
    expect(snapshot).toEqual(taken);
  });

  it.each([
    { name: "a zero quantity", change: { positions: [position("AAPL", { qty: 0 })] }, path: "positions" },
    { name: "a trade number 0", change: { nextTradeNo: { AAPL: 0 } }, path: "nextTradeNo" },
    { name: "an unknown field", change: { extra: true }, path: "" },
    { name: "no symbols", change: { symbols: [] }, path: "symbols" },
  ])("refuses a stored state with $name", ({ change, path }) => {
    const stored = { ...new TradingState(identity).toSnapshot(new Date(0)), ...change };
    const parsed = traderStateSchema.safeParse(stored);
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]!.path.join(".")).toContain(path);
  });
});
