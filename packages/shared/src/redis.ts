import { Redis } from "ioredis";

/**
 * How a connection is used decides how it must behave (BullMQ's rules):
 * - "worker": workers and QueueEvents block on Redis and must retry forever (`maxRetriesPerRequest: null`).
 * - "producer": adds jobs and reads; fails fast while Redis is down instead of queueing commands in memory.
 */
export type RedisRole = "worker" | "producer";

export function createRedisConnection(redisUrl: string, role: RedisRole, connectionName?: string): Redis {
  return new Redis(redisUrl, {
    connectionName,
    maxRetriesPerRequest: role === "worker" ? null : 1,
    enableOfflineQueue: role === "worker",
    retryStrategy: (attempt) => Math.min(attempt * 200, 5_000),
  });
}

/** Resolves once the connection is ready; a producer cannot send anything before then. */
export async function waitForRedis(connection: Redis, timeoutMs = 10_000): Promise<void> {
  if (connection.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis did not become ready within ${timeoutMs} ms (status ${connection.status}); check REDIS_URL`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      connection.off("ready", onReady);
    };
    connection.on("ready", onReady);
  });
}
