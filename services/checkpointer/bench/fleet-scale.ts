import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { CheckpointClient, createRedisConnection, snapshotQueues, type RedisTarget, type SnapshotEnvelope } from "@savepoint/shared";
import { createTestEnvironment, RedisCluster, RedisServer, spawnCheckpointer, UnfinishedJobs, type ServiceProcess, type TestEnvironment } from "@savepoint/shared/testing";
import { CpuMeter } from "./cpu-meter.js";

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
/** `INFO commandstats` as calls and CPU µs by command. */
function commandStats(info: string): Map<string, { calls: number; usec: number }> {
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) stats.set(match[1]!, { calls: Number(match[2]), usec: Number(match[3]) });
  return stats;
}

const p = (samples: number[], q: number) => [...samples].sort((a, b) => a - b)[Math.max(0, Math.ceil(q * samples.length) - 1)] ?? NaN;

/** `clients` clients each confirming `ratePerClient` saves a second for `seconds`, open loop: latency counts from each save's scheduled time. */
export async function measureConfirmedFleet(options: { clients: number; ratePerClient: number; seconds: number; log: (line: string) => void }): Promise<void> {
  const redis = await RedisServer.start({ args: ["--appendonly", "no"] });
  const env = await createTestEnvironment("bench-fleet");
  const checkpointer = await spawnCheckpointer(env, { REDIS_URL: redis.url });
  const clients: CheckpointClient[] = [];
  const probe = createRedisConnection(redis.url, "producer", "bench-fleet-probe");
  try {
    for (let index = 0; index < options.clients; index++) clients.push(await CheckpointClient.connect({ redisUrl: redis.url, queuePrefix: env.queuePrefix, confirmTimeoutMs: 10_000 }));
    const everyMs = 1000 / options.ratePerClient;
    const perClient = Math.round(options.seconds * options.ratePerClient);
    const latencies: number[] = [];
    let failed = 0;
    const failures = new Map<string, number>();
    const meter = new CpuMeter({
      redisInfo: () => probe.info("cpu"),
      postgresPids: async () =>
        (await env.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).rows.map((row) => row.pid),
    });
    const statsBefore = commandStats(await probe.info("commandstats"));
    const stopMeter = await meter.start(checkpointer.child.pid);
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
              (error: Error) => {
                failed++;
                failures.set(error.name, (failures.get(error.name) ?? 0) + 1);
              },
            ),
          );
        }
        await Promise.all(pending);
      }),
    );
    const elapsed = (performance.now() - start) / 1000;
    const cpu = await stopMeter();
    const statsAfter = commandStats(await probe.info("commandstats"));
    const sent = perClient * clients.length;
    options.log(
      `${options.clients} clients × ${options.ratePerClient} confirmed saves/s for ${options.seconds} s (8 KB states): ${latencies.length} of ${sent} confirmed, ${failed} failed, ` +
        `${(latencies.length / elapsed).toFixed(0)}/s; p50 ${p(latencies, 0.5).toFixed(1)} ms, p99 ${p(latencies, 0.99).toFixed(1)} ms, max ${p(latencies, 1).toFixed(1)} ms (target: all confirmed, p99 < 50 ms)` +
        (failed > 0 ? `; failures: ${[...failures].map(([name, count]) => `${count} ${name}`).join(", ")}` : ""),
    );
    // Per save sent, not confirmed: a save that timed out was still processed, and on a saturated machine
    // dividing by the confirmed ones alone makes every figure climb with the timeouts.
    const perSave = (seconds: number | undefined) => (seconds === undefined ? "-" : ((seconds * 1e6) / sent).toFixed(0));
    const total = cpu.bench + (cpu.consumer ?? 0) + (cpu.redis ?? 0) + (cpu.postgres ?? 0);
    options.log(
      `  CPU µs per save sent: bench ${perSave(cpu.bench)}, checkpointer ${perSave(cpu.consumer)}, redis ${perSave(cpu.redis)}, ` +
        `postgres ${perSave(cpu.postgres)}; together ${perSave(total)} (machine ${perSave(cpu.machine)}, ${((cpu.machine / cpu.wallSeconds) * 100).toFixed(0)}% busy)`,
    );
    const commands = [...statsAfter]
      .map(([name, after]) => {
        const before = statsBefore.get(name) ?? { calls: 0, usec: 0 };
        return { name, calls: (after.calls - before.calls) / sent, usec: (after.usec - before.usec) / sent };
      })
      .filter((command) => command.calls > 0.005)
      .sort((a, b) => b.usec - a.usec);
    options.log(`  Redis per save sent: ${commands.map((c) => `${c.name} ${c.calls.toFixed(2)}× ${c.usec.toFixed(0)} µs`).join(", ")}`);
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    probe.disconnect();
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
    // Watched in Redis: counting the rows in Postgres every 50 ms would add a growing scan to the work timed.
    const watch = createRedisConnection(target, "worker", "bench-drain-watch");
    const unfinished = new UnfinishedJobs(watch, snapshotQueues(queuePrefix, tagged === true).fireAndForget);
    let checkpointer: ServiceProcess | undefined;
    try {
      const started = performance.now();
      checkpointer = await spawnCheckpointer(env, { ...overrides, QUEUE_PREFIX: queuePrefix });
      while ((await unfinished.count()) > 0) await delay(50);
      const seconds = (performance.now() - started) / 1000;
      const { rows } = await env.query<{ n: number }>("SELECT count(*)::int AS n FROM checkpoints");
      if (rows[0]!.n !== snapshots) throw new Error(`the queues are empty but ${rows[0]!.n} of ${snapshots} snapshots are stored`);
      return snapshots / seconds;
    } finally {
      await checkpointer?.kill("SIGTERM");
      await unfinished.close();
      watch.disconnect();
    }
  } finally {
    await client.close();
    await env.dispose();
  }
}
