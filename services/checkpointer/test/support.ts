import { CheckpointClient, createLogger, createMetricsRegistry, defaultJobOptions, parseEnv, type SnapshotEnvelope } from "@savepoint/shared";
import { Queue, QueueEvents } from "bullmq";
import type { TestEnvironment } from "@savepoint/shared/testing";
import { startCheckpointer, type RunningCheckpointer } from "../src/checkpointer.js";
import { checkpointerEnvSchema } from "../src/config.js";

export { spawnCheckpointer } from "@savepoint/shared/testing";

/** A checkpointer in this process, configured like the real one from env (plus overrides). */
export async function startTestCheckpointer(
  env: TestEnvironment,
  overrides: Record<string, string> = {},
): Promise<RunningCheckpointer> {
  const config = parseEnv(checkpointerEnvSchema, { ...env.env, HTTP_PORT: "0", ...overrides });
  const logger = createLogger({ service: "checkpointer", level: process.env.TEST_LOG_LEVEL ?? "silent" });
  return startCheckpointer(config, logger, createMetricsRegistry("checkpointer"));
}

export function connectClient(env: TestEnvironment, options: { requestTimeoutMs?: number; confirmTimeoutMs?: number } = {}) {
  return CheckpointClient.connect({ redisUrl: env.redisUrl, queuePrefix: env.queuePrefix, ...options });
}

let counter = 0;
/** A valid snapshot; override any field. */
export function snapshot(overrides: Partial<SnapshotEnvelope> = {}): SnapshotEnvelope {
  counter += 1;
  return {
    v: 1,
    service: "trader",
    sessionId: "session-1",
    epoch: 0,
    seq: counter,
    kind: "periodic",
    status: "active",
    schemaVersion: 1,
    takenAt: new Date().toISOString(),
    state: { positions: [], closedTrades: 0 },
    ...overrides,
  };
}

/** Rows stored for a session, ordered, as `epoch:seq` strings. */
export async function storedPositions(env: TestEnvironment, service: string, sessionId: string): Promise<string[]> {
  const { rows } = await env.query<{ p: string }>(
    "SELECT epoch || ':' || seq AS p FROM checkpoints WHERE service = $1 AND session_id = $2 ORDER BY epoch, seq",
    [service, sessionId],
  );
  return rows.map((row) => row.p);
}

/**
 * The `checkpoints` queue as a raw producer sees it, with the producers' retry options (so "failed at once"
 * is the checkpointer's decision), for deliveries the client would never make.
 */
export async function openSnapshotQueue(env: TestEnvironment): Promise<{ queue: Queue; events: QueueEvents; close(): Promise<void> }> {
  const connection = { url: env.redisUrl };
  const queue = new Queue("checkpoints", { connection, prefix: env.queuePrefix, defaultJobOptions: defaultJobOptions.checkpoints });
  // Each job.waitUntilFinished adds a listener on the queue, and tests await dozens at once.
  queue.setMaxListeners(0);
  const events = new QueueEvents("checkpoints", { connection, prefix: env.queuePrefix });
  await events.waitUntilReady();
  return {
    queue,
    events,
    async close() {
      await events.close();
      await queue.close();
    },
  };
}
