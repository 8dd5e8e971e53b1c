import { Worker } from "node:worker_threads";
import { HttpTap, type ServiceProcess } from "@savepoint/shared/testing";
import { describe, expect, it } from "vitest";
import type { RunningSimulator } from "@savepoint/alpaca-simulator";
import { parseCommandLine } from "../src/cli/options.js";
import { orderRequestMs } from "../src/config.js";
import { Trader } from "../src/trader.js";
import { brokerHoldings, captureLogger, eventually, sessionOrders, stateHoldings, storedSnapshot, traderContext, tradingStarted, useTraderStack } from "./support.js";

const RUN = ["--interval", "0.1", "--checkpoint-interval", "0.3"];
const TWO = ["--symbols", "AAPL,MSFT", "--entry-threshold-pct", "0", "--lookback", "3", "--position-size", "3000", "--stop-loss-pct", "5", "--take-profit-pct", "5"];
/**
 * Short enough that a trader learns of a take-over by its renewals within two seconds; the broker timeout short
 * enough that an order request fits within the lease, as the trader requires (BROKER_TIMEOUT_MS + 3 s at most).
 */
const LEASE = { TRADER_ACCOUNT_LEASE_MS: "6000", BROKER_TIMEOUT_MS: "3000" };
/**
 * A simulated minute every 50 ms, in a market that never closes: these tests are about the account's lease, not
 * the hours, and at this pace NYSE's 5.5 hours from START are gone in 16.5 s, less than a loaded run of a take-over
 * test takes (the taker alone waits 7-9 s); a close mid-test expires the entries and stops the fills it waits for.
 */
const TICKING = { tickIntervalMs: 50, marketHours: "always_open" } as const;

const messages = (trader: ServiceProcess) => trader.logs.map((line) => String(line.msg));
const changeKinds = (trader: ServiceProcess) => trader.logs.flatMap((line) => (line.change ? [(line.change as { kind: string }).kind] : []));

