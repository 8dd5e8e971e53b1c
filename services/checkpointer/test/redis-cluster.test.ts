import { Queue } from "bullmq";
import {
  catalogQueues,
  CheckpointClient,
  createMetricsRegistry,
  CheckpointTimeoutError,
  CheckpointUnavailableError,
  createRedisConnection,
  defaultJobOptions,
  SNAPSHOT_QUEUE_SHARDS,
  snapshotQueues,
} from "@savepoint/shared";
import { createTestEnvironment, RedisCluster, type TestEnvironment } from "@savepoint/shared/testing";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningCheckpointer } from "../src/checkpointer.js";
import { confirmEventually, keysOf, SnapshotStream, storedKeys } from "./fault-support.js";
import { snapshot, startTestCheckpointer } from "./support.js";

describe("on a 3-master Redis Cluster", () => {
  let env: TestEnvironment;
  let cluster: RedisCluster;
  let checkpointer: RunningCheckpointer;
  let client: CheckpointClient;
  let prefix: string;
  const registry = createMetricsRegistry("checkpointer");

  beforeAll(async () => {
    env = await createTestEnvironment("redis-cluster");
    cluster = await RedisCluster.start(3);
    prefix = `{${env.queuePrefix}}`;
    checkpointer = await startTestCheckpointer(env, { REDIS_CLUSTER_NODES: cluster.nodesEnv, QUEUE_PREFIX: prefix }, registry);
    client = await CheckpointClient.connect({ redis: { clusterNodes: cluster.clusterNodes }, queuePrefix: prefix, confirmTimeoutMs: 3_000 });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await checkpointer?.close();
    await cluster?.stop();
    await env?.dispose();
  });

  it("spreads snapshot queues over the masters by session, and stores, confirms, answers and refuses as on one Redis", async () => {
    const sessions = Array.from({ length: 24 }, (_, index) => `spread-${index}`);
    const receipts = await Promise.all(sessions.map((sessionId) => client.saveAndConfirm(snapshot({ sessionId, seq: 1 }))));
    expect(receipts).toEqual(sessions.map(() => ({ outcome: "stored" })));
    await Promise.all(sessions.map((sessionId) => client.save(snapshot({ sessionId, seq: 2 }))));
    await expect(client.saveAndConfirm(snapshot({ sessionId: "spread-0", seq: 3 }))).resolves.toEqual({ outcome: "stored" });
    expect(await client.latest({ service: "trader", sessionId: "spread-0" })).toMatchObject({ seq: 3 });

    // Every master holds some of the queues' keys: the shards' hash tags land on different slots.
    const keysPerMaster = await Promise.all(
      cluster.nodes.map(async (node) => {
        const redis = new Redis({ port: node.port, host: "127.0.0.1" });
        try {
          return (await redis.keys(`{${env.queuePrefix}-*`)).length;
        } finally {
          redis.disconnect();
        }
      }),
    );
    expect(keysPerMaster.every((count) => count > 0)).toBe(true);
    expect(snapshotQueues(prefix, true).fireAndForget).toHaveLength(SNAPSHOT_QUEUE_SHARDS);

    // Fencing holds per session whatever shard it is on.
    await client.saveAndConfirm(snapshot({ sessionId: "spread-5", epoch: 2, seq: 1 }));
    await expect(client.saveAndConfirm(snapshot({ sessionId: "spread-5", epoch: 1, seq: 9 }))).rejects.toMatchObject({ code: "stale_epoch" });
  });

  it("reports the depth of every queue of the catalog on /metrics, each shard included", async () => {
    const depths = (await registry.getSingleMetric("savepoint_queue_jobs")!.get()).values.filter((value) => value.labels.state === "wait");
    const expected = catalogQueues(prefix, true).map(({ name }) => name);
    expect(expected).toHaveLength(1 + 2 * SNAPSHOT_QUEUE_SHARDS + 3);
    expect(depths.map((value) => value.labels.queue).sort()).toEqual([...expected].sort());
  });

  it("still accepts a snapshot job added by hand to plain checkpoints", async () => {
    const connection = createRedisConnection({ clusterNodes: cluster.clusterNodes }, "producer", "hand-built-producer");
    const queue = new Queue("checkpoints", { connection, prefix, defaultJobOptions: defaultJobOptions.checkpoints });
    try {
      await queue.add("snapshot", snapshot({ sessionId: "by-hand", seq: 1 }));
      await expect(waitForStored(env, "trader/by-hand/0/1")).resolves.toBe(true);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });

  it("loses nothing confirmed when a master is killed mid-stream and restarted, and confirms on every shard again", async () => {
    const sessions = Array.from({ length: 16 }, (_, index) => `restart-${index}`);
    const stream = new SnapshotStream(client, { sessions, everyMs: 20, confirm: true }).start();
    await waitForStored(env, "trader/restart-0/0/5");

    const victim = cluster.nodes[1]!;
    await victim.kill();
    await victim.restart();
    await cluster.waitUntilHealthy();
    await stream.stop().catch(() => undefined);
    const receipts = await stream.confirmations();

    for (const outcome of receipts) {
      if (outcome instanceof Error) expect([CheckpointTimeoutError, CheckpointUnavailableError]).toContain(outcome.constructor);
    }
    const confirmed = keysOf(stream.sent.filter((_, index) => !(receipts[index] instanceof Error)));
    expect(confirmed.length).toBeGreaterThan(0);
    const stored = new Set(await storedKeys(env));
    expect(confirmed.filter((key) => !stored.has(key))).toEqual([]);

    // Once the master is back, every session (so every shard) confirms again.
    const after = await Promise.all(sessions.map((sessionId) => confirmEventually(client, snapshot({ sessionId, seq: 100_000 }), { withinMs: 30_000, retryMs: 200 })));
    expect(after.every((receipt) => receipt.outcome === "stored")).toBe(true);
  });
});

async function waitForStored(env: TestEnvironment, key: string, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await storedKeys(env)).includes(key)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}
