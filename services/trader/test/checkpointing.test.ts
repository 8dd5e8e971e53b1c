import { CheckpointInputError } from "@savepoint/shared";
import { describe, expect, it } from "vitest";
import { parseCommandLine } from "../src/cli/options.js";
import { SessionCheckpoints, TRADER_SERVICE } from "../src/session/checkpoints.js";
import { TRADER_STATE_VERSION, type TraderState } from "../src/session/state.js";
import type { RunningSimulator, SimulatorOptions } from "@savepoint/alpaca-simulator";
import { Trader } from "../src/trader.js";
import { brokerHoldings, captureLogger, eventually, expectBrokersRealizedPl, orderIn, stateHoldings, storedSnapshot, traderContext, useTraderStack } from "./support.js";

/** Trades AAPL and MSFT on fast ticks; `extra` adds or overrides flags. */
const args = (...extra: string[]) => ["--symbols", "AAPL,MSFT", "--interval", "0.05", "--lookback", "3", "--position-size", "2000", ...extra];
const NEVER_ENTER = ["--entry-threshold-pct", "100"];
const ALWAYS_ENTER = ["--entry-threshold-pct", "0", "--stop-loss-pct", "5", "--take-profit-pct", "5"];
/** A clock that moves on its own: orders route, fill and cancel on it, never within their request. */
const TICKING = { tickIntervalMs: 50 };

