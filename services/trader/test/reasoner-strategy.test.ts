import { JobRejectedError, type Decision } from "@savepoint/shared";
import { describe, expect, it } from "vitest";
import { parseCommandLine } from "../src/cli/options.js";
import type { RunningSimulator } from "@savepoint/alpaca-simulator";
import { Trader } from "../src/trader.js";
import { reasoningWorker } from "./reasoning-worker.js";
import { captureLogger, eventually, expectBrokersRealizedPl, sessionOrders, traderContext, useTraderStack } from "./support.js";

const ARGS = ["--strategy", "reasoner", "--symbols", "AAPL", "--interval", "0.05", "--checkpoint-interval", "60", "--position-size", "2000"];

describe("reasoner strategy", () => {
  const stack = useTraderStack("trader-reasoner", { client: true });
  let sim: RunningSimulator;

  it("opens and closes positions on the reasoner's decisions, asking through the reasoning queue", async () => {
    sim = await stack.startSimulator({ seed: "reasoner", tickIntervalMs: 50 });
    const script: Decision["action"][] = ["OPEN_LONG", "CLOSE"];
    const reasoner = reasoningWorker(stack.env, (_payload, run) => ({ action: script[run - 1] ?? "HOLD", confidence: 0.8, rationale: `scripted decision ${run}` }));
    stack.stopAfterTest(() => reasoner.worker.close());
    const { logger } = captureLogger();
    const trader = await Trader.open(parseCommandLine(ARGS), traderContext(stack.env, sim, stack.client, logger));
    const running = trader.run();

    await eventually("the trade opened and closed", () => (trader.state.closedTrades === 1 ? true : undefined));
    await trader.stop("test over");
    await running;

    const [first, second] = reasoner.jobs;
    expect(first).toMatchObject({
      id: `think.${trader.sessionId}.AAPL.1`,
      payload: { agentId: trader.sessionId, symbol: "AAPL", marketContext: { position: null } },
    });
    expect(first!.payload.marketContext.price).toBeGreaterThan(0);
    expect(first!.payload.marketContext.recentCloses?.length).toBeGreaterThan(10);
    expect(second).toMatchObject({ id: `think.${trader.sessionId}.AAPL.2`, payload: { marketContext: { position: { side: "long", qty: 10 } } } });

    // The exit replaced the take-profit leg under the trade's close id; the stop-loss, working until then, was canceled.
    expect(sessionOrders(sim, trader.sessionId).map((order) => [order.client_order_id, order.status])).toEqual([
      [`${trader.sessionId}:AAPL:1`, "filled"],
      [`${trader.sessionId}:AAPL:1:close`, "filled"],
    ]);
    expect(sim.control.state().orders.filter((order) => order.order_class === "bracket" && order.position_intent === "sell_to_close").map((leg) => leg.status)).toEqual([
      "replaced",
      "canceled",
      "filled",
    ]);
    expect(trader.state.positions.size).toBe(0);
    expectBrokersRealizedPl(trader.state, sim);
    expect(trader.state.toSnapshot(new Date()).decisionRuns.AAPL).toBeGreaterThanOrEqual(2);
  });

  it("holds when a reasoning run fails, and asks again with a new run", async () => {
    sim = await stack.startSimulator({ seed: "reasoner-failing" });
    const reasoner = reasoningWorker(stack.env, (_payload, run) => {
      if (run === 1) throw new JobRejectedError("model_refused", "no model answered");
      return { action: "HOLD", confidence: 0.5, rationale: "nothing to do" };
    });
    stack.stopAfterTest(() => reasoner.worker.close());
    const { logger, lines } = captureLogger();
    const trader = await Trader.open(parseCommandLine(ARGS), traderContext(stack.env, sim, stack.client, logger));
    const running = trader.run();

    await eventually("a second run", () => (reasoner.jobs.length >= 2 ? true : undefined));
    await trader.stop("test over");
    await running;

    expect(lines).toContainEqual(expect.objectContaining({ msg: "reasoning run failed; holding", jobId: `think.${trader.sessionId}.AAPL.1`, problem: "no model answered" }));
    expect(reasoner.jobs[1]!.id).toBe(`think.${trader.sessionId}.AAPL.2`);
    expect(sessionOrders(sim, trader.sessionId)).toEqual([]);
  });
});
