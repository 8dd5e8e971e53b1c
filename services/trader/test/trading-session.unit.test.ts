import { SessionTakenOverError } from "@savepoint/shared";
import { InMemoryCheckpoints, recordingLogger } from "@savepoint/shared/testing";
import { describe, expect, it } from "vitest";
import { BrokerRateLimitedError, BrokerReadError, BrokerRefusedError, BrokerUnavailableError } from "../src/broker/errors.js";
import type { Bar } from "../src/broker/types.js";
import { RedisUnavailableError } from "../src/redis.js";
import { SessionCheckpoints, TRADER_SERVICE } from "../src/session/checkpoints.js";
import { TradingState } from "../src/session/state.js";
import { TradingSession, type Ownership } from "../src/session/trading-session.js";
import type { HeldPosition, MarketSnapshot, Signal, Strategy } from "../src/strategy/strategy.js";
import { bracketOrder, brokerPosition, ScriptedBroker, SUBMITTED_AT } from "./scripted-broker.js";

/**
 * The trading loop on a scripted broker, a scripted strategy and in-memory checkpoints: what it orders, when,
 * what it books and checkpoints, and how each kind of failure ends or skips a tick. recovery.test.ts and
 * crash-runs.test.ts run the same loop against the simulator, Redis and the checkpointer.
 */

const SESSION = "trader-1";
const ENTRY = `${SESSION}:AAPL:1`;
const bar = (minutesAgo: number, close: number): Bar => ({ t: new Date(SUBMITTED_AT.getTime() - minutesAgo * 60_000), o: close, h: close, l: close, c: close, v: 100 });

/** Answers each decision with `decide`, and keeps what it was shown. */
class ScriptedStrategy implements Strategy {
  readonly kind = "rule";
  readonly decisions: { market: MarketSnapshot; position: HeldPosition | null }[] = [];

  constructor(private readonly decide_: (position: HeldPosition | null, decisions: number) => Signal) {}

  async decide(market: MarketSnapshot, position: HeldPosition | null): Promise<Signal> {
    this.decisions.push({ market, position });
    return this.decide_(position, this.decisions.length);
  }

  async close(): Promise<void> {}
}

const openLong = (): Signal => ({ action: "OPEN_LONG", reason: "scripted" });
const closeWhenHeld = (position: HeldPosition | null): Signal => (position ? { action: "CLOSE", reason: "scripted exit" } : { action: "HOLD", reason: "flat" });

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

function setUp(options: { strategy?: ScriptedStrategy; ownership?: Ownership; store?: InMemoryCheckpoints; durationMs?: number | null; checkpointIntervalMs?: number; legsCheckIntervalMs?: number } = {}) {
  const broker = new ScriptedBroker().addBar("AAPL", bar(0, 100));
  const strategy = options.strategy ?? new ScriptedStrategy(openLong);
  const store = options.store ?? new InMemoryCheckpoints();
  const { logger, lines } = recordingLogger<LogLine>("debug");
  const state = new TradingState({
    sessionStartedAt: SUBMITTED_AT.toISOString(),
    brokerSessionStartedAt: SUBMITTED_AT.toISOString(),
    symbols: ["AAPL"],
    strategy: { kind: "rule", stopLossPct: 2, takeProfitPct: 4, positionSize: 1_000, lookbackBars: 1, entryThresholdPct: 0 },
  });
  const confirmations: number[] = [];
  const ownership = options.ownership ?? { confirm: async () => void confirmations.push(broker.calls.length) };
  const checkpoints = new SessionCheckpoints(store, { sessionId: SESSION, ownerId: "account-1", epoch: 0 }, logger, (error) => session.takeOver(error));
  const session: TradingSession = new TradingSession({ broker, strategy, checkpoints, ownership, logger }, state, {
    sessionId: SESSION,
    intervalMs: 0,
    checkpointIntervalMs: options.checkpointIntervalMs ?? 3_600_000,
    durationMs: options.durationMs === undefined ? null : options.durationMs,
    ...(options.legsCheckIntervalMs === undefined ? {} : { legsCheckIntervalMs: options.legsCheckIntervalMs }),
  });
  // The session's checkpoints are sent in the background: the newest once those handed off are in.
  const latest = async () => {
    await checkpoints.accepted();
    return store.latest({ service: TRADER_SERVICE, sessionId: SESSION });
  };
  return { broker, strategy, store, lines, state, session, checkpoints, confirmations, latest };
}

