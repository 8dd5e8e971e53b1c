import { createRedisConnection, type RedisConnection } from "@savepoint/shared";
import { createTestEnvironment, RedisCluster, spawnCheckpointer, stopNewestFirst, type TestEnvironment } from "@savepoint/shared/testing";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunningSimulator } from "@savepoint/alpaca-simulator";
import { reasoningWorker } from "./reasoning-worker.js";
import { brokerHoldings, eventually, sessionOrders, spawnTrader, startTestSimulator, stateHoldings, storedSnapshot, tradingStarted } from "./support.js";

const RUN = ["--interval", "0.1", "--checkpoint-interval", "0.3"];
const TWO = ["--symbols", "AAPL,MSFT", "--entry-threshold-pct", "0", "--lookback", "3", "--position-size", "3000", "--stop-loss-pct", "5", "--take-profit-pct", "5"];
const REASONER = ["--strategy", "reasoner", "--symbols", "AAPL", "--interval", "0.1", "--checkpoint-interval", "0.5", "--position-size", "2000", "--stop-loss-pct", "5", "--take-profit-pct", "5"];

async function readiness(port: number): Promise<{ status: number; checks: Record<string, string> }> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: response.status, checks: ((await response.json()) as { checks: Record<string, string> }).checks };
}

/** `key`'s slot, and the masters that hold the key (asked of each directly: only its slot's owner lists it). */
async function whereIs(cluster: RedisCluster, key: string): Promise<{ slot: number; masters: number[] }> {
  const masters: number[] = [];
  let slot = -1;
  for (const node of cluster.nodes) {
    const redis = new Redis({ port: node.port, host: "127.0.0.1" });
    try {
      slot = Number(await redis.call("CLUSTER", "KEYSLOT", key));
      const keys = (await redis.call("CLUSTER", "GETKEYSINSLOT", slot, 1_000)) as string[];
      if (keys.includes(key)) masters.push(node.port);
    } finally {
      redis.disconnect();
    }
  }
  return { slot, masters };
}

describe("the trader on a 3-master Redis Cluster", () => {
  const fileStops: Array<() => Promise<unknown>> = [];
  const testStops: Array<() => Promise<unknown>> = [];
  let env: TestEnvironment;
  let cluster: RedisCluster;
  let sim: RunningSimulator;

  beforeAll(async () => {
    const base = await createTestEnvironment("trader-redis-cluster");
    fileStops.push(() => base.dispose());
    cluster = await RedisCluster.start(3);
    fileStops.push(() => cluster.stop());
    // The file's queue prefix as a hash tag, and every service (checkpointer and traders) on the cluster.
    const queuePrefix = `{${base.queuePrefix}}`;
    env = { ...base, queuePrefix, env: { ...base.env, QUEUE_PREFIX: queuePrefix, REDIS_CLUSTER_NODES: cluster.nodesEnv } };
    const checkpointer = await spawnCheckpointer(env);
    fileStops.push(() => checkpointer.kill("SIGTERM"));
  }, 60_000);
  afterEach(() => stopNewestFirst(testStops));
  afterAll(() => stopNewestFirst(fileStops));

  const trader = (args: string[], extraEnv: Record<string, string> = {}) => {
    const spawned = spawnTrader(env, sim, args, extraEnv);
    testStops.push(() => spawned.kill("SIGKILL"));
    return spawned;
  };
  const simulator = async (seed: string) => {
    sim = await startTestSimulator({ seed, tickIntervalMs: 50 });
    testStops.push(() => sim.close());
  };

  it("trades and checkpoints, holds its account lease in one slot, refuses a second session on the account, and resumes", async () => {
    await simulator("cluster-rule");
    const first = trader([...TWO, ...RUN]);
    const port = Number((await first.waitForLog((line) => typeof line.httpPort === "number")).httpPort);
    const sessionId = String((await first.waitForLog(tradingStarted)).sessionId);
    await eventually("a checkpoint holding 2 positions", async () => ((await storedSnapshot(env, sessionId)).state.positions.length === 2 ? true : undefined));
    expect(await readiness(port)).toEqual({ status: 200, checks: { trader: "ok" } });

    // The lease and its fencing counter share the queue prefix's hash tag, so one master holds both.
    const accountId = sim.control.state().account.id;
    const leaseKey = `${env.queuePrefix}:trader-account-leases:${accountId}`;
    const lease = await whereIs(cluster, leaseKey);
    expect(lease.masters).toHaveLength(1);
    expect(await whereIs(cluster, `${leaseKey}:fence`)).toEqual(lease);

    const second = trader([...TWO, ...RUN]);
    expect(await second.exited).toEqual({ code: 4, signal: null });
    expect(second.output.filter((line) => line.startsWith("trader: "))).toEqual([
      expect.stringContaining(`trader: account ${accountId} is being traded by session ${sessionId} (epoch 0;`),
    ]);

    expect(await first.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    const final = await storedSnapshot(env, sessionId);
    expect(final).toMatchObject({ epoch: 0, kind: "shutdown", status: "interrupted" });
    expect(stateHoldings(final.state)).toEqual(brokerHoldings(sim));
    expect((await whereIs(cluster, leaseKey)).masters).toEqual([]);

    // A resume restores the session through the cluster, claims a higher epoch and takes the lease again.
    const resumed = trader(["--resume", ...RUN]);
    const started = await resumed.waitForLog(tradingStarted);
    expect(started).toMatchObject({ sessionId, epoch: 1 });
    expect(await whereIs(cluster, leaseKey)).toEqual(lease);
    expect(await resumed.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(await storedSnapshot(env, sessionId)).toMatchObject({ epoch: 1, kind: "shutdown", status: "interrupted" });
    expect(first.output.concat(second.output, resumed.output).join("\n")).not.toMatch(/CROSSSLOT|Unhandled error event/);
  });

  it("with --strategy reasoner: asks the reasoner through the reasoning queue on the cluster and acts on its decision", async () => {
    await simulator("cluster-reasoner");
    const connection: RedisConnection = createRedisConnection({ clusterNodes: cluster.clusterNodes }, "worker", "test-reasoner");
    testStops.push(async () => connection.disconnect());
    const reasoner = reasoningWorker(env, (_payload, run) => ({ action: run === 1 ? "OPEN_LONG" : "HOLD", confidence: 0.8, rationale: `scripted decision ${run}` }), connection);
    testStops.push(() => reasoner.worker.close());

    const spawned = trader(REASONER, { REASONING_TIMEOUT_MS: "5000" });
    const sessionId = String((await spawned.waitForLog(tradingStarted)).sessionId);
    await eventually("the reasoner's OPEN_LONG checkpointed as a position", async () => ((await storedSnapshot(env, sessionId)).state.positions.length === 1 ? true : undefined));
    expect(reasoner.jobs[0]).toMatchObject({ id: `think.${sessionId}.AAPL.1`, payload: { agentId: sessionId, symbol: "AAPL" } });
    expect(sessionOrders(sim, sessionId).map((order) => order.client_order_id)).toContain(`${sessionId}:AAPL:1`);

    expect(await spawned.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(await storedSnapshot(env, sessionId)).toMatchObject({ kind: "shutdown", status: "interrupted" });
    expect(spawned.output.join("\n")).not.toMatch(/CROSSSLOT|Unhandled error event/);
  });
});
