import type { Cluster, ClusterNode, Redis } from "ioredis";
import { ioredis } from "./commonjs.js";
import { ConfigError } from "./config.js";
import { redactUrl } from "./redaction.js";
import type { Logger } from "./logger.js";

/**
 * How a connection is used decides how it must behave (BullMQ's rules):
 * - "worker": workers, QueueEvents and blocking reads block on Redis and must retry forever
 *   (`maxRetriesPerRequest: null`).
 * - "producer": adds jobs and reads; fails fast while Redis is down instead of queueing commands in memory.
 */
export type RedisRole = "worker" | "producer";

/** One Redis, or a Redis Cluster reached through any of its nodes. */
export type RedisTarget = { url: string } | { clusterNodes: Array<{ host: string; port: number }> };

/** A connection to either; BullMQ and every helper here take both. */
export type RedisConnection = Redis | Cluster;

/** `{savepoint}`: a prefix whose keys all hash to one cluster slot, as BullMQ requires on a cluster. */
export const isHashTag = (prefix: string): boolean => /^\{[^{}]+\}$/.test(prefix);

/**
 * Where the environment says Redis is: the cluster in REDIS_CLUSTER_NODES when set (REDIS_URL is then unused),
 * else REDIS_URL. On a cluster every queue's keys must share a slot, so QUEUE_PREFIX must be a hash tag.
 */
export function redisTargetOf(env: { REDIS_URL: string; REDIS_CLUSTER_NODES?: Array<{ host: string; port: number }>; QUEUE_PREFIX: string }): RedisTarget {
  if (!env.REDIS_CLUSTER_NODES) return { url: env.REDIS_URL };
  if (!isHashTag(env.QUEUE_PREFIX)) {
    throw new ConfigError(
      `QUEUE_PREFIX ${JSON.stringify(env.QUEUE_PREFIX)} must be a hash tag such as {savepoint} when REDIS_CLUSTER_NODES is set; set QUEUE_PREFIX={${env.QUEUE_PREFIX}}`,
    );
  }
  return { clusterNodes: env.REDIS_CLUSTER_NODES };
}

/**
 * The part of `key` a cluster hashes to pick its slot, by Redis' rule: what lies between the first `{` and the
 * next `}`, if anything does; keys with the same hash tag share a slot, so one script may touch them all.
 */
export function hashTagOf(key: string): string | undefined {
  const open = key.indexOf("{");
  if (open < 0) return undefined;
  const close = key.indexOf("}", open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : undefined;
}

export const isCluster = (target: RedisTarget): target is { clusterNodes: Array<{ host: string; port: number }> } => "clusterNodes" in target;

/** A connection to `target`: to one Redis for a URL, a Cluster connection for cluster nodes. */
export function createRedisConnection(target: RedisTarget, role: RedisRole, connectionName?: string): RedisConnection;
export function createRedisConnection(target: string, role: RedisRole, connectionName?: string): Redis;
export function createRedisConnection(target: RedisTarget | string, role: RedisRole, connectionName?: string): RedisConnection {
  const where = typeof target === "string" ? { url: target } : target;
  const behaviour = {
    connectionName,
    maxRetriesPerRequest: role === "worker" ? null : 1,
    enableOfflineQueue: role === "worker",
  };
  const backoff = (attempt: number) => Math.min(attempt * 200, 5_000);
  if (isCluster(where)) {
    return new ioredis.Cluster(where.clusterNodes as ClusterNode[], {
      enableOfflineQueue: behaviour.enableOfflineQueue,
      clusterRetryStrategy: backoff,
      redisOptions: { connectionName, maxRetriesPerRequest: behaviour.maxRetriesPerRequest },
    });
  }
  return new ioredis.Redis(where.url, { ...behaviour, retryStrategy: backoff });
}

/** Redis could not be reached at start (down, wrong address or password): a person's fix, told in one line. */
export class RedisUnavailableError extends Error {
  override name = "RedisUnavailableError";
}

/** Where `target` is, for people: the redacted URL, or the cluster's nodes; and the setting that says so. */
export function describeRedisTarget(target: RedisTarget): { where: string; setting: "REDIS_URL" | "REDIS_CLUSTER_NODES" } {
  if (isCluster(target)) return { where: `the Redis Cluster at ${target.clusterNodes.map(({ host, port }) => `${host}:${port}`).join(",")}`, setting: "REDIS_CLUSTER_NODES" };
  return { where: `Redis at ${redactUrl(target.url)}`, setting: "REDIS_URL" };
}

/** Resolves once the connection is ready; a producer cannot send anything before then. */
export async function waitForRedis(connection: RedisConnection, timeoutMs = 10_000): Promise<void> {
  if (connection.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new RedisUnavailableError(`Redis did not become ready within ${timeoutMs} ms (status ${connection.status}); check REDIS_URL or REDIS_CLUSTER_NODES`));
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

/**
 * Logs a connection's outage once when it starts and once when it ends, instead of ioredis' "Unhandled error
 * event" dump on every reconnect attempt. The connection reconnects by itself; readiness checks report it.
 */
export function reportRedisOutages(connection: RedisConnection, logger: Logger, connectionName: string): void {
  let down = false;
  connection.on("error", (error: Error) => {
    if (down) return;
    down = true;
    logger.warn({ connection: connectionName, problem: error.message }, "Redis unreachable; reconnecting");
  });
  connection.on("ready", () => {
    if (!down) return;
    down = false;
    logger.info({ connection: connectionName }, "Redis reachable again");
  });
}
