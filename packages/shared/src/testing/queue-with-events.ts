import { Queue, QueueEvents, type DefaultJobOptions } from "bullmq";
import type { TestEnvironment } from "./test-environment.js";

/** A queue as a producer sees it, with the QueueEvents its jobs' `waitUntilFinished` needs. */
export interface QueueWithEvents {
  queue: Queue;
  events: QueueEvents;
  close(): Promise<void>;
}

export async function openQueueWithEvents(
  env: Pick<TestEnvironment, "redisUrl" | "queuePrefix">,
  name: string,
  defaultJobOptions?: DefaultJobOptions,
): Promise<QueueWithEvents> {
  const connection = { url: env.redisUrl, maxRetriesPerRequest: null };
  const queue = new Queue(name, { connection, prefix: env.queuePrefix, ...(defaultJobOptions ? { defaultJobOptions } : {}) });
  const events = new QueueEvents(name, { connection, prefix: env.queuePrefix });
  // Each awaited job listens on both, and tests await dozens at once.
  queue.setMaxListeners(0);
  events.setMaxListeners(0);
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