describe("one tick", () => {
  it("places the strategy's entry as a bracket under the trade's client_order_id, after confirming ownership", async () => {
    const { broker, session, state, confirmations } = setUp();
    expect(await session.tick()).toEqual([]);

    expect(broker.orders).toHaveLength(1);
    expect(broker.orders[0]).toMatchObject({ clientOrderId: ENTRY, symbol: "AAPL", side: "buy", qty: 10, legs: [{ limitPrice: 104 }, { stopPrice: 98 }] });
    expect(confirmations).toEqual([broker.calls.indexOf("submitBracket")]);
    expect(state.pendingEntries.get("AAPL")).toMatchObject({ clientOrderId: ENTRY, orderId: broker.orders[0]!.id, confirmed: true, takeProfit: 104, stopLoss: 98 });
    expect(state.nextTradeNo("AAPL")).toBe(2);
    // Less what Alpaca charges ten shares of a market buy at $100: $102.50 each, and 1% for a move.
    expect(state.account?.buyingPower).toBe(98_964.75);
  });

  it("decides nothing while the market is closed, but still syncs", async () => {
    const { broker, strategy, session } = setUp();
    broker.marketClock.isOpen = false;
    await session.tick();
    expect(strategy.decisions).toEqual([]);
    expect(broker.calls).toEqual(["clock", "account", "positions", "latestBars"]);
  });

  it("does not decide again for a symbol whose entry is on its way", async () => {
    const { broker, strategy, session } = setUp();
    await session.tick();
    await session.tick();
    expect(strategy.decisions).toHaveLength(1);
    expect(broker.orders).toHaveLength(1);
  });

  it("books the fill on the next tick, checkpoints that event and logs it", async () => {
    const { broker, session, state, lines, latest } = setUp();
    await session.tick();
    broker.fillEntry(ENTRY, 100.2);

    expect(await session.tick()).toEqual([{ kind: "entry_filled", symbol: "AAPL", tradeNo: 1, clientOrderId: ENTRY, side: "long", qty: 10, fillPrice: 100.2 }]);
    expect(state.positions.get("AAPL")).toMatchObject({ qty: 10, entryPrice: 100.2, takeProfit: 104, stopLoss: 98 });
    expect(await latest()).toMatchObject({ kind: "event", epoch: 0, seq: 0, state: { positions: [{ symbol: "AAPL", qty: 10 }], pendingEntries: [] } });
    expect(lines).toContainEqual(expect.objectContaining({ msg: "Entry filled", symbol: "AAPL", price: 100.2 }));
  });

  it("skips an entry the buying power cannot pay for", async () => {
    const { broker, session, state, lines } = setUp();
    broker.accountFigures.buyingPower = 100;
    await session.tick();
    expect(broker.calls).not.toContain("submitBracket");
    expect(state.pendingEntries.size).toBe(0);
    expect(lines).toContainEqual(expect.objectContaining({ msg: "entry skipped", problem: "needs $103.53 of buying power for one share at $100 (Alpaca's charge for a market buy); $100 left" }));
  });

  it("tracks an entry whose answer was lost but which reached the broker, without placing it again", async () => {
    const { broker, session, state } = setUp();
    const submit = broker.submitBracket.bind(broker);
    broker.submitBracket = async (request) => {
      await submit(request);
      throw new Error("socket hang up");
    };
    await session.tick();
    expect(broker.orders).toHaveLength(1);
    expect(state.pendingEntries.get("AAPL")).toMatchObject({ clientOrderId: ENTRY, orderId: broker.orders[0]!.id, confirmed: true });
  });

  it("keeps an entry with no answer and no order as unconfirmed, drops it when it never surfaces, and reuses its id", async () => {
    const { broker, session, state } = setUp();
    broker.failNext("submitBracket", new Error("socket hang up"));
    await session.tick();
    expect(state.pendingEntries.get("AAPL")).toMatchObject({ clientOrderId: ENTRY, orderId: null, confirmed: false });

    expect(await session.tick()).toEqual([{ kind: "placement_not_found", symbol: "AAPL", clientOrderId: ENTRY }]);
    expect(broker.orders.map((order) => order.clientOrderId)).toEqual([ENTRY]);
    expect(state.pendingEntries.get("AAPL")).toMatchObject({ clientOrderId: ENTRY, confirmed: true });
  });

  it("exits on CLOSE by replacing the take-profit leg at a marketable price under the trade's close id, and asks once", async () => {
    const { broker, session, state, latest } = setUp({ strategy: new ScriptedStrategy((position, decisions) => (decisions === 1 ? openLong() : closeWhenHeld(position))) });
    await session.tick();
    const entry = broker.fillEntry(ENTRY, 100);
    await session.tick();

    expect(broker.calls.slice(broker.calls.lastIndexOf("latestBars"))).toEqual(["latestBars", "order", "replaceOrder"]);
    // The stop-loss keeps working while the replace is pending; nothing is canceled, nothing sold beside it.
    expect(entry.legs.map((leg) => leg.status)).toEqual(["pending_replace", "new"]);
    const replacement = await broker.orderByClientOrderId(`${ENTRY}:close`);
    // 2.5% through the last trade (100) would be 97.50; the take-profit stays a cent inside the stop-loss (98).
    expect(replacement).toMatchObject({ type: "limit", limitPrice: 98.01, qty: 10, side: "sell" });
    expect(state.positions.get("AAPL")).toMatchObject({ exit: { clientOrderId: `${ENTRY}:close`, orderId: replacement!.id, method: "replace_take_profit" }, closeAttempts: 1 });
    expect((await latest())?.state).toMatchObject({ positions: [{ exit: { clientOrderId: `${ENTRY}:close` } }] });

    // Ticks while the broker completes the replace watch it; none asks again.
    await session.tick();
    broker.completeChanges();
    await session.tick();
    expect(broker.calls.filter((call) => call === "replaceOrder")).toHaveLength(1);
    expect(entry.legs.map((leg) => leg.id)).toEqual([replacement!.id, entry.legs[1]!.id]);

    broker.fillLeg(replacement!.id, 99);
    const changes = await session.tick();
    expect(changes).toEqual([{ kind: "position_closed", openedUnseen: false, trade: expect.objectContaining({ via: "close_order", exitPrice: 99, realizedPl: -10 }) }]);
    expect(state.positions.has("AAPL")).toBe(false);
  });

  it("waits while a cancel or replace of the legs is pending at the broker, then exits", async () => {
    const { broker, session, lines } = setUp({ strategy: new ScriptedStrategy((position, decisions) => (decisions === 1 ? openLong() : closeWhenHeld(position))) });
    await session.tick();
    const entry = broker.fillEntry(ENTRY, 100);
    entry.legs[0]!.status = "pending_replace";
    await session.tick();
    expect(broker.calls).not.toContain("replaceOrder");
    expect(broker.calls).not.toContain("submitMarket");
    expect(lines).toContainEqual(expect.objectContaining({ msg: "exit waits: a cancel or replace of the bracket's legs is still in progress at the broker" }));

    entry.legs[0]!.status = "new";
    await session.tick();
    expect(broker.calls).toContain("replaceOrder");
  });

  it("places no exit for what its legs closed after the tick's sync, and books their fill on the next tick", async () => {
    let broker: ScriptedBroker | undefined;
    const { broker: scripted, session, state, lines } = setUp({
      strategy: new ScriptedStrategy((position, decisions) => {
        // Between this tick's sync and its exit, the take-profit fills (and the broker cancels the stop-loss).
        if (position && decisions === 2) broker!.fillLeg(broker!.orders[0]!.legs[0]!.id, 104);
        return decisions === 1 ? openLong() : closeWhenHeld(position);
      }),
    });
    broker = scripted;
    await session.tick();
    broker.fillEntry(ENTRY, 100);
    await session.tick();
    expect(broker.calls).not.toContain("submitMarket");
    expect(broker.calls).not.toContain("replaceOrder");
    expect(lines).toContainEqual(expect.objectContaining({ msg: "exit waits: the bracket's legs have filled since the last sync, which the next one books" }));
    expect(await session.tick()).toEqual([{ kind: "position_closed", openedUnseen: false, trade: expect.objectContaining({ via: "take_profit", exitPrice: 104, realizedPl: 40 }) }]);
    expect(state.positions.has("AAPL")).toBe(false);
  });

  it("waits to exit while the entry is still filling (its legs are held until it has)", async () => {
    const { broker, session, state } = setUp({ strategy: new ScriptedStrategy((position, decisions) => (decisions === 1 ? openLong() : closeWhenHeld(position))) });
    await session.tick();
    broker.fillEntry(ENTRY, 100, 4);
    await session.tick();
    expect(state.positions.get("AAPL")).toMatchObject({ qty: 4, exit: null });
    expect(broker.calls).not.toContain("replaceOrder");

    broker.fillEntry(ENTRY, 100);
    await session.tick();
    expect(state.positions.get("AAPL")).toMatchObject({ qty: 10, exit: { method: "replace_take_profit" } });
  });

  it("closes at market, unasked, what a partly filled entry bought once the entry ends and takes its legs along", async () => {
    const { broker, session, state, strategy } = setUp({ strategy: new ScriptedStrategy((position) => (position ? { action: "HOLD", reason: "hold" } : openLong())) });
    await session.tick();
    const entry = broker.fillEntry(ENTRY, 100, 4);
    await session.tick();
    expect(state.positions.get("AAPL")).toMatchObject({ qty: 4, entryFilling: true });

    // The rest is canceled at the broker (Alpaca cancels the whole group): the position is unchanged, yet seen.
    entry.status = "canceled";
    for (const leg of entry.legs) leg.status = "canceled";
    const decided = strategy.decisions.length;
    expect(await session.tick()).toEqual([expect.objectContaining({ kind: "protection_lost", symbol: "AAPL" })]);
    expect(strategy.decisions).toHaveLength(decided);
    expect(broker.orders.at(-1)).toMatchObject({ clientOrderId: `${ENTRY}:close`, side: "sell", qty: 4, type: "market" });
    expect(state.positions.get("AAPL")).toMatchObject({ entryFilling: false, exit: { method: "market", clientOrderId: `${ENTRY}:close` } });
  });

  it("finds bracket legs canceled at the broker by hand when it checks the legs, and closes what they protected at market", async () => {
    const hold = new ScriptedStrategy((position) => (position ? { action: "HOLD", reason: "hold" } : openLong()));
    const { broker, session, state } = setUp({ strategy: hold, legsCheckIntervalMs: 0 });
    await session.tick();
    const entry = broker.fillEntry(ENTRY, 100);
    await session.tick();
    expect(state.positions.get("AAPL")).toMatchObject({ qty: 10, orders: { takeProfitId: entry.legs[0]!.id, stopLossId: entry.legs[1]!.id } });

    // While the legs work, the check lists the working orders and reads nothing more.
    const before = broker.calls.length;
    expect(await session.tick()).toEqual([]);
    expect(broker.calls.slice(before)).toEqual(["clock", "account", "positions", "openOrders", "latestBars"]);

    for (const leg of entry.legs) leg.status = "canceled";
    expect(await session.tick()).toEqual([expect.objectContaining({ kind: "protection_lost", symbol: "AAPL" })]);
    expect(broker.orders.at(-1)).toMatchObject({ clientOrderId: `${ENTRY}:close`, side: "sell", qty: 10, type: "market" });
  });

  it("checks the legs only once its interval has passed: a quiet tick reads the account and positions", async () => {
    const hold = new ScriptedStrategy((position) => (position ? { action: "HOLD", reason: "hold" } : openLong()));
    const { broker, session } = setUp({ strategy: hold, legsCheckIntervalMs: 3_600_000 });
    await session.tick();
    const entry = broker.fillEntry(ENTRY, 100);
    await session.tick();
    for (const leg of entry.legs) leg.status = "canceled";
    const before = broker.calls.length;
    expect(await session.tick()).toEqual([]);
    expect(broker.calls.slice(before)).toEqual(["clock", "account", "positions", "latestBars"]);
  });

  it("gives a position adopted without a working bracket a protective stop at the strategy's stop-loss from its average entry, on the adopting tick", async () => {
    const { broker, session, state, strategy, latest } = setUp({ strategy: new ScriptedStrategy(() => ({ action: "HOLD", reason: "hold" })) });
    broker.heldPositions.set("AAPL", brokerPosition("AAPL", 7, 101));
    expect(await session.tick()).toEqual([{ kind: "position_adopted", symbol: "AAPL", side: "long", qty: 7, avgEntryPrice: 101 }]);
    // --stop-loss-pct 2 below 101, for all it holds, under the trade's close id; no later tick leaves it without a stop.
    expect(broker.orders.at(-1)).toMatchObject({ clientOrderId: `${SESSION}:AAPL:1:close`, side: "sell", qty: 7, type: "stop", stopPrice: 98.98 });
    const position = state.positions.get("AAPL")!;
    expect(position).toMatchObject({ origin: "adopted", stopLoss: 98.98, closeAttempts: 1, exit: { method: "protective_stop", clientOrderId: `${SESSION}:AAPL:1:close` } });
    expect((await latest())?.state).toMatchObject({ positions: [{ symbol: "AAPL", exit: { method: "protective_stop" } }] });
    expect(strategy.decisions).toHaveLength(0);

    // From the next tick the strategy decides on it as on its own (a CLOSE: see below).
    await session.tick();
    expect(strategy.decisions).toHaveLength(1);
    expect(broker.calls).not.toContain("cancelOrder");
  });

  it("closes an adopted position at market when its last trade is already through the stop it would get, and keeps one adopted with its bracket's legs", async () => {
    const { broker, session } = setUp({ strategy: new ScriptedStrategy(() => ({ action: "HOLD", reason: "hold" })) });
    // Last trade 100, long from 110: a stop 2% below, at 107.80, would have sold it already.
    broker.heldPositions.set("AAPL", brokerPosition("AAPL", 7, 110));
    await session.tick();
    expect(broker.orders.at(-1)).toMatchObject({ clientOrderId: `${SESSION}:AAPL:1:close`, side: "sell", qty: 7, type: "market" });

    const kept = setUp({ strategy: new ScriptedStrategy(() => ({ action: "HOLD", reason: "hold" })) });
    kept.broker.orders.push(bracketOrder({ clientOrderId: "trader-old:AAPL:1", symbol: "AAPL", qty: 7, filledAt: 100 }));
    kept.broker.heldPositions.set("AAPL", brokerPosition("AAPL", 7, 100));
    expect((await kept.session.tick()).map((change) => change.kind)).toEqual(["position_adopted", "legs_attached"]);
    expect(kept.broker.calls).not.toContain("submitMarket");
    expect(kept.broker.calls).not.toContain("submitStop");
    expect(kept.strategy.decisions).toHaveLength(1);
  });

  it("cancels an adopted position's protective stop when the strategy closes it, then closes it at market instead of protecting it again", async () => {
    const { broker, session, state } = setUp({ strategy: new ScriptedStrategy(closeWhenHeld) });
    broker.heldPositions.set("AAPL", brokerPosition("AAPL", 7, 101));
    await session.tick();
    const stop = broker.orders.at(-1)!;
    await session.tick();
    expect(broker.calls.filter((call) => call === "cancelOrder")).toHaveLength(1);
    expect(state.positions.get("AAPL")!.exit).toMatchObject({ method: "cancel_protection", orderId: stop.id });
    broker.completeChanges();
    await session.tick();
    await session.tick();
    expect(broker.calls.filter((call) => call === "submitStop")).toHaveLength(1);
    expect(broker.orders.at(-1)).toMatchObject({ clientOrderId: `${SESSION}:AAPL:1:close:2`, type: "market", qty: 7 });
  });

  it("recognises an exit asked for before a restart whose checkpoint was lost, and does not ask again", async () => {
    const { broker, session, state } = setUp({ strategy: new ScriptedStrategy((position, decisions) => (decisions === 1 ? openLong() : closeWhenHeld(position))) });
    await session.tick();
    broker.fillEntry(ENTRY, 100);
    await session.tick();
    const position = state.positions.get("AAPL")!;
    Object.assign(position, { exit: null, closeAttempts: 0 });

    await session.tick();
    expect(broker.calls.filter((call) => call === "replaceOrder")).toHaveLength(1);
    expect(position).toMatchObject({ exit: { clientOrderId: `${ENTRY}:close` }, closeAttempts: 1 });
  });

  it("does not exit when the broker refuses the replace, and tries again on the next CLOSE", async () => {
    const { broker, session, state, lines } = setUp({ strategy: new ScriptedStrategy((position, decisions) => (decisions === 1 ? openLong() : closeWhenHeld(position))) });
    await session.tick();
    broker.fillEntry(ENTRY, 100);
    broker.failNext("replaceOrder", new BrokerRefusedError("PATCH /v2/orders/x", "invalid", 422, 42210000, "invalid limit_price"));
    await session.tick();
    expect(state.positions.get("AAPL")).toMatchObject({ exit: null, closeAttempts: 0 });
    expect(lines).toContainEqual(expect.objectContaining({ msg: "exit refused by the broker; nothing changed, the next sync shows the position as the broker has it" }));
    await session.tick();
    expect(state.positions.get("AAPL")).toMatchObject({ exit: { clientOrderId: `${ENTRY}:close` }, closeAttempts: 1 });
  });
});

