import type { RunningSimulator } from "@savepoint/alpaca-simulator";
import { describe, expect, it } from "vitest";
import { brokerHoldings, eventually, sessionOrders, stateHoldings, storedSnapshot, tradingStarted, useTraderStack } from "./support.js";

const RUN = ["--interval", "0.1", "--checkpoint-interval", "0.5", "--entry-threshold-pct", "0", "--lookback", "3"];
const messages = (lines: ReadonlyArray<{ msg?: unknown }>) => lines.map((line) => String(line.msg));

/**
 * Alpaca's limits at the simulator, with its real checks: the rate limit (429 with X-RateLimit-*), and buying
 * power with the collar on market buys. rate-limit.unit.test.ts shows the back-off on the SDK's own errors.
 */
describe("the trader within Alpaca's limits", () => {
  const stack = useTraderStack("trader-broker-limits");
  let sim: RunningSimulator;

  it("after a 429 sends nothing until X-RateLimit-Reset, never takes a refusal for a rejection or for empty data, and trades on", async () => {
    // 30 requests per 2-second window: a trader ticking ten times a second spends that within a second. Its own
    // limiter is set far above, as when another client uses the key: the broker's 429s are what it meets.
    sim = await stack.startSimulator({ seed: "rate-limited", requestsPerMinute: 30, rateLimitWindowMs: 2_000, tickIntervalMs: 100 });
    const trader = stack.spawnTrader(sim, ["--symbols", "AAPL,MSFT,TSLA", "--position-size", "2000", "--stop-loss-pct", "5", "--take-profit-pct", "5", ...RUN], {
      BROKER_REQUESTS_PER_MINUTE: "100000",
    });
    const { sessionId } = await trader.waitForLog(tradingStarted, 60_000);
    await eventually("three entries placed and held", () => (brokerHoldings(sim).length === 3 ? true : undefined), 60_000);
    const startedAt = Date.now();
    await eventually("a few windows of trading on the limit", () => (Date.now() - startedAt > 6_000 ? true : undefined), 30_000);
    expect(await trader.kill("SIGTERM")).toEqual({ code: 0, signal: null });

    const trading = sim.control.requests().filter((request) => !request.path.startsWith("/v2/stocks/"));
    const refused = trading.filter((request) => request.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    expect(messages(trader.logs)).toContainEqual(expect.stringMatching(/^the broker's trading API rate limit is reached \(HTTP 429\); sending it nothing until /));
    // Each refusal pauses the API until its window starts over, so the refusals come one or two a window
    // (requests already on their way), never a stream of retries: every window is 2 s, at most 30 are answered.
    const spanSeconds = (Date.parse(trading.at(-1)!.receivedAt) - Date.parse(trading[0]!.receivedAt)) / 1000;
    expect(refused.length).toBeLessThanOrEqual(2 * (spanSeconds / 2 + 2));

    // No refusal was taken for a rejected order, a missing order or a closed position.
    expect(messages(trader.logs)).not.toContain("entry order rejected by the broker; nothing placed");
    const changes = trader.logs.flatMap((line) => (line.change ? [line.change as { kind: string; trade?: { via: string } }] : []));
    expect(changes.filter((change) => change.kind === "placement_not_found" || change.trade?.via === "unknown")).toEqual([]);
    const final = await storedSnapshot(stack.env, String(sessionId));
    expect(stateHoldings(final.state)).toEqual(brokerHoldings(sim));
    expect(sessionOrders(sim, String(sessionId)).filter((order) => order.order_class === "bracket")).toHaveLength(3);
  });

  it("rate limited at start, says so and when it tries again, waits for the limit's reset and then trades", async () => {
    sim = await stack.startSimulator({ seed: "rate-limited-start", tickIntervalMs: 100 });
    // Longer than a request waits within itself (2 s): the account read fails, and the trader waits at start.
    sim.control.injectFault({ kind: "error", count: 1, status: 429, retryAfterSeconds: 3, method: "GET", path: "/v2/account" });
    const trader = stack.spawnTrader(sim, ["--symbols", "AAPL", ...RUN]);
    await trader.waitForLog(tradingStarted, 60_000);
    expect(await trader.kill("SIGTERM")).toEqual({ code: 0, signal: null });

    const waiting = trader.logs.filter((line) => line.event === "rate_limited_at_start");
    expect(waiting.map((line) => String(line.msg))).toEqual([
      expect.stringMatching(/^cannot read the broker account yet: the broker's rate limit is reached \(HTTP 429\); waiting for its reset and trying again at \S+Z \(in [23] s\)$/),
    ]);
    expect(trader.output.join("\n")).not.toMatch(/APCA_API_BASE_URL|\n\s+at /);
    const reads = sim.control.requests({ method: "GET", path: "/v2/account" });
    expect(reads.slice(0, 2).map((request) => request.status)).toEqual([429, 200]);
    expect(Date.parse(reads[1]!.receivedAt) - Date.parse(reads[0]!.receivedAt)).toBeGreaterThanOrEqual(2_900);
  });

  it("sizes entries within the buying power as Alpaca charges it, so none is refused", async () => {
    // A cash-like account ($6,000, multiplier 1) and $4,000 positions: the second entry and later are paid
    // from what is left, with the collar on a market buy (2.5% from $50) and 3% on a short sale.
    sim = await stack.startSimulator({ seed: "buying-power", initialCash: 6_000, multiplier: 1, tickIntervalMs: 100 });
    const trader = stack.spawnTrader(sim, ["--symbols", "AAPL,MSFT,NVDA", "--position-size", "4000", "--stop-loss-pct", "20", "--take-profit-pct", "20", ...RUN]);
    const { sessionId } = await trader.waitForLog(tradingStarted, 60_000);
    await eventually("two entries filled", () => (brokerHoldings(sim).length >= 2 ? true : undefined), 60_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await trader.kill("SIGTERM")).toEqual({ code: 0, signal: null });

    const entries = sessionOrders(sim, String(sessionId)).filter((order) => order.order_class === "bracket");
    expect(entries.map((order) => order.status)).not.toContain("rejected");
    expect(sim.control.requests({ method: "POST", path: "/v2/orders" }).map((request) => request.status)).not.toContain(403);
    expect(messages(trader.logs)).not.toContain("entry order rejected by the broker; nothing placed");
    // The later entries bought fewer shares than $4,000 would: the buying power was what was left.
    const state = sim.control.state();
    const full = entries.map((order) => Math.floor(4_000 / Number(order.filled_avg_price)));
    expect(entries.map((order) => Number(order.filled_qty)).some((qty, index) => qty < full[index]!)).toBe(true);
    expect(Number(state.account.buying_power)).toBeGreaterThanOrEqual(0);
  });
});
