import type { RunningSimulator } from "@savepoint/alpaca-simulator";
import { describe, expect, it } from "vitest";
import { sdk } from "@savepoint/alpaca-simulator/testing";
import { brokerHoldings, eventually, sessionOrders, tradingStarted, useTraderStack } from "./support.js";

const ARGS = ["--symbols", "AAPL,MSFT", "--interval", "0.1", "--checkpoint-interval", "0.5", "--lookback", "3", "--entry-threshold-pct", "0", "--position-size", "2000", "--stop-loss-pct", "5", "--take-profit-pct", "5"];
const MINUTE = 60_000;
/** Tuesday 6 January 2026 on the NYSE calendar: the close at 16:00 and Wednesday's open at 09:30, New York time (EST). */
const CLOSE = Date.parse("2026-01-06T21:00:00.000Z");
const NEXT_OPEN = Date.parse("2026-01-07T14:30:00.000Z");

/**
 * The trader against the simulator on the NYSE calendar (its default): the close, the night, the next open.
 * market-hours.unit.test.ts shows the steps of the sleep on a scripted clock.
 */
describe("the trader across the NYSE close", () => {
  const stack = useTraderStack("trader-market-hours");
  let sim: RunningSimulator;

  /**
   * Moves the simulated clock a minute every `everyMs` from now on, noting after each minute the broker time and
   * the last request received, so each request can be placed in simulated time.
   */
  function runClock(everyMs: number) {
    const marks: Array<{ now: number; seq: number }> = [];
    const timer = setInterval(() => {
      sim.control.advance(1);
      marks.push({ now: sim.control.now().getTime(), seq: sim.control.requests().at(-1)?.seq ?? 0 });
    }, everyMs);
    stack.stopAfterTest(async () => clearInterval(timer));
    /** The simulated minute a request was received in (the first mark taken after it). */
    const timeOf = (seq: number) => marks.find((mark) => mark.seq >= seq)?.now;
    return { timeOf, stop: () => clearInterval(timer) };
  }

  it("trades until the close, sleeps through the night reading only the clock while checkpointing, and trades again at the open", async () => {
    // Three minutes before the close; the clock stands still until the trader trades, then runs a minute every
    // 10 ms, so the 17.5-hour night passes in about ten seconds.
    sim = await stack.startSimulator({ seed: "nyse-close", start: new Date(CLOSE - 3 * MINUTE) });
    const trader = stack.spawnTrader(sim, ARGS);
    const { sessionId } = await trader.waitForLog(tradingStarted, 60_000);
    await eventually("an entry before the close", () => (sim.control.state().orders.some((order) => String(order.client_order_id).startsWith(`${String(sessionId)}:`)) ? true : undefined));
    const clock = runClock(10);

    const closed = await trader.waitForLog((line) => line.event === "market_closed", 30_000);
    expect(closed.msg).toMatch(/^market closed: sleeping until the next open at 2026-01-07T14:30:00\.000Z \(broker time, 17h \d+m from now\)$/);
    const sleptAt = new Date(String(closed.time));
    await trader.waitForLog((line) => line.event === "market_open", 90_000);
    const wokeAt = new Date();
    await eventually("a tick after the open", () => (sim.control.requests({ path: "/v2/positions" }).some((request) => (clock.timeOf(request.seq) ?? 0) > NEXT_OPEN) ? true : undefined));
    clock.stop();

    // The tick that found the market closed may come a few simulated minutes after the close; from then on,
    // until the open, nothing but the clock was read, and that a few dozen times, not every tick interval.
    const night = sim.control.requests().filter((request) => {
      const at = clock.timeOf(request.seq);
      return at !== undefined && at > CLOSE + 30 * MINUTE && at <= NEXT_OPEN;
    });
    expect(new Set(night.map((request) => `${request.method} ${request.path}`))).toEqual(new Set(["GET /v2/clock"]));
    expect(night.length).toBeLessThan(40);
    // It woke at the open: its first tick came within two simulated hours of it, 1.2 s here (the clock runs a
    // minute every 10 ms, and a loaded machine holds up both its ticks and the trader's timers).
    const firstTick = sim.control.requests({ path: "/v2/positions" }).find((request) => (clock.timeOf(request.seq) ?? 0) > CLOSE + 30 * MINUTE);
    expect(clock.timeOf(firstTick!.seq)!).toBeGreaterThan(NEXT_OPEN);
    expect(clock.timeOf(firstTick!.seq)! - NEXT_OPEN).toBeLessThanOrEqual(120 * MINUTE);
    expect(trader.logs.filter((line) => line.event === "market_closed")).toHaveLength(1);

    // Periodic checkpoints went on while it slept.
    const { rows } = await stack.env.query<{ count: string }>(
      "SELECT count(*) FROM checkpoints WHERE service = 'trader' AND session_id = $1 AND kind = 'periodic' AND taken_at > $2 AND taken_at < $3",
      [sessionId, sleptAt, wokeAt],
    );
    expect(Number(rows[0]!.count)).toBeGreaterThanOrEqual(3);
    expect(await trader.kill("SIGTERM")).toEqual({ code: 0, signal: null });
  });

  it("gives positions adopted while the market is closed their protective gtc stop at start, not at the open, one already through it too", async () => {
    sim = await stack.startSimulator({ seed: "nyse-adopt-closed", start: new Date(CLOSE - 10 * MINUTE), tickIntervalMs: 0 });
    // Bought outside any session before the close.
    for (const symbol of ["AAPL", "MSFT"]) await sdk(sim.url).orders.market({ symbol, qty: 10, side: "buy", timeInForce: "day" });
    sim.control.advance(2);
    const avgEntry = (symbol: string) => Number(sim.control.state().positions.find((position) => position.symbol === symbol)!.avg_entry_price);
    expect(brokerHoldings(sim)).toEqual(["AAPL long 10", "MSFT long 10"]);
    // MSFT's last trade before the close is far through the stop it would get (5% under its entry).
    sim.control.setPrice("MSFT", avgEntry("MSFT") * 0.5);
    sim.control.advance(20);
    expect(sim.control.state().marketOpen).toBe(false);

    const running = stack.spawnTrader(sim, ARGS);
    const { sessionId } = await running.waitForLog(tradingStarted);
    await running.waitForLog((line) => line.event === "market_closed");
    // A stop, not a market close, for both: queued by the broker until the open, when a sell stop through its price
    // becomes a market order and fills at the first trade, as a close at market at the open would.
    const stops = sessionOrders(sim, String(sessionId)).map((order) => [order.client_order_id, order.type, order.time_in_force, Number(order.qty), order.side, Number(order.stop_price), order.status]);
    expect(stops.sort()).toEqual(
      ["AAPL", "MSFT"].map((symbol) => [`${sessionId}:${symbol}:1:close`, "stop", "gtc", 10, "sell", Math.round(avgEntry(symbol) * 95) / 100, "accepted"]),
    );
    expect(running.logs.filter((line) => String(line.msg).startsWith("adopted without a stop while the market is closed, and its last trade is already through")).map((line) => line.symbol)).toEqual(["MSFT"]);
    expect(await running.kill("SIGTERM")).toEqual({ code: 0, signal: null });
  });

  it("ends its sleep at once on SIGTERM, writing the shutdown checkpoint without another look at the clock", async () => {
    // The evening after the close, the clock at real pace: the next open is more than 17 hours away.
    sim = await stack.startSimulator({ seed: "nyse-night", start: new Date(CLOSE + 30 * MINUTE), tickIntervalMs: 60_000 });
    const trader = stack.spawnTrader(sim, ARGS);
    const { sessionId } = await trader.waitForLog(tradingStarted, 60_000);
    await trader.waitForLog((line) => line.event === "market_closed");

    expect(await trader.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    const shutdown = trader.logs.find((line) => line.msg === "⟳ Shutting down gracefully...")!;
    expect(sim.control.requests({ path: "/v2/clock" }).filter((request) => request.receivedAt > String(shutdown.time))).toEqual([]);
    const { rows } = await stack.env.query<{ kind: string; status: string }>(
      "SELECT kind, status FROM checkpoints WHERE service = 'trader' AND session_id = $1 ORDER BY epoch DESC, seq DESC LIMIT 1",
      [sessionId],
    );
    expect(rows[0]).toEqual({ kind: "shutdown", status: "interrupted" });
  });
});
