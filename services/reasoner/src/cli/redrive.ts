#!/usr/bin/env node
import { Queue } from "bullmq";
import { commonEnvSchema, ConfigError, createRedisConnection, parseEnv, RedriveRefusedError, redriveRun, waitForRedis } from "@savepoint/shared";

const USAGE = "usage: npm run redrive -w @savepoint/reasoner -- <session id>   (REDIS_URL and QUEUE_PREFIX select the queue)";

/** Re-drives a dead-lettered reasoning run from its last checkpoint (see the README, "Dead letters"). */
async function main(argv: string[]): Promise<void> {
  const [sessionId, ...rest] = argv;
  if (!sessionId || rest.length > 0 || sessionId.startsWith("-")) throw new ConfigError(USAGE);
  const env = parseEnv(commonEnvSchema);
  const connection = createRedisConnection(env.REDIS_URL, "producer", "reasoner-redrive");
  try {
    await waitForRedis(connection);
    const queue = new Queue("reasoning", { connection, prefix: env.QUEUE_PREFIX });
    try {
      const { nextAttempt } = await redriveRun(queue, sessionId);
      console.log(`re-driven ${sessionId}: back in the reasoning queue; attempt ${nextAttempt} resumes it from its last checkpoint`);
    } finally {
      await queue.close();
    }
  } finally {
    connection.disconnect();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof ConfigError || error instanceof RedriveRefusedError ? error.message : `re-drive failed: ${(error as Error).message}`);
  process.exit(1);
});
