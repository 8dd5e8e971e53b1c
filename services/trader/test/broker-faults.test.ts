import { describe, expect, it } from "vitest";
import type { Decision } from "@savepoint/shared";
import { parseCommandLine } from "../src/cli/options.js";
import type { RunningSimulator } from "@savepoint/alpaca-simulator";
import { Trader } from "../src/trader.js";
import { sdk } from "@savepoint/alpaca-simulator/testing";
import { reasoningWorker } from "./reasoning-worker.js";
import { brokerHoldings, captureLogger, eventually, eventuallyAdvancing, expectBrokersRealizedPl, sessionOrders, stateHoldings, storedSnapshot, traderContext, tradingStarted, useTraderStack } from "./support.js";

const RUN = ["--interval", "0.1", "--checkpoint-interval", "0.3"];
const EAGER = ["--entry-threshold-pct", "0", "--lookback", "5", "--position-size", "5000"];
const ONE = ["--symbols", "AAPL", ...EAGER, "--stop-loss-pct", "5", "--take-profit-pct", "5"];
const THREE = ["--symbols", "AAPL,MSFT,GOOGL", ...EAGER, "--stop-loss-pct", "5", "--take-profit-pct", "5"];

const statuses = (sim: RunningSimulator, method: string, path: string) => sim.control.requests({ method, path }).map((request) => request.status);
/** Statuses of order listings (GET /v2/orders itself, not an order under it). */
const listings = (sim: RunningSimulator) =>
  sim.control
    .requests({ method: "GET", path: "/v2/orders" })
    .filter((request) => request.path === "/v2/orders")
    .map((request) => request.status);

/** A bracket entry for 5 AAPL at half the price, so it stays working: an entry a trader sent, as the broker has it. */
function placeWorkingEntry(sim: RunningSimulator, clientOrderId: string) {
  const limit = Math.round(sim.control.price("AAPL") * 50) / 100;
  return sdk(sim.url).orders.bracket({
    symbol: "AAPL",
    qty: 5,
    side: "buy",
    limitPrice: limit,
    takeProfit: { limitPrice: Math.round(limit * 120) / 100 },
    stopLoss: { stopPrice: Math.round(limit * 80) / 100 },
    clientOrderId,
  });
}