// Alpaca makes a part-filled order's replacement a new order for its whole qty (Alpaca-API#165), so a take-profit
// leg that has filled in part is not replaced: the legs are canceled and the rest closed at market.
describe("exiting once the take-profit has filled in part", () => {
  /** Opens a long of 10 at 100 and holds it until `closing.now` is set, then asks to close it. */
  function setUpHeld() {
    const closing = { now: false };
    const parts = setUp({ strategy: new ScriptedStrategy((position) => (!position ? openLong() : closing.now ? { action: "CLOSE", reason: "scripted exit" } : { action: "HOLD", reason: "hold" })) });
    return { ...parts, closing };
  }
  /** The broker fills a close order whole at `price`: the position is gone. */
  function fillClose(broker: ScriptedBroker, clientOrderId: string, price: number) {
    const order = broker.orders.find((candidate) => candidate.clientOrderId === clientOrderId)!;
    Object.assign(order, { status: "filled", filledQty: order.qty, filledAvgPrice: price, filledAt: SUBMITTED_AT });
    broker.heldPositions.delete(order.symbol);
  }

  it("cancels the legs instead of replacing the leg, closes the rest at market once they are canceled, and books every fill", async () => {
    const { broker, session, state, closing, latest } = setUpHeld();
    await session.tick();
    const entry = broker.fillEntry(ENTRY, 100);
    await session.tick();
    const [takeProfit, stopLoss] = entry.legs;
    broker.fillLeg(takeProfit!.id, 104, 3);
    await session.tick();
    expect(state.positions.get("AAPL")).toMatchObject({ qty: 7, exitFills: { [takeProfit!.id]: { qty: 3, price: 104, realizedPl: 12 } } });
    expect(stopLoss!.qty).toBe(7);

    closing.now = true;
    await session.tick();
    expect(broker.calls).not.toContain("replaceOrder");
    expect(broker.calls.filter((call) => call === "cancelOrder")).toHaveLength(1);
    expect(entry.legs.map((leg) => leg.status)).toEqual(["pending_cancel", "pending_cancel"]);
    expect(state.positions.get("AAPL")).toMatchObject({ exit: { orderId: takeProfit!.id, method: "cancel_protection" } });
    expect((await latest())?.state).toMatchObject({ positions: [{ exit: { method: "cancel_protection" } }] });

    // Nothing is sold beside the legs while their cancel is pending (Alpaca would refuse it, held_for_orders).
    await session.tick();
    expect(broker.calls).not.toContain("submitMarket");
    broker.completeChanges();
    const changes = await session.tick();
    expect(changes).toEqual([expect.objectContaining({ kind: "protection_lost", symbol: "AAPL" })]);
    expect(broker.orders.at(-1)).toMatchObject({ clientOrderId: `${ENTRY}:close`, type: "market", side: "sell", qty: 7 });
    expect(state.positions.get("AAPL")).toMatchObject({ exit: { method: "market", clientOrderId: `${ENTRY}:close` } });

    fillClose(broker, `${ENTRY}:close`, 105);
    expect(await session.tick()).toEqual([
      { kind: "position_closed", openedUnseen: false, trade: expect.objectContaining({ qty: 10, exitPrice: 104.7, realizedPl: 47, via: "close_order" }) },
    ]);
    expect(state.realizedPl).toBe(47);
  });

  it("lets a replace the leg's partial fill overtook be rejected, then exits by canceling the legs under the next close id", async () => {
    const { broker, session, state, closing } = setUpHeld();
    await session.tick();
    const entry = broker.fillEntry(ENTRY, 100);
    await session.tick();
    closing.now = true;
    await session.tick();
    const takeProfit = entry.legs[0]!;
    const replacement = (await broker.orderByClientOrderId(`${ENTRY}:close`))!;
    expect(takeProfit.status).toBe("pending_replace");

    // The old leg works until the replace completes: it fills 3, so the replacement (for 10) is rejected.
    broker.fillLeg(takeProfit.id, 104, 3);
    broker.completeChanges();
    expect((await broker.order(replacement.id)).status).toBe("rejected");
    const changes = await session.tick();
    expect(changes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: "exit_partially_filled", exitedQty: 3, realizedPl: 12 }),
        expect.objectContaining({ kind: "exit_ended", clientOrderId: `${ENTRY}:close`, status: "rejected" }),
      ]),
    );
    expect(entry.legs.map((leg) => [leg.id, leg.status])).toEqual([
      [takeProfit.id, "pending_cancel"],
      [entry.legs[1]!.id, "pending_cancel"],
    ]);
    expect(state.positions.get("AAPL")).toMatchObject({ qty: 7, exit: { method: "cancel_protection" } });

    broker.completeChanges();
    await session.tick();
    expect(broker.orders.at(-1)).toMatchObject({ clientOrderId: `${ENTRY}:close:2`, type: "market", qty: 7 });
    fillClose(broker, `${ENTRY}:close:2`, 105);
    await session.tick();
    expect(state.positions.has("AAPL")).toBe(false);
    expect(state.realizedPl).toBe(47);
  });

  it("watches a cancel whose answer was lost, and asks again once the leg shows it was not taken", async () => {
    const { broker, session, state, closing, lines } = setUpHeld();
    await session.tick();
    const entry = broker.fillEntry(ENTRY, 100);
    await session.tick();
    broker.fillLeg(entry.legs[0]!.id, 104, 3);
    closing.now = true;
    broker.failNext("cancelOrder", new BrokerUnavailableError("DELETE /v2/orders/x", "timed out"));
    await session.tick();
    expect(state.positions.get("AAPL")).toMatchObject({ exit: { method: "cancel_protection" } });
    expect(lines).toContainEqual(expect.objectContaining({ msg: "exit: the legs' cancel got no answer; the sync watches the order" }));

    // The leg still works as before: the cancel never reached the broker. The exit is cleared and asked for again.
    expect(await session.tick()).toEqual([expect.objectContaining({ kind: "exit_ended", status: "partially_filled", filledQty: 3 })]);
    expect(broker.calls.filter((call) => call === "cancelOrder")).toHaveLength(2);
    expect(entry.legs.map((leg) => leg.status)).toEqual(["pending_cancel", "pending_cancel"]);
  });
});

