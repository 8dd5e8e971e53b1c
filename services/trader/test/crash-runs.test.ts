import { describe, expect, it } from "vitest";
import type { RunningSimulator } from "@savepoint/alpaca-simulator";
import { brokerHoldings, expectBrokersRealizedPl, stateHoldings, storedSnapshot, tradingStarted, useTraderStack } from "./support.js";

const RUNS = 8;
const RUN = ["--interval", "0.1", "--checkpoint-interval", "0.3"];
const SESSION = ["--symbols", "AAPL,MSFT,TSLA,NVDA", "--entry-threshold-pct", "0", "--lookback", "5", "--position-size", "4000", "--stop-loss-pct", "0.3", "--take-profit-pct", "0.3"];
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const between = (low: number, high: number) => Math.round(low + Math.random() * (high - low));

/**
 * Walks the broker's fills in order and returns every moment a symbol was entered while held by another entry,
 * or exited by more than was held: either would mean an order of the session was placed twice. Orders fill in
 * parts, so an entry's later fills add to its own position, and exits take it down part by part.
 */
function doubledOrders(sim: RunningSimulator): string[] {
  const { fills, orders } = sim.control.state();
  const intentOf = new Map(orders.map((order) => [order.id, String(order.position_intent)]));
  const held = new Map<string, { entryId: string; qty: number }>();
  const problems: string[] = [];
  for (const fill of fills) {
    const qty = Number(fill.qty);
    const position = held.get(fill.symbol);
    if (intentOf.get(fill.order_id)!.endsWith("_to_open")) {
      if (position && position.entryId !== fill.order_id) problems.push(`${fill.symbol} entered while held at ${fill.transaction_time}`);
      held.set(fill.symbol, { entryId: fill.order_id, qty: (position?.entryId === fill.order_id ? position.qty : 0) + qty });
    } else if (!position || position.qty < qty) {
      problems.push(`${fill.symbol} exited by more than was held at ${fill.transaction_time}`);
    } else if (position.qty === qty) {
      held.delete(fill.symbol);
    } else {
      position.qty -= qty;
    }
  }
  return problems;
}

/** This session's entry orders per symbol, by trade number: each number used once, none skipped. */
function tradeNumbers(sim: RunningSimulator, sessionId: string): Record<string, number[]> {
  const numbers: Record<string, number[]> = {};
  for (const order of sim.control.state().orders) {
    const match = new RegExp(`^${sessionId}:([A-Z]+):(\\d+)$`).exec(String(order.client_order_id));
    if (match) (numbers[match[1]!] ??= []).push(Number(match[2]));
  }
  return numbers;
}

describe("SIGKILL at randomised moments", () => {
  const stack = useTraderStack("trader-crash-runs");
  let sim: RunningSimulator | undefined;

  const trader = (args: string[]) => stack.spawnTrader(sim!, args);

  /**
   * Every run is killed once while trading; every other run is also killed again while the first resume is
   * starting up (restoring, reconciling or just trading again), and resumed once more.
   */
  const runs = Array.from({ length: RUNS }, (_, index) => {
    const killAfterMs = between(100, 1_000);
    const downMs = between(0, 300);
    const killResumeAfterMs = index % 2 === 1 ? between(0, 1_500) : null;
    const moments = `killed ${killAfterMs} ms into trading, down ${downMs} ms${killResumeAfterMs === null ? "" : `, its resume killed after ${killResumeAfterMs} ms`}`;
    return { description: `run ${index + 1}: ${moments}`, seed: `crash-run-${index}`, killAfterMs, downMs, killResumeAfterMs };
  });

  it.each(runs)(
    "$description: after --resume the session matches the broker, nothing was placed twice",
    async ({ seed, killAfterMs, downMs, killResumeAfterMs }) => {
      // A market that never closes: at a minute per 40 ms NYSE's 5.5 h from START are gone in 13 s, before a loaded
      // run's resume, which would then sleep through the night instead of trading.
      sim = await stack.startSimulator({ seed, tickIntervalMs: 40, marketHours: "always_open" });
      const first = trader([...SESSION, ...RUN]);
      const sessionId = String((await first.waitForLog(tradingStarted)).sessionId);
      await pause(killAfterMs);
      await first.kill("SIGKILL");
      await pause(downMs);
      if (killResumeAfterMs !== null) {
        const interrupted = trader(["--resume", ...RUN]);
        await pause(killResumeAfterMs);
        await interrupted.kill("SIGKILL");
      }

      const resumed = trader(["--resume", ...RUN]);
      await resumed.waitForLog(tradingStarted);
      await pause(between(150, 400));
      sim.control.setMarketOpen(false);
      await pause(250);
      expect(await resumed.kill("SIGTERM")).toEqual({ code: 0, signal: null });

      const final = await storedSnapshot(stack.env, sessionId);
      expect(final.kind).toBe("shutdown");
      expect(final.epoch).toBeGreaterThanOrEqual(1);
      expect(stateHoldings(final.state)).toEqual(brokerHoldings(sim));
      expectBrokersRealizedPl(final.state, sim);
      expect(doubledOrders(sim)).toEqual([]);
      for (const [symbol, numbers] of Object.entries(tradeNumbers(sim, sessionId))) {
        expect(numbers, symbol).toEqual(numbers.map((_, index) => index + 1));
        expect(final.state.nextTradeNo[symbol], symbol).toBe(numbers.length + 1);
      }
    },
  );
});
