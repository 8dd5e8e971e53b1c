import { createRedisConnection, describeRedisTarget, type RedisConnection, type RedisTarget } from "@savepoint/shared";

/**
 * Redis cannot be reached right now (down, restarting, a network cut): whatever needed it (the account
 * lease's check before an order, a question to the reasoner) was not done, and the tick is skipped.
 */
export class RedisUnavailableError extends Error {
  override name = "RedisUnavailableError";
}

/** Redis refused the credentials: retrying cannot help. */
const AUTH_FAILURE = /WRONGPASS|NOAUTH|invalid password|invalid username-password/i;

/**
 * A fail-fast connection for the trader's own Redis traffic (the account lease, readiness), ready on return:
 * to one Redis, or a cluster connection when `target` is a cluster. A Redis that is down or refuses the
 * password at start is one clear error naming REDIS_URL (or REDIS_CLUSTER_NODES), not one dump per reconnection
 * attempt; later outages are reported through `onError`, and the connection reconnects by itself.
 */
export async function connectRedis(target: RedisTarget, name: string, onError: (error: Error) => void, timeoutMs = 5_000): Promise<RedisConnection> {
  const connection = createRedisConnection(target, "producer", name);
  const { where, setting } = describeRedisTarget(target);
  let starting: ((error: Error) => void) | undefined;
  // Listened to from the first moment: an error event without a listener is a stack dump on stderr.
  connection.on("error", (error: Error) => (starting ? starting(error) : onError(error)));
  let lastError: Error | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => settle(new Error(`cannot reach ${where} within ${timeoutMs} ms (${lastError?.message ?? `status ${connection.status}`}); check ${setting} and that Redis is running`)),
        timeoutMs,
      );
      const settle = (error?: Error) => {
        clearTimeout(timer);
        connection.off("ready", ready);
        starting = undefined;
        if (error) reject(error);
        else resolve();
      };
      const ready = () => settle();
      starting = (error: Error) => {
        lastError = error;
        if (!AUTH_FAILURE.test(error.message)) return;
        const fix = setting === "REDIS_URL" ? "check the user and password in REDIS_URL" : "REDIS_CLUSTER_NODES carries no password; point it at a cluster that needs none";
        settle(new Error(`${where} refused the credentials (${error.message.trim()}); ${fix}`));
      };
      connection.on("ready", ready);
    });
  } catch (error) {
    connection.disconnect();
    throw error;
  }
  return connection;
}

/** Resolves when Redis answers a PING on `connection`; otherwise throws naming the problem (for /readyz). */
export async function pingRedis(connection: RedisConnection): Promise<void> {
  try {
    await connection.ping();
  } catch (error) {
    throw new Error(`Redis unreachable: ${(error as Error).message}`, { cause: error });
  }
}
