import { InMemoryCheckpoints, recordingLogger } from "@savepoint/shared/testing";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SessionCheckpoints, TRADER_SERVICE } from "../src/session/checkpoints.js";
import { BrokerClockPace, closedMarketStepMs, UNMEASURED_STEP_MS } from "../src/session/market-hours.js";
import { TradingState } from "../src/session/state.js";
import { TradingSession } from "../src/session/trading-session.js";
import type { Signal, Strategy } from "../src/strategy/strategy.js";
import { ScriptedBroker, SUBMITTED_AT } from "./scripted-broker.js";

/**
 * The sleep through a closed market on a scripted broker whose clock runs with the test's fake time: how long
 * each step is, that nothing but the clock is read while asleep, that it wakes at the open, and that stopping
 * ends it at once. market-hours.test.ts runs the trader through an NYSE close and night at the simulator.
 */

const HOUR = 3_600_000;
const at = (ms: number) => new Date(SUBMITTED_AT.getTime() + ms);
/** A pace that has seen the broker's clock read `brokerMs` (from SUBMITTED_AT) at each local `localMs`. */
function paceAfter(readings: Array<[brokerMs: number, localMs: number]>): BrokerClockPace {
  const pace = new BrokerClockPace();
  for (const [brokerMs, localMs] of readings) pace.observe(at(brokerMs), localMs);
  return pace;
}

describe("closed-market steps", () => {
  it("looks again after a second while the broker's pace is not measured yet", () => {
    const pace = new BrokerClockPace();
    const clock = { timestamp: at(0), nextOpen: at(17 * HOUR) };
    expect(closedMarketStepMs(clock, pace)).toBe(UNMEASURED_STEP_MS);
    pace.observe(at(0), 0);
    expect(closedMarketStepMs(clock, pace)).toBe(UNMEASURED_STEP_MS);
    expect(closedMarketStepMs({ timestamp: at(0), nextOpen: at(400) }, pace)).toBe(400);
  });

  it("steps no longer than the span the pace was measured over, and ends the last step at the open", () => {
    const pace = paceAfter([[0, 0], [60_000, 60_000], [2 * HOUR, 2 * HOUR]]);
    expect(closedMarketStepMs({ timestamp: at(2 * HOUR), nextOpen: at(17 * HOUR) }, pace)).toBe(2 * HOUR - 60_000);
    pace.observe(at(6 * HOUR), 6 * HOUR);
    expect(closedMarketStepMs({ timestamp: at(6 * HOUR), nextOpen: at(11 * HOUR) }, pace)).toBe(5 * HOUR);
  });

  it("converts broker time to local time at the broker's pace (the simulator's minute a second)", () => {
    const pace = paceAfter([[0, 0], [60_000, 1_000], [20 * HOUR, 20 * 60_000]]);
    // 17 hours of broker time are 17 minutes here.
    expect(closedMarketStepMs({ timestamp: at(20 * HOUR), nextOpen: at(37 * HOUR) }, pace)).toBe(17 * 60_000);
  });

  it("measures from the first change of the broker's time, so a clock that stood still and then runs is not taken as slow", () => {
    const pace = paceAfter([[0, 0], [0, 10_000]]);
    expect(pace.measured()).toBeUndefined();
    pace.observe(at(60_000), 11_000);
    pace.observe(at(120_000), 12_000);
    expect(pace.measured()).toEqual({ rate: 60, spanMs: 1_000 });
  });

  it("takes the latest step's pace when the clock sped up, so the open is met early rather than late", () => {
    const pace = paceAfter([[0, 0], [60_000, 1_000], [120_000, 3_000], [240_000, 4_000]]);
    expect(pace.measured()).toEqual({ rate: 120, spanMs: 3_000 });
  });

  it("measures between changes, so readings within one of the simulator's minutes do not look like a stopped clock", () => {
    const pace = paceAfter([[0, 0], [60_000, 1_000], [60_000, 1_500], [120_000, 2_000], [120_000, 2_900]]);
    expect(pace.measured()).toEqual({ rate: 60, spanMs: 1_000 });
  });
});

class Entering implements Strategy {
  readonly kind = "rule";
  decisions = 0;

