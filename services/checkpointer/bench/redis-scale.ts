import { performance } from "node:perf_hooks";
import { CheckpointClient, createRedisConnection, type SnapshotEnvelope } from "@savepoint/shared";
import { createTestEnvironment, RedisServer, spawnCheckpointer } from "@savepoint/shared/testing";

/*
 * The Redis half of `npm run bench:scale` (issue 11, item 5; issue 12, item 8), on a redis-server of its own so
 * other work on the machine's Redis does not count: Redis CPU and bytes sent per confirmed save with 1-200
 * connected clients (one saving, the rest idle), and confirmed-save latency while a fire-and-forget backlog drains.
 * The checkpointer is the built one in a process of its own, as deployed: in this process its backlog work
 * would share one event loop with the producer being timed.
 */

const STATE = { blob: "x".repeat(8 * 1024) };
let seq = 0;
const envelope = (sessionId: string): SnapshotEnvelope => ({
  v: 1, service: "bench", sessionId, epoch: 0, seq: ++seq, kind: "periodic", status: "active", schemaVersion: 1,
  takenAt: new Date().toISOString(), state: STATE,
});
const p = (samples: number[], q: number) => [...samples].sort((a, b) => a - b)[Math.max(0, Math.ceil(q * samples.length) - 1)]!;

export async function measureRedisScale(options: { clientCounts: number[]; saves: number; backlog: number; log: (line: string) => void }): Promise<void> {
  const { log } = options;
  const redis = await RedisServer.start({ args: ["--appendonly", "no"] });
  const env = await createTestEnvironment("bench-redis-scale");
  let checkpointer = await spawnCheckpointer(env, { REDIS_URL: redis.url });
  const info = createRedisConnection(redis.url, "producer", "bench-info");
  const stats = async () => {
    const text = (await info.info("cpu")) + (await info.info("stats"));
    const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(text)?.[1] ?? 0);
    return { cpuMs: (field("used_cpu_sys") + field("used_cpu_user")) * 1000, bytes: field("total_net_output_bytes") };
  };
  try {
    log(`Redis per confirmed save (8 KB states, ${options.saves} saves by one client, the others idle):`);
    const clients: CheckpointClient[] = [];
    for (const count of options.clientCounts) {
      while (clients.length < count) clients.push(await CheckpointClient.connect({ redisUrl: redis.url, queuePrefix: env.queuePrefix }));
      const before = await stats();
      const latencies: number[] = [];
      for (let index = 0; index < options.saves; index++) {
        const started = performance.now();
        await clients[0]!.saveAndConfirm(envelope(`scale-${count}`));
        latencies.push(performance.now() - started);
      }
      const after = await stats();
      log(
        `  ${String(count).padStart(3)} clients: Redis CPU ${((after.cpuMs - before.cpuMs) / options.saves).toFixed(3)} ms/save, ` +
          `${((after.bytes - before.bytes) / options.saves / 1024).toFixed(1)} KB sent/save, p50 ${p(latencies, 0.5).toFixed(1)} ms, p99 ${p(latencies, 0.99).toFixed(1)} ms`,
      );
    }
    log(`Confirmed saves while a backlog of ${options.backlog} fire-and-forget snapshots drains:`);
    const producer = clients[0]!;
    // Queued with no checkpointer running, so that all of it is waiting when the timed confirmations start:
    // a running one drains a backlog faster than one producer can queue it.
    await checkpointer.kill("SIGTERM");
    for (let sent = 0; sent < options.backlog; sent += 500) {
      await Promise.all(Array.from({ length: Math.min(500, options.backlog - sent) }, (_, index) => producer.save(envelope(`backlog-${index % 1000}`))));
    }
    checkpointer = await spawnCheckpointer(env, { REDIS_URL: redis.url });
    const latencies: number[] = [];
    for (let index = 0; index < options.saves; index++) {
      const started = performance.now();
      await producer.saveAndConfirm(envelope(`confirmed-${index % 10}`));
      latencies.push(performance.now() - started);
    }
    const { rows } = await env.query<{ n: number }>("SELECT count(*)::int AS n FROM checkpoints WHERE session_id LIKE 'backlog-%'");
    log(`  confirmed p50 ${p(latencies, 0.5).toFixed(1)} ms, p99 ${p(latencies, 0.99).toFixed(1)} ms; ${options.backlog - rows[0]!.n} of the backlog still waiting when the last confirmation came`);
    await Promise.all(clients.map((client) => client.close()));
  } finally {
    info.disconnect();
    await checkpointer.kill("SIGTERM");
    await redis.stop();
    await env.dispose();
  }
}
