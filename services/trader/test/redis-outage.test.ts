import { createTestEnvironment, RedisServer, spawnCheckpointer, stopNewestFirst, type TestEnvironment } from "@savepoint/shared/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSimulator } from "@savepoint/alpaca-simulator";
import { reasoningWorker } from "./reasoning-worker.js";
import { eventually, sessionOrders, spawnTrader, startTestSimulator, storedSnapshot, tradingStarted } from "./support.js";

const ARGS = ["--strategy", "reasoner", "--symbols", "AAPL", "--interval", "0.1", "--checkpoint-interval", "0.5", "--position-size", "2000", "--stop-loss-pct", "5", "--take-profit-pct", "5"];

/** The test environment's database and queue prefix on a Redis of this file's own, which it kills. */
function onRedis(env: TestEnvironment, redis: RedisServer): TestEnvironment {
  return { ...env, redisUrl: redis.url, env: { ...env.env, REDIS_URL: redis.url } };
}

async function readiness(port: number): Promise<{ status: number; checks: Record<string, string> }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: response.status, checks: ((await response.json()) as { checks: Record<string, string> }).checks };
}

describe("the trader rides out a Redis outage", () => {
  const stops: Array<() => Promise<unknown>> = [];
  let env: TestEnvironment;
  let redis: RedisServer;
  let sim: RunningSimulator;

  beforeAll(async () => {
    const base = await createTestEnvironment("trader-redis-outage");
    stops.push(() => base.dispose());
    redis = await RedisServer.start();
    stops.push(() => redis.stop());
    env = onRedis(base, redis);
    const checkpointer = await spawnCheckpointer(env);
    stops.push(() => checkpointer.kill("SIGTERM"));
    sim = await startTestSimulator({ seed: "redis-outage", tickIntervalMs: 100 });
    stops.push(() => sim.close());
  });
  afterAll(() => stopNewestFirst(stops));

  it("with --strategy reasoner: skips the ticks it cannot serve, keeps the position's legs, reports Redis down, and carries on when Redis returns", async () => {
    const reasoner = reasoningWorker(env, (_payload, run) => ({ action: run === 1 ? "OPEN_LONG" : "HOLD", confidence: 0.8, rationale: `scripted decision ${run}` }));
    stops.push(() => reasoner.worker.close());
    const trader = spawnTrader(env, sim, ARGS, { REASONING_TIMEOUT_MS: "1000" });
    stops.push(() => trader.kill("SIGKILL"));
    const port = Number((await trader.waitForLog((line) => typeof line.httpPort === "number")).httpPort);
    const { sessionId } = await trader.waitForLog(tradingStarted);
    await eventually("the position opened and checkpointed", async () => ((await storedSnapshot(env, String(sessionId))).state.positions.length === 1 ? true : undefined));
    expect(await readiness(port)).toEqual({ status: 200, checks: { trader: "ok" } });
    const legs = () => sim.control.state().orders.filter((order) => order.order_class === "bracket" && order.position_intent === "sell_to_close");

    await redis.kill();
    const down = await eventually("/readyz to report Redis down", async () => {
      const ready = await readiness(port);
      return ready.status === 503 ? ready : undefined;
    });
    expect(down.checks).toEqual({ trader: expect.stringMatching(/^Redis unreachable: /) });
    await trader.waitForLog((line) => String(line.msg).startsWith("tick skipped: Redis does not answer"));
    const skippedBefore = trader.logs.length;
    await eventually("several ticks skipped", () => (trader.logs.slice(skippedBefore).filter((line) => String(line.msg).startsWith("tick skipped")).length >= 5 ? true : undefined));
    // Still running, and the broker still holds the position's stop-loss and take-profit.
    expect(trader.child.exitCode).toBeNull();
    expect(legs().map((leg) => leg.status).sort()).toEqual(["held", "new"]);

    await redis.restart();
    await eventually("/readyz ready again", async () => ((await readiness(port)).status === 200 ? true : undefined), 20_000);
    const runsBefore = reasoner.jobs.length;
    await eventually("the reasoner asked again after the outage", () => (reasoner.jobs.length > runsBefore ? true : undefined), 20_000);

    expect(await trader.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(await storedSnapshot(env, String(sessionId))).toMatchObject({ kind: "shutdown", status: "interrupted" });
    expect(sessionOrders(sim, String(sessionId)).filter((order) => order.order_class === "bracket" && order.position_intent === "buy_to_open")).toHaveLength(1);
    expect(trader.output.join("\n")).not.toContain("Unhandled error event");
  });
});