  async decide(): Promise<Signal> {
    this.decisions += 1;
    return { action: "OPEN_LONG", reason: "scripted" };
  }

  async close(): Promise<void> {}
}

describe("a session while the market is closed", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A session whose broker's clock runs at real (fake) time from SUBMITTED_AT, closed until `openAfterMs`. */
  function setUp(openAfterMs: number) {
    const started = Date.now();
    const broker = new ScriptedBroker().addBar("AAPL", { t: SUBMITTED_AT, o: 100, h: 100, l: 100, c: 100, v: 100 });
    broker.clockSource = () => {
      const now = at(Date.now() - started);
      return { timestamp: now, isOpen: now.getTime() >= at(openAfterMs).getTime(), nextOpen: at(openAfterMs) };
    };
    const strategy = new Entering();
    const store = new InMemoryCheckpoints();
    const { logger, lines } = recordingLogger<{ msg: string; event?: string }>();
    const state = new TradingState({
      sessionStartedAt: SUBMITTED_AT.toISOString(),
      brokerSessionStartedAt: SUBMITTED_AT.toISOString(),
      symbols: ["AAPL"],
      strategy: { kind: "rule", stopLossPct: 2, takeProfitPct: 4, positionSize: 1_000, lookbackBars: 1, entryThresholdPct: 0 },
    });
    const checkpoints = new SessionCheckpoints(store, { sessionId: "trader-1", ownerId: "account-1", epoch: 0 }, logger, (error) => session.takeOver(error));
    const session: TradingSession = new TradingSession({ broker, strategy, checkpoints, ownership: { confirm: async () => {} }, logger }, state, {
      sessionId: "trader-1",
      intervalMs: 60_000,
      checkpointIntervalMs: HOUR,
      durationMs: null,
    });
    // Handed-off snapshots reach the store on a later (real) turn of the event loop: count them once there.
    const periodic = async () => {
      await checkpoints.accepted();
      const rows = await store.history({ service: TRADER_SERVICE, sessionId: "trader-1", limit: 500 });
      return rows.filter((row) => row.kind === "periodic").length;
    };
    return { broker, strategy, lines, session, periodic, started };
  }

  it("reads only the clock until the next open, says once until when, keeps its periodic checkpoints, and trades at the open", async () => {
    const { broker, strategy, lines, session, periodic, started } = setUp(17.5 * HOUR);
    const running = session.run();
    await vi.advanceTimersByTimeAsync(0);
    expect(broker.calls).toEqual(["clock", "account", "positions", "latestBars"]);
    expect(lines.filter((line) => line.event === "market_closed").map((line) => line.msg)).toEqual([
      `market closed: sleeping until the next open at ${at(17.5 * HOUR).toISOString()} (broker time, 17h 30m from now)`,
    ]);

    await vi.advanceTimersByTimeAsync(17.5 * HOUR - 1);
    const asleep = broker.calls.slice(4);
    expect(new Set(asleep)).toEqual(new Set(["clock"]));
    // Steps double from a second: under twenty looks at the clock in 17.5 hours, not a tick a minute.
    expect(asleep.length).toBeLessThan(25);
    expect(strategy.decisions).toBe(0);
    expect(await periodic()).toBe(17);

    await vi.advanceTimersByTimeAsync(1);
    expect(Date.now() - started).toBe(17.5 * HOUR);
    expect(broker.calls.slice(4 + asleep.length)).toEqual(["clock", "clock", "account", "positions", "latestBars", "submitBracket"]);
    expect(strategy.decisions).toBe(1);
    expect(lines.filter((line) => line.event === "market_closed")).toHaveLength(1);
    expect(lines.map((line) => line.msg)).toContain("market open: trading again");

    session.stop("test over");
    expect(await running).toEqual({ reason: "stopped", cause: "test over" });
  });

  it("ends the sleep at once when stopped", async () => {
    const { session, broker } = setUp(17.5 * HOUR);
    const running = session.run();
    await vi.advanceTimersByTimeAsync(4 * HOUR);
    const calls = broker.calls.length;
    session.stop("SIGTERM");
    // No timer has to fire for the session to end.
    expect(await running).toEqual({ reason: "stopped", cause: "SIGTERM" });
    expect(broker.calls).toHaveLength(calls);
  });
});
