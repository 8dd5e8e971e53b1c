import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { CheckpointClient, type RedisTarget, type SnapshotEnvelope } from "@savepoint/shared";
import { createTestEnvironment, RedisCluster, RedisServer, spawnCheckpointer, type TestEnvironment } from "@savepoint/shared/testing";

/*
 * The fleet half of `npm run bench:scale` (issue 11, targets and item 5): many clients confirming saves at a
 * steady rate each, and the drain rate of a fire-and-forget backlog on one Redis beside a 3-master cluster.
 * Each on a Redis (or cluster) of its own, with the built checkpointer in a process of its own.
 */

const STATE = { blob: "x".repeat(8 * 1024) };
let seq = 0;
const envelope = (sessionId: string): SnapshotEnvelope => ({
  v: 1, service: "bench", sessionId, epoch: 0, seq: ++seq, kind: "periodic", status: "active", schemaVersion: 1,
  takenAt: new Date().toISOString(), state: STATE,
});
const p = (samples: number[], q: number) => [...samples].sort((a, b) => a - b)[Math.max(0, Math.ceil(q * samples.length) - 1)] ?? NaN;

/** `clients` clients each confirming `ratePerClient` saves a second for `seconds`, open loop: latency counts from each save's scheduled time. */
export async function measureConfirmedFleet(options: { clients: number; ratePerClient: number; seconds: number; log: (line: string) => void }): Promise<void> {
  const redis = await RedisServer.start({ args: ["--appendonly", "no"] });
  const env = await createTestEnvironment("bench-fleet");
  const checkpointer = await spawnCheckpointer(env, { REDIS_URL: redis.url });
  const clients: CheckpointClient[] = [];
  try {
    for (let index = 0; index < options.clients; index++) clients.push(await CheckpointClient.connect({ redisUrl: redis.url, queuePrefix: env.queuePrefix, confirmTimeoutMs: 10_000 }));
    const everyMs = 1000 / options.ratePerClient;
    const perClient = Math.round(options.seconds * options.ratePerClient);
    const latencies: number[] = [];
    let failed = 0;
    const start = performance.now() + 100;
    await Promise.all(
      clients.map(async (client, index) => {
        const offset = (index / clients.length) * everyMs;
        const pending: Array<Promise<void>> = [];
        for (let n = 0; n < perClient; n++) {
          const due = start + offset + n * everyMs;
          const wait = due - performance.now();
          if (wait > 0) await delay(wait);
          pending.push(
            client.saveAndConfirm(envelope(`fleet-${index}`)).then(
              () => void latencies.push(performance.now() - due),
              () => void failed++,
            ),
          );
        }
        await Promise.all(pending);
      }),
    );
    const elapsed = (performance.now() - start) / 1000;
    const sent = perClient * clients.length;
    options.log(
      `${options.clients} clients × ${options.ratePerClient} confirmed saves/s for ${options.seconds} s (8 KB states): ${latencies.length} of ${sent} confirmed, ${failed} failed, ` +
        `${(latencies.length / elapsed).toFixed(0)}/s; p50 ${p(latencies, 0.5).toFixed(1)} ms, p99 ${p(latencies, 0.99).toFixed(1)} ms, max ${p(latencies, 1).toFixed(1)} ms (target: all confirmed, p99 < 50 ms)`,
    );
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await checkpointer.kill("SIGTERM");
    await redis.stop();
    await env.dispose();
  }
}

/** How fast one checkpointer drains `snapshots` fire-and-forget saves queued before it starts, on one Redis and on a 3-master cluster. */
export async function measureDrainRates(options: { snapshots: number; log: (line: string) => void }): Promise<void> {
  options.log(`Drain rate of ${options.snapshots} fire-and-forget snapshots (8 KB, 1000 sessions) queued before one checkpointer starts:`);
  const single = await RedisServer.start({ args: ["--appendonly", "no"] });
  try {
    const rate = await drain({ url: single.url }, { REDIS_URL: single.url }, undefined, options.snapshots);
    options.log(`  one Redis:              ${rate.toFixed(0)} snapshots/s`);
  } finally {
    await single.stop();
  }
  const cluster = await RedisCluster.start(3);
  try {
    const rate = await drain({ clusterNodes: cluster.clusterNodes }, { REDIS_CLUSTER_NODES: cluster.nodesEnv }, true, options.snapshots);
    options.log(`  3-master Redis Cluster: ${rate.toFixed(0)} snapshots/s (8 shards per kind of save)`);
  } finally {
    await cluster.stop();
  }
}

async function drain(target: RedisTarget, overrides: Record<string, string>, tagged: boolean | undefined, snapshots: number): Promise<number> {
  const env: TestEnvironment = await createTestEnvironment("bench-drain");
  const queuePrefix = tagged ? `{${env.queuePrefix}}` : env.queuePrefix;
  const client = await CheckpointClient.connect({ redis: target, queuePrefix });
  try {
    for (let sent = 0; sent < snapshots; sent += 500) {
      await Promise.all(Array.from({ length: Math.min(500, snapshots - sent) }, (_, index) => client.save(envelope(`drain-${(sent + index) % 1000}`))));
    }
    const started = performance.now();
    const checkpointer = await spawnCheckpointer(env, { ...overrides, QUEUE_PREFIX: queuePrefix });
    try {
      for (;;) {
        const { rows } = await env.query<{ n: number }>("SELECT count(*)::int AS n FROM checkpoints");
        if (rows[0]!.n >= snapshots) break;
        await delay(50);
      }
      return snapshots / ((performance.now() - started) / 1000);
    } finally {
      await checkpointer.kill("SIGTERM");
    }
  } finally {
    await client.close();
    await env.dispose();
  }
}
