import { describe, expect, it } from "vitest";
import type { RunningSimulator } from "@savepoint/alpaca-simulator";
import { sdk } from "@savepoint/alpaca-simulator/testing";
import type { ReconciliationReport } from "../src/session/report.js";
import type { TraderState } from "../src/session/state.js";
import { advanceUntil, brokerHoldings, eventually, eventuallyAdvancing, expectBrokersRealizedPl, orderIn, sessionOrders, stateHoldings, storedSnapshot, tradingStarted, useTraderStack } from "./support.js";

const RUN = ["--interval", "0.1", "--checkpoint-interval", "0.3"];
const THREE = ["--symbols", "AAPL,MSFT,GOOGL", "--entry-threshold-pct", "0", "--lookback", "5", "--position-size", "5000"];
const WIDE = ["--stop-loss-pct", "5", "--take-profit-pct", "5"];
const TIGHT = ["--stop-loss-pct", "0.4", "--take-profit-pct", "0.4"];

/** Trades of the session that closed at the broker: exit legs and close orders that filled. */
const exitsAtBroker = (sim: RunningSimulator) =>
  sim.control.state().orders.filter((order) => order.status === "filled" && String(order.position_intent).endsWith("_to_close")).length;

// The seed's recovery scenarios, with the trader as a real process killed or interrupted for real.
describe("recovery", () => {
  const stack = useTraderStack("trader-recovery");
  let sim: RunningSimulator;

  const trader = (args: string[]) => stack.spawnTrader(sim, args);

  /** The first snapshot the session's owner of `epoch` wrote. */
  async function firstSnapshotOf(sessionId: string, epoch: number) {
    const { rows } = await stack.env.query<{ state: TraderState }>("SELECT state FROM checkpoints WHERE service = 'trader' AND session_id = $1 AND epoch = $2 ORDER BY seq LIMIT 1", [sessionId, epoch]);
    return rows[0]!;
  }

  /**
   * Starts a session on three symbols and moves the simulated clock (on which the broker routes and fills the
   * entries) until a checkpoint holds all three positions, each entry filled whole; the clock then stands still.
   */
  async function sessionWithThreePositions() {
    const first = trader([...THREE, ...WIDE, ...RUN]);
    const started = await first.waitForLog(tradingStarted);
    const sessionId = String(started.sessionId);
    await eventuallyAdvancing(sim, "a checkpoint holding 3 positions, their entries filled whole", async () => {
      const { positions } = (await storedSnapshot(stack.env, sessionId)).state;
      return positions.length === 3 && positions.every((position) => !position.entryFilling) ? true : undefined;
    });
    return { first, sessionId };
  }

  it("Scenario 1: after a crash with 3 open positions, --resume restores all 3 and trading continues", async () => {
    sim = await stack.startSimulator({ seed: "scenario-1" });
    const { first, sessionId } = await sessionWithThreePositions();
    await first.kill("SIGKILL");
    const ordersBefore = sessionOrders(sim, sessionId).length;

    const resumed = trader(["--resume", ...RUN]);
    const started = await resumed.waitForLog(tradingStarted);
    expect(started).toMatchObject({ sessionId, epoch: 1, positions: 3 });
    const messages = resumed.logs.map((line) => line.msg);
    expect(messages).toEqual(
      expect.arrayContaining([
        `✓ Resumed session: ${sessionId}`,
        "Symbols: AAPL,MSFT,GOOGL",
        "✓ Loaded 3 positions from database",
        "Active positions: 3",
        "Closed trades: 0",
        "✓ Reconciled with the broker: 3 positions, no discrepancies",
      ]),
    );
    expect(messages).toContainEqual(expect.stringMatching(/^Last known portfolio value: \$\d{2,3},\d{3}\.\d{2}$/));
    await eventually("a checkpoint under the new epoch", async () => ((await storedSnapshot(stack.env, sessionId)).epoch === 1 ? true : undefined));

    expect(await resumed.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    const final = await storedSnapshot(stack.env, sessionId);
    expect(final).toMatchObject({ kind: "shutdown", status: "interrupted", epoch: 1 });
    expect(stateHoldings(final.state)).toEqual(brokerHoldings(sim));
    expect(stateHoldings(final.state)).toHaveLength(3);
    // Every symbol was already held: the resumed trader placed nothing new.
    expect(sessionOrders(sim, sessionId)).toHaveLength(ordersBefore);
  });

  it("Scenario 2: Ctrl+C writes a final checkpoint and a restart with --resume continues from that exact point", async () => {
    sim = await stack.startSimulator({ seed: "scenario-2", tickIntervalMs: 50 });
    const command = [...THREE, ...TIGHT, ...RUN];
    const first = trader(command);
    const { sessionId } = await first.waitForLog(tradingStarted);
    await eventually("a few closed trades", () => (exitsAtBroker(sim) >= 3 ? true : undefined), 20_000);
    // Nothing fills while the trader is away, so "the exact point" is also what the broker shows on return.
    sim.control.setMarketOpen(false);
    await new Promise((resolve) => setTimeout(resolve, 250));

    expect(await first.kill("SIGINT")).toEqual({ code: 0, signal: null });
    const messages = first.logs.map((line) => line.msg);
    const stopped = await storedSnapshot(stack.env, String(sessionId));
    expect(messages.slice(messages.indexOf("⟳ Shutting down gracefully..."))).toEqual(
      expect.arrayContaining(["⟳ Shutting down gracefully...", "Creating final checkpoint...", expect.stringMatching(/^Total checkpoints created: \d+$/), "Cleaned up 0 old checkpoints"]),
    );
    expect(stopped).toMatchObject({ kind: "shutdown", status: "interrupted" });

    const resumed = trader([...command, "--resume"]);
    await resumed.waitForLog(tradingStarted);
    expect(resumed.logs.map((line) => line.msg)).toEqual(
      expect.arrayContaining([`✓ Loaded ${stopped.state.positions.length} positions from database`, `Closed trades: ${stopped.state.closedTrades}`, expect.stringMatching(/no discrepancies$/)]),
    );
    const first1 = await eventually("the resumed session's first checkpoint", async () => {
      const stored = await storedSnapshot(stack.env, String(sessionId));
      return stored.epoch === 1 ? stored : undefined;
    });
    const comparable = ({ takenAt: _takenAt, account: _account, resumes: _resumes, ...rest }: typeof stopped.state) => rest;
    expect(comparable(first1.state)).toEqual(comparable(stopped.state));
    // What the resume added is its own record, and it found nothing to change.
    expect(first1.state.resumes).toEqual([
      ...stopped.state.resumes,
      expect.objectContaining({ epoch: 1, restoredFrom: expect.objectContaining({ epoch: 0, seq: stopped.seq }), changes: [], closedTradesAdded: 0, realizedPlAdded: 0 }),
    ]);
  });

  it("Scenario 3: a reboot loses at most one checkpoint interval of account data and no fills", async () => {
    sim = await stack.startSimulator({ seed: "scenario-3", tickIntervalMs: 50 });
    const first = trader([...THREE, ...TIGHT, "--interval", "0.1", "--checkpoint-interval", "0.5"]);
    const { sessionId } = await first.waitForLog(tradingStarted);
    await eventually("a few closed trades", () => (exitsAtBroker(sim) >= 3 ? true : undefined), 20_000);
    const killedAt = Date.now();
    await first.kill("SIGKILL");

    const lastStored = await storedSnapshot(stack.env, String(sessionId));
    // One checkpoint interval, plus one tick that may have been running when the interval came due.
    expect(killedAt - new Date(lastStored.state.account!.asOf).getTime()).toBeLessThan(500 + 400);

    const resumed = trader(["--resume", ...RUN]);
    await resumed.waitForLog(tradingStarted);
    sim.control.setMarketOpen(false);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await resumed.kill("SIGTERM")).toEqual({ code: 0, signal: null });

    const final = await storedSnapshot(stack.env, String(sessionId));
    expect(stateHoldings(final.state)).toEqual(brokerHoldings(sim));
    expect(final.state.closedTrades).toBe(exitsAtBroker(sim));
    expectBrokersRealizedPl(final.state, sim);
  });

  it("--reconcile-only prints every discrepancy and changes nothing; --resume then resolves them the same way", async () => {
    sim = await stack.startSimulator({ seed: "reconcile-only" });
    const { first, sessionId } = await sessionWithThreePositions();
    await first.kill("SIGKILL");
    const checkpointed = await storedSnapshot(stack.env, sessionId);
    const api = sdk(sim.url);
    // While the trader is down, someone closes GOOGL by hand (its legs first) and buys NVDA.
    const googl = checkpointed.state.positions.find((position) => position.symbol === "GOOGL")!;
    await api.orders.deleteOrderByOrderID({ orderId: googl.orders.takeProfitId! });
    // The legs hold the shares until their cancel completes, on the broker's clock.
    advanceUntil(sim, "GOOGL's legs canceled", () => orderIn(sim, googl.orders.stopLossId!, "canceled"));
    const closed = await api.positions.deleteOpenPosition({ symbolOrAssetId: "GOOGL" });
    const bought = await api.orders.market({ symbol: "NVDA", qty: 3, side: "buy", clientOrderId: "bought-by-hand" });
    advanceUntil(sim, "both orders filled", () => (orderIn(sim, closed.id!, "filled") && orderIn(sim, bought.id!, "filled")) || undefined);
    const ordersBefore = sim.control.state().orders.length;

    const dryRun = trader(["--reconcile-only"]);
    expect(await dryRun.exited).toEqual({ code: 0, signal: null });
    const printed = dryRun.output.filter((line) => !line.startsWith("{")).join("\n");
    expect(printed).toContain(`Session: ${sessionId}`);
    expect(printed).toContain("Positions: 3 in the checkpoint, 3 at the broker, 3 after reconciling");
    expect(printed).toContain("2 discrepancies, each resolved:");
    expect(printed).toMatch(/- GOOGL: (long|short) \d+ closed by an order placed outside the session @ [\d.]+ \(entry [\d.]+\), realised [+-]\$[\d,.]+/);
    expect(printed).toMatch(/- NVDA: held at the broker \(long 3 @ [\d.]+\) but unknown to the session; adopted without bracket protection/);
    expect(await storedSnapshot(stack.env, sessionId)).toMatchObject({ epoch: checkpointed.epoch, seq: checkpointed.seq });
    expect(sim.control.state().orders).toHaveLength(ordersBefore);

    const resumed = trader(["--resume", ...RUN, "--interval", "60"]);
    await resumed.waitForLog(tradingStarted);
    const report = resumed.logs.find((line) => line.report)?.report as ReconciliationReport;
    expect(report.changes.map((change) => change.kind)).toEqual(["position_closed", "position_adopted"]);
    // The resumed trader's first checkpoint holds the report as logged: its counts, and each change with its warning's line.
    const firstResumed = await firstSnapshotOf(sessionId, 1);
    const logged = resumed.logs.filter((line) => line.msg?.startsWith("Reconciliation: ")).map((line) => line.msg!.slice("Reconciliation: ".length));
    expect(firstResumed.state.resumes).toEqual([
      {
        epoch: 1,
        resumedAt: report.checkedAt,
        restoredFrom: { epoch: checkpointed.epoch, seq: checkpointed.seq, takenAt: expect.any(String) },
        downtimeMs: Date.parse(report.checkedAt) - checkpointed.taken_at.getTime(),
        positions: { before: report.positionsBefore, atBroker: report.brokerPositions, after: report.positionsAfter },
        closedTradesAdded: report.closedTradesAdded,
        realizedPlAdded: report.realizedPlAdded,
        changes: report.changes.map((change, i) => ({ category: ["trades", "positions"][i], text: logged[i], change })),
      },
    ]);
    expect(Date.parse(firstResumed.state.resumes[0]!.restoredFrom.takenAt)).toBe(checkpointed.taken_at.getTime());
    expect(await resumed.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    const final = await storedSnapshot(stack.env, sessionId);
    expect(stateHoldings(final.state)).toEqual(brokerHoldings(sim));
    expectBrokersRealizedPl(final.state, sim);
  });

  it("--resume-or-new starts a new session the first time, and after SIGTERM the same command resumes that session", async () => {
    sim = await stack.startSimulator({ seed: "resume-or-new" });
    const command = ["--resume-or-new", ...THREE, ...WIDE, ...RUN];
    const first = trader(command);
    const { sessionId } = await first.waitForLog(tradingStarted);
    expect(first.logs.map((line) => line.msg)).toContain(`✓ New session: ${sessionId}`);
    expect(await first.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(await storedSnapshot(stack.env, String(sessionId))).toMatchObject({ kind: "shutdown", status: "interrupted", epoch: 0 });

    const second = trader(command);
    const resumed = await second.waitForLog(tradingStarted);

    expect(resumed).toMatchObject({ sessionId, epoch: 1 });
    expect(second.logs.map((line) => line.msg)).toContain(`✓ Resumed session: ${sessionId}`);
  });

  it("of two traders resuming the same session at once, exactly one carries on; the other stops, saying why", async () => {
    sim = await stack.startSimulator({ seed: "two-resumers", tickIntervalMs: 50 });
    const { first, sessionId } = await sessionWithThreePositions();
    await first.kill("SIGKILL");

    const [a, b] = [trader(["--resume", ...RUN]), trader(["--resume", ...RUN])];
    const loser = await Promise.race([a.exited.then(() => a), b.exited.then(() => b)]);
    const winner = loser === a ? b : a;
    expect(await loser.exited, loser.output.join("\n")).toEqual({ code: 3, signal: null });
    expect(loser.logs.map((line) => line.msg)).toContainEqual(expect.stringMatching(new RegExp(`^another trader has taken over session ${sessionId} `)));

    // Claims are ordered: the first got epoch 1, the second epoch 2, and the higher epoch fences the lower.
    expect((await winner.waitForLog(tradingStarted)).epoch).toBe(2);
    sim.control.setMarketOpen(false);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await winner.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    const final = await storedSnapshot(stack.env, sessionId);
    expect(final.epoch).toBe(2);
    expect(stateHoldings(final.state)).toEqual(brokerHoldings(sim));
    expectBrokersRealizedPl(final.state, sim);
  });
});
