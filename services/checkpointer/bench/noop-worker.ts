import { Worker } from "bullmq";
import { commonEnvSchema, ConfigError, createLogger, createRedisConnection, GracefulShutdown, parseEnv } from "@savepoint/shared";
import { z } from "zod";

/**
 * The benchmark's baseline consumer: a BullMQ worker that completes every job at once with a receipt like the
 * checkpointer's, configured like the checkpointer's snapshot worker. Whatever the checkpointer costs beyond
 * this is its own work.
 */
const noopEnvSchema = commonEnvSchema.extend({
  NOOP_QUEUE: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, "must be a queue name such as bench-noop"),
  SNAPSHOT_CONCURRENCY: z.coerce.number().int().min(1),
  JOB_LOCK_DURATION_MS: z.coerce.number().int().min(1),
});

let env: z.infer<typeof noopEnvSchema>;
try {
  env = parseEnv(noopEnvSchema);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`bench no-op worker: ${error.message}`);
  process.exit(1);
}
const logger = createLogger({ service: "bench-noop-worker", level: env.LOG_LEVEL, format: env.LOG_FORMAT });
const connection = createRedisConnection(env.REDIS_URL, "worker", "bench-noop-worker");
const worker = new Worker(env.NOOP_QUEUE, async () => ({ outcome: "stored" }), {
  connection,
  prefix: env.QUEUE_PREFIX,
  concurrency: env.SNAPSHOT_CONCURRENCY,
  lockDuration: env.JOB_LOCK_DURATION_MS,
  stalledInterval: env.JOB_LOCK_DURATION_MS,
});
worker.on("error", (error) => logger.error({ err: error }, "no-op worker error"));
new GracefulShutdown(logger, 10_000)
  .add("worker", () => worker.close())
  .add("redis", async () => {
    connection.disconnect();
  })
  .listen();
await worker.waitUntilReady();
logger.info({ queue: env.NOOP_QUEUE, concurrency: env.SNAPSHOT_CONCURRENCY }, "no-op worker consuming");