describe("the loop", () => {
  it("ends at once, completed, when its duration is over", async () => {
    const { session, broker } = setUp({ durationMs: 0 });
    expect(await session.run()).toEqual({ reason: "completed" });
    expect(broker.calls).toEqual([]);
  });

  it("ends when stopped, once the step in progress is done", async () => {
    let session: TradingSession | undefined;
    const strategy = new ScriptedStrategy(() => {
      session!.stop("SIGTERM");
      return openLong();
    });
    const parts = setUp({ strategy });
    session = parts.session;
    expect(await session.run()).toEqual({ reason: "stopped", cause: "SIGTERM" });
    expect(strategy.decisions).toHaveLength(1);
    expect(parts.broker.orders.map((order) => order.clientOrderId)).toEqual([ENTRY]);
  });

  it.each([
    { name: "the broker cannot be read", failure: new BrokerReadError("GET /v2/account", "HTTP 503"), problem: "GET /v2/account failed: HTTP 503" },
    { name: "Redis does not answer the ownership check", failure: new RedisUnavailableError("Redis is down"), problem: "Redis is down" },
  ])("skips a tick when $name and trades on the next", async ({ failure, problem }) => {
    let session: TradingSession | undefined;
    let failOwnership = failure instanceof RedisUnavailableError;
    // The session is stopped once an order is about to go out, so the loop ends after placing it.
    const ownership: Ownership = {
      async confirm() {
        if (failOwnership) {
          failOwnership = false;
          throw failure;
        }
        session!.stop("done");
      },
    };
    const parts = setUp({ ownership });
    session = parts.session;
    if (failure instanceof BrokerReadError) parts.broker.failNext("account", failure);

    expect(await session.run()).toEqual({ reason: "stopped", cause: "done" });
    expect(parts.lines).toContainEqual(expect.objectContaining({ level: 40, msg: expect.stringMatching(/^tick skipped: /), problem }));
    expect(parts.broker.orders.map((order) => order.clientOrderId)).toEqual([ENTRY]);
  });

  it("ends as taken over, placing nothing, when the ownership check says another trader holds the session", async () => {
    const taken = new SessionTakenOverError("another trader holds account-1");
    const { session, broker } = setUp({ ownership: { confirm: async () => Promise.reject(taken) } });
    expect(await session.run()).toEqual({ reason: "taken_over", error: taken });
    expect(broker.calls).not.toContain("submitBracket");
  });

  it("ends as taken over once a checkpoint is refused for a stale epoch", async () => {
    const store = new InMemoryCheckpoints();
    const { session, checkpoints, broker } = setUp({ store });
    const newer = await store.claimEpoch(TRADER_SERVICE, SESSION, 1);
    await store.saveAndConfirm({ v: 1, service: TRADER_SERVICE, sessionId: SESSION, epoch: newer, seq: 0, kind: "periodic", status: "active", schemaVersion: 1, takenAt: SUBMITTED_AT.toISOString(), state: {} });

    session.checkpoint("periodic");
    await checkpoints.settle();
    const end = await session.run();
    expect(end).toMatchObject({ reason: "taken_over", error: { name: "SessionTakenOverError", message: expect.stringMatching(/^another trader has taken over session trader-1 \(this one holds epoch 0/) } });
    expect(broker.calls).toEqual([]);
  });

  it("ends as failed on an error no tick can be skipped for", async () => {
    const bug = new Error("strategy bug");
    const { session } = setUp({
      strategy: new ScriptedStrategy(() => {
        throw bug;
      }),
    });
    expect(await session.run()).toEqual({ reason: "failed", error: bug });
  });
});

describe("around the loop", () => {
  it("warms up on the bars since three lookback windows (at least 30 minutes) before the broker's now", async () => {
    const { broker, session, strategy } = setUp();
    broker.bars.set("AAPL", [bar(45, 90), bar(29, 95), bar(1, 99)]);
    await session.warmUp();
    broker.addBar("AAPL", bar(0, 100));
    await session.tick();
    expect(strategy.decisions[0]!.market.bars.map((b) => b.c)).toEqual([95, 99, 100]);
  });

  it("settles working entries at the end: cancels them, waits for the broker to complete the cancel, and books it", async () => {
    const { broker, session, state } = setUp();
    await session.tick();
    // The cancel is only accepted: until the broker completes it, the entry stays pending.
    await session.settleEntries(300);
    expect(broker.orders[0]!.status).toBe("pending_cancel");
    expect(state.pendingEntries.size).toBe(1);

    broker.completeChanges();
    await session.settleEntries(5_000);
    expect(broker.orders[0]!.status).toBe("canceled");
    expect(state.pendingEntries.size).toBe(0);
    expect(state.nextTradeNo("AAPL")).toBe(2);
  });

  it("settling, waits out a rate limit before asking the broker again, without a warning per look", async () => {
    const { broker, session, lines } = setUp();
    await session.tick();
    const resetsAt = Date.now() + 400;
    broker.failNext("cancelOrder", new BrokerRateLimitedError("DELETE /v2/orders/1", "rate limited (HTTP 429)", new Date(resetsAt)));
    const cancels: number[] = [];
    const cancel = broker.cancelOrder.bind(broker);
    broker.cancelOrder = (orderId) => (cancels.push(Date.now()), cancel(orderId));
    await session.settleEntries(1_000);
    expect(cancels).toHaveLength(2);
    expect(cancels[1]).toBeGreaterThanOrEqual(resetsAt);
    expect(broker.orders[0]!.status).toBe("pending_cancel");
    expect(lines.map((line) => line.msg)).not.toContain("could not cancel a working entry order; trying again");
  });

  /** A session whose part-filled entry (4 of 10 at 100, stop-loss 98) was canceled at its end while the market was closed. */
  async function endedClosedWithPartFill(strategy?: ScriptedStrategy) {
    const parts = setUp(strategy ? { strategy } : {});
    const { broker, session, state } = parts;
    await session.tick();
    broker.fillEntry(ENTRY, 100, 4);
    await session.tick();
    broker.marketClock = { ...broker.marketClock, isOpen: false };
    await session.settleEntries(300);
    broker.completeChanges();
    const settledFrom = parts.lines.length;
    await session.settleEntries(300);
    expect(state.positions.get("AAPL")).toMatchObject({ qty: 4, entryFilling: false, orders: { takeProfitId: null, stopLossId: null } });
    return { ...parts, settledFrom };
  }

  it("settles a part-filled entry at the end while the market is closed: what filled gets a protective gtc stop at its stop-loss, in the final checkpoint", async () => {
    const { broker, state, lines, latest, settledFrom } = await endedClosedWithPartFill();
    expect(broker.calls).not.toContain("submitMarket");
    expect(broker.orders[1]).toMatchObject({ clientOrderId: `${ENTRY}:close`, type: "stop", side: "sell", qty: 4, stopPrice: 98, status: "accepted" });
    expect(state.positions.get("AAPL")).toMatchObject({ closeAttempts: 1, exit: { clientOrderId: `${ENTRY}:close`, orderId: broker.orders[1]!.id, method: "protective_stop" } });
    expect((await latest())?.state).toMatchObject({ positions: [{ symbol: "AAPL", qty: 4, exit: { method: "protective_stop", clientOrderId: `${ENTRY}:close` } }] });
    // The stop works until its price: nothing is left waiting at the end of the session.
    expect(lines.slice(settledFrom).some((line) => line.msg.startsWith("entry orders not settled"))).toBe(false);
    expect(lines).toContainEqual(expect.objectContaining({ msg: expect.stringContaining("a protective gtc stop order at its stop-loss"), stopPrice: 98, qty: 4 }));
  });

  it("watches the protective stop on the next session's ticks and books its fill as the position's close", async () => {
    const { broker, session, state } = await endedClosedWithPartFill(new ScriptedStrategy((position) => (position ? { action: "HOLD", reason: "hold" } : openLong())));
    broker.marketClock = { ...broker.marketClock, isOpen: true };
    await session.tick();
    expect(broker.calls).not.toContain("submitMarket");
    expect(state.positions.get("AAPL")).toMatchObject({ exit: { method: "protective_stop" } });

    Object.assign(broker.orders[1]!, { status: "filled", filledQty: 4, filledAvgPrice: 97.9, filledAt: SUBMITTED_AT });
    broker.heldPositions.delete("AAPL");
    expect(await session.tick()).toEqual([{ kind: "position_closed", openedUnseen: false, trade: expect.objectContaining({ qty: 4, exitPrice: 97.9, realizedPl: -8.4, via: "close_order" }) }]);
  });

  it("closes a position its protective stop protects on CLOSE by canceling the stop first, then selling at market", async () => {
    const closing = { now: false };
    const { broker, session, state } = await endedClosedWithPartFill(
      new ScriptedStrategy((position) => (!position ? openLong() : closing.now ? { action: "CLOSE", reason: "scripted exit" } : { action: "HOLD", reason: "hold" })),
    );
    broker.marketClock = { ...broker.marketClock, isOpen: true };
    closing.now = true;
    await session.tick();
    expect(broker.calls).not.toContain("submitMarket");
    expect(broker.orders[1]!.status).toBe("pending_cancel");
    expect(state.positions.get("AAPL")).toMatchObject({ exit: { method: "cancel_protection", orderId: broker.orders[1]!.id } });

    broker.completeChanges();
    await session.tick();
    expect(broker.orders.at(-1)).toMatchObject({ clientOrderId: `${ENTRY}:close:2`, type: "market", side: "sell", qty: 4 });
    expect(state.positions.get("AAPL")).toMatchObject({ exit: { method: "market", clientOrderId: `${ENTRY}:close:2` } });
  });

  it("settles a part-filled entry at the end: cancels the rest, waits for the cancel, keeps what filled and closes it at market", async () => {
    const { broker, session, state, lines } = setUp();
    await session.tick();
    broker.fillEntry(ENTRY, 100, 4);
    await session.tick();
    expect(state.positions.get("AAPL")).toMatchObject({ qty: 4, entryFilling: true });

    await session.settleEntries(300);
    expect(broker.orders[0]!.status).toBe("pending_cancel");
    expect(lines.filter((line) => line.msg === "session ending: canceling the rest of its part-filled entry order")).toHaveLength(1);
    expect(state.positions.get("AAPL")).toMatchObject({ qty: 4, entryFilling: true });

    // The cancel took the legs with it: the four shares that filled are closed at market, and that is waited for.
    broker.completeChanges();
    await session.settleEntries(300);
    expect(broker.orders[0]!.status).toBe("canceled");
    expect(broker.calls.filter((call) => call === "cancelOrder")).toHaveLength(1);
    expect(broker.orders[1]).toMatchObject({ clientOrderId: `${ENTRY}:close`, type: "market", side: "sell", qty: 4 });
    expect(state.positions.get("AAPL")).toMatchObject({ qty: 4, entryFilling: false, exit: { clientOrderId: `${ENTRY}:close`, method: "market" } });
    expect(lines.filter((line) => line.msg === "entry orders not settled at the end of the session; the final checkpoint keeps them as they are and --reconcile-only shows what became of them").at(-1)).toMatchObject({
      working: [],
      exiting: ["AAPL"],
    });
  });
});