describe("session checkpoints", () => {
  const stack = useTraderStack("trader-checkpoints", { client: true });
  let sim: RunningSimulator;

  async function openTrader(flags: string[], simOptions: SimulatorOptions = {}) {
    sim = await stack.startSimulator(simOptions);
    const { logger, lines } = captureLogger();
    const trader = await Trader.open(parseCommandLine(flags), traderContext(stack.env, sim, stack.client, logger));
    stack.stopAfterTest(() => trader.stop("test over"));
    return { trader, lines, messages: () => lines.map((line) => line.msg) };
  }

  const storedKinds = async (sessionId: string) =>
    (await stack.env.query<{ kind: string }>("SELECT kind FROM checkpoints WHERE session_id = $1 ORDER BY epoch, seq", [sessionId])).rows.map((row) => row.kind);

  it("creates a checkpoint every checkpoint interval and logs every 10th", async () => {
    const { trader, messages } = await openTrader(args("--checkpoint-interval", "0.05", ...NEVER_ENTER));
    void trader.run();
    await eventually("20 checkpoints", () => (trader.checkpoints.created >= 21 ? true : undefined));
    await trader.stop("enough");

    expect(messages()).toEqual(expect.arrayContaining(["💾 Checkpoint #10 created", "💾 Checkpoint #20 created"]));
    expect(messages().filter((message) => message?.startsWith("💾"))).toHaveLength(Math.floor(trader.checkpoints.created / 10));
    const kinds = await storedKinds(trader.sessionId);
    expect(kinds[0]).toBe("event");
    expect(kinds.at(-1)).toBe("shutdown");
    expect(kinds.slice(1, -1).every((kind) => kind === "periodic")).toBe(true);
    expect(kinds.length).toBe(trader.checkpoints.created);
  });

  it("takes an event checkpoint on every fill and every exit", async () => {
    const { trader } = await openTrader(args("--checkpoint-interval", "60", ...ALWAYS_ENTER), TICKING);
    void trader.run();
    const filled = await eventually("both entries filled and checkpointed", async () => {
      const stored = await storedSnapshot(stack.env, trader.sessionId);
      return stored.state.positions.length === 2 && stored.state.positions.every((position) => !position.entryFilling) ? stored : undefined;
    });
    expect(filled.kind).toBe("event");
    expect(filled.state.positions.map((position) => position.symbol)).toEqual(["AAPL", "MSFT"]);

    const aapl = filled.state.positions[0]!;
    const throughTakeProfit = () => sim.control.setPrice("AAPL", aapl.side === "long" ? aapl.takeProfit! + 0.5 : aapl.takeProfit! - 0.5);
    // The first snapshot that books the exit: the strategy may enter AAPL again right after it. Trades go on
    // through the take-profit until it has filled whole, since fills may come in parts.
    const exited = await eventually("the exit checkpointed", async () => {
      if (orderIn(sim, aapl.orders.takeProfitId!, "new", "partially_filled")) throughTakeProfit();
      const { rows } = await stack.env.query<{ kind: string; status: string; state: TraderState }>(
        "SELECT kind, status, state FROM checkpoints WHERE session_id = $1 AND (state::jsonb ->> 'closedTrades')::int = 1 ORDER BY epoch, seq LIMIT 1",
        [trader.sessionId],
      );
      return rows[0];
    });
    expect(exited).toMatchObject({ kind: "event", status: "active" });
    expectBrokersRealizedPl(exited.state, sim);
    expect(exited.state.positions.map((position) => position.symbol)).toEqual(["MSFT"]);
  });

  it("writes a confirmed final checkpoint marked interrupted when stopped, then reports and cleans up", async () => {
    const { trader, messages } = await openTrader(args("--checkpoint-interval", "0.1", ...ALWAYS_ENTER), TICKING);
    void trader.run();
    await eventually("two positions", () => (trader.state.positions.size === 2 ? true : undefined));

    expect(await trader.stop("SIGINT")).toEqual({ end: { reason: "stopped", cause: "SIGINT" }, exitCode: 0, final: { confirmed: true, status: "interrupted" } });
    const final = await storedSnapshot(stack.env, trader.sessionId);
    expect(final).toMatchObject({ kind: "shutdown", status: "interrupted", epoch: 0, seq: trader.checkpoints.created - 1 });
    expect({ ...final.state, takenAt: null }).toEqual({ ...trader.state.toSnapshot(new Date()), takenAt: null });
    const shutdownLines = messages().slice(messages().indexOf("⟳ Shutting down gracefully..."));
    expect(shutdownLines).toEqual([
      "⟳ Shutting down gracefully...",
      "Creating final checkpoint...",
      `Total checkpoints created: ${trader.checkpoints.created}`,
      "Cleaned up 0 old checkpoints",
    ]);
  });

  it("marks the session completed when --duration ends, so --resume no longer picks it", async () => {
    const { trader, messages } = await openTrader(args("--duration", "0.005", ...NEVER_ENTER));
    expect(await trader.run()).toEqual({ end: { reason: "completed" }, exitCode: 0, final: { confirmed: true, status: "completed" } });
    expect(await storedSnapshot(stack.env, trader.sessionId)).toMatchObject({ kind: "final", status: "completed" });
    expect(messages()).toContain("✓ Session duration reached; finishing");
    // Earlier tests left interrupted sessions of the same simulated account; whichever --resume picks, not this one.
    const picked = await SessionCheckpoints.restoreFromLatestCheckpoint(stack.client, { ownerId: trader.state.account!.id });
    expect(picked?.snapshot.sessionId).not.toBe(trader.sessionId);
  });

  it("settles the entry orders still working when --duration ends, so the final checkpoint holds none the broker could fill later", async () => {
    // The clock ticks on while the market is closed, so the broker completes the cancels the trader asks for.
    const { trader, messages } = await openTrader(args("--duration", "0.02", "--checkpoint-interval", "60", ...ALWAYS_ENTER), TICKING);
    // The first entry reaches the broker only after the market has closed, so both entries stay working.
    sim.control.injectFault({ kind: "latency", ms: 300, count: 1, method: "POST", path: "/v2/orders" });
    const running = trader.run();
    await eventually("the first entry in flight", () => (sim.control.requests({ method: "POST", path: "/v2/orders" }).some((request) => request.status === null) ? true : undefined));
    sim.control.setMarketOpen(false);
    await eventually("two working entries", () => (trader.state.pendingEntries.size === 2 ? true : undefined));

    expect(await running).toEqual({ end: { reason: "completed" }, exitCode: 0, final: { confirmed: true, status: "completed" } });
    expect(messages().filter((message) => message === "session ending: canceling its working entry order")).toHaveLength(2);
    const final = await storedSnapshot(stack.env, trader.sessionId);
    expect(final).toMatchObject({ kind: "final", status: "completed", state: { pendingEntries: [], positions: [] } });
    const entries = sim.control.state().orders.filter((order) => String(order.client_order_id).startsWith(`${trader.sessionId}:`));
    expect(entries.map((order) => [order.client_order_id, order.status])).toEqual([
      [`${trader.sessionId}:AAPL:1`, "canceled"],
      [`${trader.sessionId}:MSFT:1`, "canceled"],
    ]);
  });

  /**
   * A --duration session that enters AAPL and MSFT and has a trade through AAPL's price part-fill its entry. The
   * clock moves only when the test says, and only the test's trades fill (the minute's own trades are too small
   * for any share): each fills a part of what remains.
   */
  async function startPartFillingSession() {
    const { trader, messages } = await openTrader(args("--duration", "0.15", "--checkpoint-interval", "60", ...ALWAYS_ENTER), {
      tickIntervalMs: 0,
      partialFillChance: 1,
      tradeVolumeShare: 1e-9,
    });
    const running = trader.run();
    const entries = () => sim.control.state().orders.filter((order) => order.order_class === "bracket" && String(order.client_order_id).startsWith(`${trader.sessionId}:`));
    await eventually("both entries at the broker", () => (entries().length === 2 ? true : undefined));
    sim.control.advance(1);
    sim.control.setPrice("AAPL", sim.control.price("AAPL"));
    return { trader, messages, running, entries };
  }

  it("cancels the rest of a part-filled entry when --duration ends, closes what filled until the cancel completed, and checkpoints that", async () => {
    const { trader, messages, running, entries } = await startPartFillingSession();
    const entryOf = (symbol: string) => entries().find((order) => order.symbol === symbol)!;
    const filledBefore = await eventually("AAPL's entry part-filled and booked", () => {
      const position = trader.state.positions.get("AAPL");
      return position?.entryFilling ? position.qty : undefined;
    });
    expect(filledBefore).toBe(Number(entryOf("AAPL").filled_qty));

    // The session ends: both cancels are asked for, and complete only on the broker's next step. A trade
    // before then fills more of AAPL's entry: that too belongs in the final checkpoint.
    await eventually("both cancels pending", () => (entries().every((order) => order.status === "pending_cancel") ? true : undefined), 20_000);
    sim.control.setPrice("AAPL", sim.control.price("AAPL"));
    sim.control.advance(1);
    // The cancel took AAPL's legs with it: the trader closes what filled at market, and waits for that too.
    const close = await eventually("AAPL's close filled", () => {
      const order = sim.control.state().orders.find((candidate) => candidate.client_order_id === `${trader.sessionId}:AAPL:1:close`);
      if (order?.status === "filled") return order;
      if (order?.status === "new" || order?.status === "partially_filled") sim.control.setPrice("AAPL", sim.control.price("AAPL"));
      else if (order) sim.control.advance(1);
      return undefined;
    });
    expect(await running).toEqual({ end: { reason: "completed" }, exitCode: 0, final: { confirmed: true, status: "completed" } });

    expect(entries().filter((order) => !["canceled", "filled"].includes(String(order.status)))).toEqual([]);
    const filled = Number(entryOf("AAPL").filled_qty);
    expect(filled).toBeGreaterThan(filledBefore);
    expect(Number(close.filled_qty)).toBe(filled);
    expect(Number(entryOf("MSFT").filled_qty)).toBe(0);
    expect(messages().filter((message) => message === "session ending: canceling the rest of its part-filled entry order")).toHaveLength(1);
    expect(messages().filter((message) => message === "session ending: canceling its working entry order")).toHaveLength(1);
    const final = await storedSnapshot(stack.env, trader.sessionId);
    expect(final).toMatchObject({ kind: "final", status: "completed", state: { pendingEntries: [], positions: [], closedTrades: 1 } });
    expect(stateHoldings(final.state)).toEqual(brokerHoldings(sim));
    expectBrokersRealizedPl(final.state, sim);
  });

  it("gives a part-filled entry's shares a protective gtc stop when --duration ends while the market is closed; the broker queues it for the open", async () => {
    const { trader, messages, running, entries } = await startPartFillingSession();
    await eventually("AAPL's entry part-filled and booked", () => (trader.state.positions.get("AAPL")?.entryFilling ? true : undefined));
    sim.control.setMarketOpen(false);

    // The session ends while closed: the cancels complete on the broker's next step, and take AAPL's legs along.
    await eventually("both cancels pending", () => (entries().every((order) => order.status === "pending_cancel") ? true : undefined), 20_000);
    sim.control.advance(1);
    expect(await running).toEqual({ end: { reason: "completed" }, exitCode: 0, final: { confirmed: true, status: "completed" } });

    const filled = Number(entries().find((order) => order.symbol === "AAPL")!.filled_qty);
    const stop = sim.control.state().orders.find((order) => order.client_order_id === `${trader.sessionId}:AAPL:1:close`)!;
    expect(stop).toMatchObject({ type: "stop", side: "sell", time_in_force: "gtc", status: "accepted", qty: String(filled) });
    expect(messages()).not.toContain("entry orders not settled at the end of the session; the final checkpoint keeps them as they are and --reconcile-only shows what became of them");
    const final = await storedSnapshot(stack.env, trader.sessionId);
    expect(final).toMatchObject({ kind: "final", status: "completed", state: { pendingEntries: [], positions: [{ symbol: "AAPL", qty: filled, exit: { method: "protective_stop", orderId: stop.id } }] } });
    expect(stateHoldings(final.state)).toEqual(brokerHoldings(sim));

    // At the open the stop works as the stop-loss leg would have: a trade through its price sells the shares.
    sim.control.setMarketOpen(true);
    for (let trade = 0; trade < filled && sim.control.state().orders.find((order) => order.id === stop.id)?.status !== "filled"; trade++) {
      sim.control.setPrice("AAPL", Number(stop.stop_price) - 0.5);
    }
    expect(sim.control.state().orders.find((order) => order.id === stop.id)).toMatchObject({ status: "filled", filled_qty: String(filled) });
    expect(brokerHoldings(sim)).toEqual([]);
  });

  it("offers the seed's programmatic API: createCheckpoint, restoreFromLatestCheckpoint, getCheckpointStats, cleanupOldCheckpoints", async () => {
    const { trader } = await openTrader(args("--checkpoint-interval", "60", ...NEVER_ENTER));
    const { checkpoints, state } = trader;
    for (let i = 0; i < 12; i++) {
      state.closedTrades = i;
      await checkpoints.createCheckpoint(state);
    }
    await checkpoints.settle();
    expect(await checkpoints.getCheckpointStats()).toMatchObject({ totalCheckpoints: 13, sessions: 1 });

    const restored = await SessionCheckpoints.restoreFromLatestCheckpoint(stack.client, { sessionId: trader.sessionId });
    expect(restored?.snapshot).toMatchObject({ seq: 12, schemaVersion: TRADER_STATE_VERSION, ownerId: state.account!.id });
    expect(restored?.state.closedTrades).toBe(11);
    expect(restored?.state.identity).toEqual(state.identity);

    expect(await checkpoints.cleanupOldCheckpoints({ keepCount: 5 })).toBe(8);
    expect((await checkpoints.getCheckpointStats()).totalCheckpoints).toBe(5);
  });

  it("refuses to restore a checkpoint of an unknown state version, saying what to do", async () => {
    await stack.client.saveAndConfirm({
      v: 1,
      service: TRADER_SERVICE,
      sessionId: "from-the-future",
      epoch: 0,
      seq: 0,
      kind: "periodic",
      status: "active",
      schemaVersion: TRADER_STATE_VERSION + 1,
      takenAt: new Date().toISOString(),
      state: {},
    });
    await expect(SessionCheckpoints.restoreFromLatestCheckpoint(stack.client, { sessionId: "from-the-future" })).rejects.toThrow(
      `checkpoint of session from-the-future (epoch 0, seq 0) has state schemaVersion ${TRADER_STATE_VERSION + 1}; this trader reads version ${TRADER_STATE_VERSION}`,
    );
  });

  it("claims epochs atomically: concurrent claims never share one, and a claim honours its lower bound", async () => {
    const claims = await Promise.all(Array.from({ length: 20 }, () => stack.client.claimEpoch("trader", "contended")));
    expect([...claims].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(await stack.client.claimEpoch("trader", "contended", 50)).toBe(50);
    expect(await stack.client.claimEpoch("trader", "contended", 3)).toBe(51);
    await expect(stack.client.claimEpoch("Trader", "bad id!", -1)).rejects.toThrow(CheckpointInputError);
    await expect(stack.client.claimEpoch("trader", "bad id!")).rejects.toThrow('invalid epoch claim: sessionId "bad id!": must be 1-128 characters');
  });

  it("stops a trader whose session another trader has taken over, at its next checkpoint, without trading further", async () => {
    const { trader } = await openTrader(args("--checkpoint-interval", "0.1", ...NEVER_ENTER));
    const running = trader.run();
    const { sessionId } = trader;
    const newOwner = await stack.client.claimEpoch(TRADER_SERVICE, sessionId, trader.checkpoints.owner.epoch + 1);
    await stack.client.saveAndConfirm({
      v: 1,
      service: TRADER_SERVICE,
      sessionId,
      ownerId: trader.checkpoints.owner.ownerId,
      epoch: newOwner,
      seq: 0,
      kind: "event",
      status: "active",
      schemaVersion: TRADER_STATE_VERSION,
      takenAt: new Date().toISOString(),
      state: trader.state.toSnapshot(new Date()),
    });

    const outcome = await running;
    expect(outcome.exitCode).toBe(3);
    expect(outcome.end.reason).toBe("taken_over");
    expect(outcome.end.reason === "taken_over" && outcome.end.error.message).toMatch(
      new RegExp(`^another trader has taken over session ${sessionId} \\(this one holds epoch 0, and the checkpointer has stored a higher one\\); stopping without placing further orders`),
    );
    expect(await storedSnapshot(stack.env, sessionId)).toMatchObject({ epoch: newOwner, seq: 0 });
  });

  it("shows each session and its positions in the trading_sessions and positions views", async () => {
    const { trader } = await openTrader(args("--checkpoint-interval", "0.1", ...ALWAYS_ENTER), TICKING);
    void trader.run();
    await eventually("two positions", () => (trader.state.positions.size === 2 ? true : undefined));
    await trader.stop("SIGTERM");
    const state = trader.state.toSnapshot(new Date());

    const { rows: sessions } = await stack.env.query("SELECT * FROM trading_sessions WHERE session_id = $1", [trader.sessionId]);
    expect(sessions).toEqual([
      expect.objectContaining({
        session_id: trader.sessionId,
        account_id: state.account!.id,
        status: "interrupted",
        started_at: new Date(state.sessionStartedAt),
        symbols: ["AAPL", "MSFT"],
        open_positions: 2,
        closed_trades: String(state.closedTrades),
        realized_pl: String(state.realizedPl),
        portfolio_value: String(state.account!.portfolioValue),
        last_checkpoint_kind: "shutdown",
        epoch: "0",
      }),
    ]);
    const { rows: positions } = await stack.env.query("SELECT symbol, side, qty, entry_price, stop_loss, take_profit, origin, entry_order_id FROM positions WHERE session_id = $1 ORDER BY symbol", [
      trader.sessionId,
    ]);
    expect(positions).toEqual(
      state.positions.map((position) => ({
        symbol: position.symbol,
        side: position.side,
        qty: String(position.qty),
        entry_price: String(position.entryPrice),
        stop_loss: String(position.stopLoss),
        take_profit: String(position.takeProfit),
        origin: "strategy",
        entry_order_id: position.orders.entryId,
      })),
    );
  });
});