describe("broker faults", () => {
  const stack = useTraderStack("trader-broker-faults", { client: true });
  let sim: RunningSimulator;

  const trader = (args: string[]) => stack.spawnTrader(sim, args);

  it("rides out a burst of 5xx on position reads while trading: ticks are skipped, never decided on a missing answer", async () => {
    sim = await stack.startSimulator({ seed: "burst-trading", tickIntervalMs: 40 });
    const running = trader([...THREE, "--stop-loss-pct", "0.4", "--take-profit-pct", "0.4", ...RUN]);
    const { sessionId } = await running.waitForLog(tradingStarted);
    await eventually("some positions", () => (sim.control.state().positions.length > 0 ? true : undefined));
    sim.control.injectFault({ kind: "error", count: 8, status: 503, method: "GET", path: "/v2/positions" });
    await eventually("the burst to pass", () => (sim.control.faults().length === 0 ? true : undefined));
    await running.waitForLog((line) => line.msg === "tick skipped: the broker could not be read reliably; trying again next tick");
    const afterBurst = sessionOrders(sim, String(sessionId)).length;
    await eventually("trading to go on after the burst", () => (sessionOrders(sim, String(sessionId)).length > afterBurst ? true : undefined), 20_000);

    sim.control.setMarketOpen(false);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await running.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    const final = await storedSnapshot(stack.env, String(sessionId));
    expect(stateHoldings(final.state)).toEqual(brokerHoldings(sim));
    expectBrokersRealizedPl(final.state, sim);
  });

  it("finds an entry whose POST failed after taking effect by its client_order_id instead of placing it again", async () => {
    sim = await stack.startSimulator({ seed: "post-then-502" });
    sim.control.injectFault({ kind: "error", count: 1, status: 502, when: "after", method: "POST", path: "/v2/orders" });
    const running = trader([...ONE, ...RUN]);
    const { sessionId } = await running.waitForLog(tradingStarted);
    const tracked = await running.waitForLog((line) => line.msg === "entry order got no answer but is at the broker; tracking it");
    const clientOrderId = `${sessionId}:AAPL:1`;
    expect(tracked).toMatchObject({ symbol: "AAPL", clientOrderId });

    await eventuallyAdvancing(sim, "the entry checkpointed as a position", async () => ((await storedSnapshot(stack.env, String(sessionId))).state.positions.length === 1 ? true : undefined));
    expect(statuses(sim, "POST", "/v2/orders")).toEqual([502]);
    expect(statuses(sim, "GET", "/v2/orders:by_client_order_id")[0]).toBe(200);
    expect(sessionOrders(sim, String(sessionId)).map((order) => order.client_order_id)).toEqual([clientOrderId]);
  });

  it("places an entry whose POST never reached the broker again under the same client_order_id", async () => {
    sim = await stack.startSimulator({ seed: "post-dropped" });
    sim.control.injectFault({ kind: "disconnect", count: 1, when: "before", method: "POST", path: "/v2/orders" });
    const running = trader([...ONE, ...RUN]);
    const { sessionId } = await running.waitForLog(tradingStarted);
    await running.waitForLog((line) => line.msg === "entry order outcome unknown; it is looked up again next tick and its id is reused, never replaced");
    const placed = await running.waitForLog((line) => line.msg === "entry order placed");

    expect(placed.clientOrderId).toBe(`${sessionId}:AAPL:1`);
    expect(statuses(sim, "POST", "/v2/orders")).toEqual([0, 200]);
    expect(sessionOrders(sim, String(sessionId)).map((order) => order.client_order_id)).toEqual([`${sessionId}:AAPL:1`]);
  });

  it("takes an entry refused by a long 429 as not placed, sends nothing until the reset, then places it under the same client_order_id", async () => {
    sim = await stack.startSimulator({ seed: "post-429" });
    // Longer than the trader waits within a request (2 s): the placement fails instead of waiting.
    sim.control.injectFault({ kind: "error", count: 1, status: 429, retryAfterSeconds: 3, method: "POST", path: "/v2/orders" });
    const running = trader([...ONE, ...RUN]);
    const { sessionId } = await running.waitForLog(tradingStarted);
    const clientOrderId = `${sessionId}:AAPL:1`;
    const notPlaced = await running.waitForLog((line) => String(line.msg).startsWith("entry order not placed: the broker's rate limit refused it (HTTP 429)"));
    expect(notPlaced).toMatchObject({ symbol: "AAPL", clientOrderId });
    const placed = await running.waitForLog((line) => line.msg === "entry order placed");

    expect(placed.clientOrderId).toBe(clientOrderId);
    expect(statuses(sim, "POST", "/v2/orders")).toEqual([429, 200]);
    // Certainly not placed: never looked up, never kept as a pending entry whose order might surface.
    expect(statuses(sim, "GET", "/v2/orders:by_client_order_id")).toEqual([]);
    expect(running.logs.map((line) => line.msg)).not.toContain("entry order outcome unknown; it is looked up again next tick and its id is reused, never replaced");
    expect(running.logs.flatMap((line) => (line.change ? [(line.change as { kind: string }).kind] : []))).not.toContain("placement_not_found");
    // Nothing reached the trading API between the refusal and its Retry-After.
    const posts = sim.control.requests({ method: "POST", path: "/v2/orders" });
    const refusedAt = Date.parse(posts[0]!.receivedAt);
    const resumedAt = Date.parse(String(notPlaced.retryAt));
    expect(resumedAt - refusedAt).toBeGreaterThanOrEqual(2_900);
    const trading = sim.control.requests().filter((request) => !request.path.startsWith("/v2/stocks/"));
    expect(trading.filter((request) => Date.parse(request.receivedAt) > refusedAt && Date.parse(request.receivedAt) < resumedAt - 50)).toEqual([]);
    expect(sessionOrders(sim, String(sessionId)).map((order) => order.client_order_id)).toEqual([clientOrderId]);
  });

  it("recognises an entry already at the broker under the id it regenerates after a restart, and tracks it", async () => {
    sim = await stack.startSimulator({ seed: "regenerated-id" });
    const { logger, lines } = captureLogger();
    const opened = await Trader.open(parseCommandLine([...ONE, ...RUN]), traderContext(stack.env, sim, stack.client, logger));
    // As if an earlier run of this session had sent its first entry (a limit entry, still working) and died
    // before checkpointing it, and the broker's listing had not shown it when this run reconciled.
    const clientOrderId = `${opened.sessionId}:AAPL:1`;
    const earlier = await placeWorkingEntry(sim, clientOrderId);
    const running = opened.run();
    await eventually("the earlier entry tracked", () => (opened.state.pendingEntries.get("AAPL")?.orderId === earlier.id ? true : undefined));
    await opened.stop("test over");
    await running;

    expect(lines.map((line) => line.msg)).toContain("entry order already at the broker under this id (placed before a restart); tracking it instead of placing it again");
    expect(statuses(sim, "POST", "/v2/orders")).toEqual([200, 422]);
    expect(sessionOrders(sim, opened.sessionId).map((order) => order.client_order_id)).toEqual([clientOrderId]);
    expect(opened.state.pendingEntries.get("AAPL")).toMatchObject({ qty: 5, tradeNo: 1, confirmed: true });
    expect(opened.state.nextTradeNo("AAPL")).toBe(2);
  });

  it("cancels an entry another session left working through a long 429 and 5xx on its DELETE, waiting for the limit's reset, then trades", async () => {
    sim = await stack.startSimulator({ seed: "cancel-faults", tickIntervalMs: 40, marketHours: "always_open" });
    const left = await placeWorkingEntry(sim, "trader-20260105-143000-aaaaaa:AAPL:1");
    // Longer than the trader waits within a request (2 s): the cancel fails and is sent again after the reset;
    // then two 503s, one fewer than reconciliation's attempts.
    sim.control.injectFault({ kind: "error", count: 1, status: 429, retryAfterSeconds: 3, method: "DELETE", path: "/v2/orders" });
    sim.control.injectFault({ kind: "error", count: 2, status: 503, method: "DELETE", path: "/v2/orders" });
    const running = trader([...ONE, ...RUN]);
    await running.waitForLog(tradingStarted);

    const deletes = sim.control.requests({ method: "DELETE", path: "/v2/orders" });
    expect(deletes.map((request) => request.status)).toEqual([429, 503, 503, 204]);
    // Nothing was sent again before the limit's reset.
    expect(Date.parse(deletes[1]!.receivedAt) - Date.parse(deletes[0]!.receivedAt)).toBeGreaterThanOrEqual(2_900);
    expect(sim.control.state().orders.find((order) => order.id === left.id)?.status).toBe("canceled");
    expect(running.logs.filter((line) => line.event === "other_session_entry_cancel_retry")).toHaveLength(3);
  });

  it("retries reconciliation through a 5xx burst on resume, then trades on", async () => {
    sim = await stack.startSimulator({ seed: "burst-resume" });
    const first = trader([...THREE, ...RUN]);
    const { sessionId } = await first.waitForLog(tradingStarted);
    await eventuallyAdvancing(sim, "a checkpoint with 3 positions", async () => ((await storedSnapshot(stack.env, String(sessionId))).state.positions.length === 3 ? true : undefined));
    await first.kill("SIGKILL");

    // The SDK retries each read once; four failures use up two reconciliation attempts.
    sim.control.injectFault({ kind: "error", count: 4, status: 500, method: "GET", path: "/v2/orders" });
    const listingsBefore = listings(sim).length;
    const resumed = trader(["--resume", ...RUN]);
    await resumed.waitForLog(tradingStarted);
    expect(resumed.logs.filter((line) => line.msg === "reconciliation failed; retrying").map((line) => line.attempt)).toEqual([1, 2]);
    expect(listings(sim).slice(listingsBefore, listingsBefore + 5)).toEqual([500, 500, 500, 500, 200]);
    expect(await resumed.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(stateHoldings((await storedSnapshot(stack.env, String(sessionId))).state)).toEqual(brokerHoldings(sim));
  });

  it("refuses to resume while the broker cannot report positions, placing nothing and never assuming flat", async () => {
    sim = await stack.startSimulator({ seed: "broker-down" });
    const first = trader([...THREE, ...RUN]);
    const { sessionId } = await first.waitForLog(tradingStarted);
    await eventuallyAdvancing(sim, "a checkpoint with 3 positions", async () => ((await storedSnapshot(stack.env, String(sessionId))).state.positions.length === 3 ? true : undefined));
    await first.kill("SIGKILL");
    const before = await storedSnapshot(stack.env, String(sessionId));
    const ordersBefore = sim.control.state().orders.length;

    sim.control.injectFault({ kind: "error", count: 1_000, status: 503, method: "GET", path: "/v2/positions" });
    const resumed = trader(["--resume", ...RUN]);
    expect(await resumed.exited).toEqual({ code: 1, signal: null });
    expect(resumed.logs.map((line) => line.msg)).toContainEqual(
      `could not reconcile session ${sessionId} with the broker after 3 attempts: GET /v2/positions failed: HTTP 503 (code 50300000): simulated failure: HTTP 503 injected by a simulator fault. ` +
        "Nothing was traded: a failed or contradictory broker read is never taken to mean the account is flat. Try again once the broker answers.",
    );
    expect(sim.control.state().orders).toHaveLength(ordersBefore);
    expect(await storedSnapshot(stack.env, String(sessionId))).toMatchObject({ epoch: before.epoch, seq: before.seq });
  });

  it("closes at market a position whose bracket legs were canceled by hand at the broker, found by the legs check", async () => {
    sim = await stack.startSimulator({ seed: "legs-canceled", tickIntervalMs: 50 });
    // One entry, then nothing but HOLD: only the legs check can close the position.
    const reasoner = reasoningWorker(stack.env, (_payload, run): Decision => (run === 1 ? { action: "OPEN_LONG", confidence: 0.9, rationale: "enter once" } : { action: "HOLD", confidence: 0.5, rationale: "hold" }));
    stack.stopAfterTest(() => reasoner.worker.close());
    const { logger, lines } = captureLogger();
    const args = ["--strategy", "reasoner", "--symbols", "AAPL", "--position-size", "2000", "--stop-loss-pct", "5", "--take-profit-pct", "5", ...RUN];
    const trader = await Trader.open(parseCommandLine(args), { ...traderContext(stack.env, sim, stack.client, logger), legsCheckIntervalMs: 300 });
    const running = trader.run();
    stack.stopAfterTest(async () => {
      await trader.stop("test over");
      await running;
    });

    const held = await eventually("the entry filled, its legs attached", () => {
      const position = trader.state.positions.get("AAPL");
      return position?.orders.stopLossId && position.orders.takeProfitId && !trader.state.pendingEntries.has("AAPL") ? position : undefined;
    });
    const entryClientOrderId = `${trader.sessionId}:AAPL:1`;
    // As a person would from the dashboard: one leg, and Alpaca cancels its sibling with it (one cancels other).
    await sdk(sim.url).orders.deleteOrderByOrderID({ orderId: held.orders.stopLossId! });

    await eventually("the position closed", () => (trader.state.closedTrades === 1 ? true : undefined));
    expect(lines).toContainEqual(expect.objectContaining({ change: expect.objectContaining({ kind: "protection_lost", symbol: "AAPL" }) }));
    expect(sessionOrders(sim, trader.sessionId).map((order) => [order.client_order_id, order.type, order.side, order.status])).toEqual([
      [entryClientOrderId, "market", "buy", "filled"],
      [`${entryClientOrderId}:close`, "market", "sell", "filled"],
    ]);
    expect(sim.control.state().orders.filter((order) => order.position_intent === "sell_to_close" && order.order_class === "bracket").map((leg) => leg.status)).toEqual(["canceled", "canceled"]);
    expect(brokerHoldings(sim)).toEqual([]);
    expect(trader.state.positions.size).toBe(0);
    expectBrokersRealizedPl(trader.state, sim);
  });
});
