import { Queue, type Job } from "bullmq";
import { createTestEnvironment, type TestEnvironment } from "@savepoint/shared/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { SnapshotJobWorker } from "../src/queues/snapshot-worker.js";

/** Counts the worker's fetches (each one round trip to Redis) and records how many it had made when each job started. */
class CountingWorker extends SnapshotJobWorker {
  fetches = 0;
  protected override moveToActive(token: string, name?: string): Promise<Job<string>> {
    this.fetches += 1;
    return super.moveToActive(token, name);
  }
}

// BullMQ's main loop fetches jobs one round trip after another and starts them only once the queue is empty or
// the worker full; confirmed saves must not wait for that (snapshot-worker.ts, startJobsOnArrival).
describe("snapshot worker starting jobs on arrival", () => {
  let env: TestEnvironment;
  let queue: Queue;
  const workers: SnapshotJobWorker[] = [];

  beforeAll(async () => {
    env = await createTestEnvironment("jobs-on-arrival");
    queue = new Queue("checkpoints-confirmed", { connection: { url: env.redisUrl }, prefix: env.queuePrefix });
  });
  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.close(true)));
    await queue?.close();
    await env?.dispose();
  });

  /** Queues `count` jobs, then starts a worker on them; resolves with the fetches made before each job started. */
  async function fetchesBeforeEachStart(count: number, onArrival: boolean): Promise<number[]> {
    await queue.addBulk(Array.from({ length: count }, (_, index) => ({ name: "snapshot", data: `job ${index}` })));
    const seen: number[] = [];
    const worker: CountingWorker = new CountingWorker(
      "checkpoints-confirmed",
      async () => {
        seen.push(worker.fetches);
      },
      { connection: { url: env.redisUrl, maxRetriesPerRequest: null }, prefix: env.queuePrefix, concurrency: 16, autorun: false },
    );
    workers.push(worker);
    if (onArrival) worker.startJobsOnArrival();
    void worker.run();
    await vi.waitFor(() => expect(seen).toHaveLength(count), { timeout: 10_000, interval: 10 });
    await worker.close();
    return seen;
  }

  it("starts the first of six queued jobs after its own fetch, where BullMQ's loop first fetches all six", async () => {
    // Without: six fetches that each return a job and a seventh that finds the queue empty, then the six start.
    expect((await fetchesBeforeEachStart(6, false))[0]).toBe(7);
    expect((await fetchesBeforeEachStart(6, true))[0]).toBe(1);
  });
});
