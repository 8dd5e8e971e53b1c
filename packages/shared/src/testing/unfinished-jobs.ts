import { Queue, type ConnectionOptions } from "bullmq";
import type { QueueAddress } from "../jobs.js";

/**
 * The jobs some queues hold that no worker has finished yet (waiting, active, delayed for a retry, or
 * prioritized): once it counts 0, every job sent to them has been handled, a snapshot job only after its commit.
 * Read in Redis, so watching a drain adds nothing to the work timed, as counting stored rows in Postgres does.
 */
export class UnfinishedJobs {
  private readonly queues: Queue[];

  /** `connection` as BullMQ takes it: options (each queue opens and closes its own) or a connection the caller closes. */
  constructor(connection: ConnectionOptions, addresses: QueueAddress[]) {
    this.queues = addresses.map(({ name, prefix }) => new Queue(name, { connection, prefix }));
  }

  async count(): Promise<number> {
    const counts = await Promise.all(this.queues.map((queue) => queue.getJobCounts("wait", "active", "delayed", "prioritized")));
    return counts.flatMap((byState) => Object.values(byState)).reduce((sum, count) => sum + count, 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.queues.map((queue) => queue.close()));
  }
}