describe("one trading session per broker account", () => {
  const stack = useTraderStack("trader-account-lease", { client: true });
  let sim: RunningSimulator;

  const trader = (args: string[], env: Record<string, string> = {}) => stack.spawnTrader(sim, args, { ...LEASE, ...env });

  /** A broker tap per trader: what each one sent to the broker, told apart. */
  async function tap(): Promise<HttpTap> {
    const opened = await HttpTap.start(sim.url);
    stack.stopAfterTest(() => opened.close());
    return opened;
  }

  async function sessionWithTwoPositions() {
    const first = trader([...TWO, ...RUN]);
    const started = await first.waitForLog(tradingStarted);
    const sessionId = String(started.sessionId);
    await eventually("a checkpoint holding 2 positions", async () => ((await storedSnapshot(stack.env, sessionId)).state.positions.length === 2 ? true : undefined));
    return { first, sessionId };
  }

  it("refuses a second session on the account in one line naming the session that holds it; the first trades on undisturbed", async () => {
    sim = await stack.startSimulator({ seed: "one-owner", ...TICKING });
    const { first, sessionId } = await sessionWithTwoPositions();
    const accountId = sim.control.state().account.id;

    const secondTap = await tap();
    const second = trader([...TWO, ...RUN], { APCA_API_BASE_URL: secondTap.url });
    expect(await second.exited).toEqual({ code: 4, signal: null });
    const refusal = `account ${accountId} is being traded by session ${sessionId} (epoch 0; its lease lapses in`;
    expect(second.output.filter((line) => line.startsWith("trader: "))).toEqual([expect.stringContaining(`trader: ${refusal}`)]);
    expect(second.output.join("\n")).not.toMatch(/\n\s+at /);
    expect(messages(second)).toContainEqual(expect.stringMatching(/--take-over to take the account from it$/));
    // It adopted nothing, placed nothing and wrote nothing.
    expect(messages(second)).not.toContainEqual(expect.stringMatching(/^Reconciliation:/));
    expect(secondTap.count("POST", "/v2/orders")).toBe(0);
    const { rows } = await stack.env.query("SELECT DISTINCT session_id FROM checkpoints");
    expect(rows).toEqual([{ session_id: sessionId }]);

    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await first.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(changeKinds(first)).not.toContain("quantity_corrected");
    expect(changeKinds(first)).not.toContain("position_adopted");
    const final = await storedSnapshot(stack.env, sessionId);
    expect(stateHoldings(final.state)).toEqual(brokerHoldings(sim));
  });

  it("--take-over takes the account, saying so; the trader that held it stops without placing another order", async () => {
    sim = await stack.startSimulator({ seed: "take-over", ...TICKING });
    const { first, sessionId } = await sessionWithTwoPositions();
    const ordersBefore = sessionOrders(sim, sessionId).length;

    const second = trader([...TWO, ...RUN, "--take-over"]);
    const started = await second.waitForLog(tradingStarted);
    const takeOver = second.logs.find((line) => line.event === "account_taken_over");
    expect(takeOver?.msg).toMatch(new RegExp(`^--take-over: took account \\S+ from session ${sessionId} \\(epoch 0, its lease had \\d+ s left\\); that trader stops before its next order$`));
    // BROKER_TIMEOUT_MS (3 s) + 2 s + TRADER_TAKEOVER_MARGIN_MS (2 s), before the broker is read.
    const wait = second.logs.find((line) => line.event === "take_over_wait");
    expect(wait?.msg).toBe(`--take-over: waiting 7.0 s before reading the broker: an order session ${sessionId} sent just before losing the account can reach the broker until then (BROKER_TIMEOUT_MS + 2 s + TRADER_TAKEOVER_MARGIN_MS)`);
    expect(second.logs.indexOf(wait!)).toBeLessThan(second.logs.findIndex((line) => line.change !== undefined));

    expect(await first.exited).toEqual({ code: 3, signal: null });
    expect(messages(first)).toContain(`session ${String(started.sessionId)} has taken account ${sim.control.state().account.id} over from session ${sessionId} (--take-over); stopping without placing further orders`);
    expect(sessionOrders(sim, sessionId)).toHaveLength(ordersBefore);
    // The positions nobody owns any longer are the new session's now.
    expect(changeKinds(second).filter((kind) => kind === "position_adopted")).toHaveLength(2);
    expect(await second.kill("SIGTERM")).toEqual({ code: 0, signal: null });
  });

  it("a trader told to stop (SIGTERM) during its --take-over wait exits 0 at once, having read and placed nothing, and gives the account up", async () => {
    sim = await stack.startSimulator({ seed: "take-over-stopped", ...TICKING });
    const { first } = await sessionWithTwoPositions();

    const secondTap = await tap();
    const second = trader([...TWO, ...RUN, "--take-over"], { APCA_API_BASE_URL: secondTap.url });
    await second.waitForLog((line) => line.event === "take_over_wait");
    const readsBefore = secondTap.count("GET", "/v2/orders") + secondTap.count("GET", "/v2/positions");
    const signaledAt = Date.now();
    // The wait is 7 s (BROKER_TIMEOUT_MS 3 s + 2 s + 2 s).
    expect(await second.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(Date.now() - signaledAt).toBeLessThan(2_000);
    expect(messages(second)).toContain("--take-over: told to stop during the wait; stopping before reading the broker, nothing traded, the account's lease given up");
    expect(second.logs.some(tradingStarted)).toBe(false);
    expect(secondTap.count("POST", "/v2/orders")).toBe(0);
    expect(secondTap.count("GET", "/v2/orders") + secondTap.count("GET", "/v2/positions")).toBe(readsBefore);

    // The old trader lost the account to the take-over and stops; the account is free again, for a new session.
    expect(await first.exited).toEqual({ code: 3, signal: null });
    const third = trader([...TWO, ...RUN]);
    await third.waitForLog(tradingStarted);
    expect(third.logs.some((line) => line.event === "take_over_wait")).toBe(false);
    expect(await third.kill("SIGTERM")).toEqual({ code: 0, signal: null });
  });

  it("an order the old trader sent just before a --take-over, held at the broker past the take-over, is adopted by the new session with its stop-loss", async () => {
    sim = await stack.startSimulator({ seed: "late-order", ...TICKING });
    // The old trader's first entry takes effect 7.5 s after it reached the broker: within its request's timeout
    // (the simulator drops a request its client aborted), after the take-over (a taker started on a loaded machine
    // may take seconds to get there), within the taker's wait (12 s).
    const HELD_MS = 7_500;
    const slowBroker = { BROKER_TIMEOUT_MS: "8000", TRADER_ACCOUNT_LEASE_MS: "11000" };
    sim.control.injectFault({ kind: "latency", ms: HELD_MS, method: "POST", path: "/v2/orders", count: 1 });
    const first = trader([...TWO, ...RUN], slowBroker);
    const sessionId = String((await first.waitForLog(tradingStarted)).sessionId);
    await eventually("the old trader's first entry held at the broker", () => (sim.control.faults().length === 0 ? true : undefined));

    const second = trader([...TWO, ...RUN, "--take-over"], slowBroker);
    const takeOver = await second.waitForLog((line) => line.event === "account_taken_over");
    const started = await second.waitForLog(tradingStarted, 30_000);
    // The take-over came before the held entry took effect at the broker: the taker logged it, once it held the
    // account, at a time (its own, this machine's clock) before the entry's request had waited out its latency.
    // The taker's time, not the moment this test saw the line, which a loaded test process sees late.
    const heldEntry = sim.control.requests({ method: "POST", path: "/v2/orders" })[0]!;
    expect(Date.parse(String(takeOver.time))).toBeLessThan(Date.parse(heldEntry.receivedAt) + HELD_MS);
    const newSession = String(started.sessionId);
    expect(await first.exited).toEqual({ code: 3, signal: null });
    const late = sessionOrders(sim, sessionId);
    expect(late).toHaveLength(1);
    expect(changeKinds(second)).toEqual(expect.arrayContaining(["position_adopted", "legs_attached"]));

    // The new session tracks exactly what the broker holds, every position with a stop-loss at the broker.
    const held = await eventually("the new session's checkpoint holding what the broker holds", async () => {
      const { state } = await storedSnapshot(stack.env, newSession);
      const holdings = brokerHoldings(sim);
      return holdings.length === 2 && state.pendingEntries.length === 0 && JSON.stringify(stateHoldings(state)) === JSON.stringify(holdings) ? state : undefined;
    }, 30_000);
    const working = new Set(sim.control.state().orders.flatMap((order) => [order, ...((order.legs as typeof order[]) ?? [])]).filter((order) => order.type === "stop" && !["filled", "canceled", "expired", "rejected", "replaced"].includes(String(order.status))).map((order) => String(order.id)));
    for (const position of held.positions) expect(working.has(String(position.orders.stopLossId)), `${position.symbol}'s stop-loss is working at the broker`).toBe(true);
    expect(await second.kill("SIGTERM")).toEqual({ code: 0, signal: null });
  });

  it("--take-over cancels the entries the old session left working, once its wait is over, waits for the cancels, adopts what filled and gives it a stop", async () => {
    // The clock moves only when the test says, and each trade fills a part of an entry (the minute's own
    // trades are too small for any share): the old session's entries stay working as long as the test wants.
    sim = await stack.startSimulator({ seed: "left-working", tickIntervalMs: 0, partialFillChance: 1, tradeVolumeShare: 1e-9 });
    const first = trader([...TWO, ...RUN]);
    const sessionId = String((await first.waitForLog(tradingStarted)).sessionId);
    const entries = () => sessionOrders(sim, sessionId).filter((order) => order.order_class === "bracket");
    const entryOf = (symbol: string) => entries().find((order) => order.symbol === symbol)!;
    await eventually("the old session's two entries at the broker", () => (entries().length === 2 ? true : undefined));
    sim.control.advance(1);
    sim.control.setPrice("AAPL", sim.control.price("AAPL"));
    await eventually("AAPL's entry part-filled", () => (entryOf("AAPL").status === "partially_filled" ? true : undefined));
    expect(entryOf("MSFT").status).toBe("new");

    const second = trader([...TWO, ...RUN, "--take-over"]);
    await second.waitForLog((line) => line.event === "take_over_wait");
    expect(await first.exited).toEqual({ code: 3, signal: null });
    // Asked for once the wait is over; accepted, not done, until the broker's next step.
    await eventually("both cancels pending", () => (entries().every((order) => order.status === "pending_cancel") ? true : undefined), 20_000);
    const logged = await eventually("both cancels logged", () => {
      const lines = second.logs.filter((line) => line.event === "other_session_entry_canceled");
      return lines.length === 2 ? lines : undefined;
    });
    expect(logged.map((line) => line.clientOrderId).sort()).toEqual([`${sessionId}:AAPL:1`, `${sessionId}:MSFT:1`]);
    expect(second.logs.some(tradingStarted)).toBe(false);
    const aaplFilled = Number(entryOf("AAPL").filled_qty);
    sim.control.advance(1);
    const started = await second.waitForLog(tradingStarted);

    expect(entries().map((order) => order.status)).toEqual(["canceled", "canceled"]);
    const reported = second.logs.flatMap((line) => (typeof line.msg === "string" && line.msg.startsWith("Reconciliation: ") ? [line.change as { kind: string; symbol: string; filledQty?: number }] : []));
    expect(reported).toEqual(
      expect.arrayContaining([
        { kind: "other_session_entry_canceled", symbol: "AAPL", clientOrderId: `${sessionId}:AAPL:1`, status: "canceled", filledQty: aaplFilled },
        { kind: "other_session_entry_canceled", symbol: "MSFT", clientOrderId: `${sessionId}:MSFT:1`, status: "canceled", filledQty: 0 },
        { kind: "position_adopted", symbol: "AAPL", side: entryOf("AAPL").side === "buy" ? "long" : "short", qty: aaplFilled, avgEntryPrice: Number(entryOf("AAPL").filled_avg_price) },
      ]),
    );
    // What the old session filled is the new session's; MSFT, left flat, it may enter on its own, once.
    const newSession = String(started.sessionId);
    const { state } = await eventually("the new session's checkpoint", async () => (await storedSnapshot(stack.env, newSession).catch(() => undefined)));
    expect(state.positions.map((position) => [position.symbol, position.qty, position.origin])).toEqual([["AAPL", aaplFilled, "adopted"]]);
    await eventually("the new session's own MSFT entry", () => (sessionOrders(sim, newSession).some((order) => order.symbol === "MSFT") ? true : undefined));
    // Its stop-loss went with the canceled rest of its entry: the new session gives AAPL a protective stop, 5% (--stop-loss-pct) from its average entry.
    const long = entryOf("AAPL").side === "buy";
    const stopPrice = Math.round(Number(entryOf("AAPL").filled_avg_price) * (long ? 0.95 : 1.05) * 100) / 100;
    const aapl = sessionOrders(sim, newSession).filter((order) => order.symbol === "AAPL");
    expect(aapl.map((order) => [order.client_order_id, order.type, order.time_in_force, Number(order.qty), order.side, Number(order.stop_price)])).toEqual([
      [`${newSession}:AAPL:1:close`, "stop", "gtc", aaplFilled, long ? "sell" : "buy", stopPrice],
    ]);
    expect(await second.kill("SIGTERM")).toEqual({ code: 0, signal: null });
  });

  it("a trader stalled between renewing its lease and sending an order, until the lease lapsed and another session took the account, sends no order", async () => {
    sim = await stack.startSimulator({ seed: "stalled-owner", ...TICKING });
    const ttlMs = 8_000;
    const key = `${stack.env.queuePrefix}:trader-account-leases:${sim.control.state().account.id}`;
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const intruder = new Worker(new URL("./lease-intruder.mjs", import.meta.url), { workerData: { redisUrl: stack.env.redisUrl, key, ttlMs, flag: flag.buffer } });
    stack.stopAfterTest(() => intruder.terminate());
    const { logger, lines } = captureLogger();
    let renewals = 0;
    const trader = await Trader.open(parseCommandLine(["--symbols", "AAPL", "--interval", "0.1", "--checkpoint-interval", "60", ...TWO.slice(2)]), {
      ...traderContext(stack.env, sim, stack.client, logger),
      accountLeaseMs: ttlMs,
      orderRequestMs: orderRequestMs(5_000),
      // The renewal before the first order is answered, then the process stalls, event loop and lease
      // renewals and all, until the lease has lapsed and the intruder holds the account.
      stallAfterLeaseRenewal: () => {
        if (renewals++ > 0) return;
        Atomics.store(flag, 0, 1);
        Atomics.notify(flag, 0);
        Atomics.wait(flag, 0, 1, 30_000);
      },
    });
    stack.stopAfterTest(() => trader.stop("test over"));

    const outcome = await trader.run();
    expect(Atomics.load(flag, 0)).toBe(2);
    expect(outcome).toMatchObject({ end: { reason: "taken_over" }, exitCode: 3, final: null });
    expect(sim.control.requests({ method: "POST", path: "/v2/orders" })).toEqual([]);
    expect(lines.find((line) => line.msg === "tick skipped: this trader's hold on the account might not outlast an order request; trying again next tick")?.problem).toMatch(
      /^account \S+'s lease was renewed too late to cover an order: 0 ms of it left, and an order request may take 7000 ms \(the trader or Redis stalled\); no order until the next check$/,
    );
  });

  it.each([1, 2, 3])("of two traders resuming one session at once, the one fenced out places no order (trial %i)", async (trial) => {
    sim = await stack.startSimulator({ seed: `two-resumers-${trial}`, ...TICKING });
    sim.control.setMarketOpen(false);
    const first = trader([...TWO, ...RUN]);
    const sessionId = String((await first.waitForLog(tradingStarted)).sessionId);
    await first.kill("SIGKILL");

    const taps = [await tap(), await tap()];
    const resumers = taps.map((brokerTap) => trader(["--resume", ...RUN], { APCA_API_BASE_URL: brokerTap.url }));
    // Each either stopped at start (exit 3) or is trading; only then can an order be placed at all.
    await Promise.all(resumers.map((resumer) => Promise.race([resumer.exited, resumer.waitForLog(tradingStarted).catch(() => undefined)])));
    sim.control.setMarketOpen(true);

    const loser = await Promise.race(resumers.map((resumer, index) => resumer.exited.then(() => index)));
    const winner = 1 - loser;
    expect(await resumers[loser]!.exited, resumers[loser]!.output.join("\n")).toEqual({ code: 3, signal: null });
    expect(messages(resumers[loser]!)).toContainEqual(expect.stringMatching(new RegExp(`^another trader has taken over session ${sessionId} `)));
    // Exit 3 is an outcome the trader explains, not a crash: no stack.
    expect(resumers[loser]!.output.join("\n")).not.toMatch(/"stack"|^\s+at /m);
    expect((await resumers[winner]!.waitForLog(tradingStarted)).epoch).toBe(2);
    await eventually("the winner's two entries", () => (sessionOrders(sim, sessionId).filter((order) => order.order_class === "bracket").length >= 2 ? true : undefined));

    expect(taps[loser]!.count("POST", "/v2/orders")).toBe(0);
    expect(taps[winner]!.count("POST", "/v2/orders")).toBeGreaterThanOrEqual(2);
    expect(await resumers[winner]!.kill("SIGTERM")).toEqual({ code: 0, signal: null });
  });
});
