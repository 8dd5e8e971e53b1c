import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { createTestEnvironment, type TestEnvironment } from "@savepoint/shared/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { SnapshotJobWorker } from "../src/queues/snapshot-worker.js";

// The race behind the Postgres-outage test's "active 9 vs 8": BullMQ's worker.pause() leaves a fetch that is
// blocked waiting for a job in flight, and when the next job arrives that fetch makes it active after the pause.
describe("snapshot intake paused", () => {
  let env: TestEnvironment;
  let redis: Redis;
  let queue: Queue;
  let worker: SnapshotJobWorker;
  const processed: string[] = [];

  beforeAll(async () => {
    env = await createTestEnvironment("intake-pause");
    redis = new Redis(env.redisUrl);
    queue = new Queue("checkpoints", { connection: { url: env.redisUrl }, prefix: env.queuePrefix });
    worker = new SnapshotJobWorker(
      "checkpoints",
      async (job) => {
        processed.push(job.id ?? "");
      },
      { connection: { url: env.redisUrl, maxRetriesPerRequest: null }, prefix: env.queuePrefix, concurrency: 4 },
    );
    await worker.waitUntilReady();
  });
  afterAll(async () => {
    await worker?.close(true);
    await queue?.close();
    redis?.disconnect();
    await env?.dispose();
  });

  /** Whether one of this worker's connections is blocked in BullMQ's wait for a job (BZPOPMIN on the queue's marker). */
  const fetchBlocked = async (): Promise<boolean> =>
    String(await redis.client("LIST"))
      .split("\n")
      .some((client) => client.includes(` name=${env.queuePrefix}:`) && client.includes(" flags=b ") && client.includes(" cmd=bzpopmin"));

  it("takes no job that arrives while paused, not even by a fetch that was already waiting, and takes it once resumed", async () => {
    // Nothing queued: the worker's fetch blocks until a job arrives.
    await vi.waitFor(async () => expect(await fetchBlocked()).toBe(true), { timeout: 10_000, interval: 20 });

    await worker.pauseIntake();
    const job = await queue.add("snapshot", "during the pause");
    // The job wakes the blocked fetch; once it no longer blocks (or the job has moved on), that fetch has decided.
    await vi.waitFor(async () => expect(!(await fetchBlocked()) || (await job.getState()) !== "waiting").toBe(true), { timeout: 10_000, interval: 20 });
    expect(await job.getState()).toBe("waiting");
    expect(await queue.getJobCounts("active", "wait")).toEqual({ active: 0, wait: 1 });
    expect(processed).toEqual([]);

    worker.resumeIntake();
    await vi.waitFor(async () => expect(await job.getState()).toBe("completed"), { timeout: 10_000, interval: 20 });
    expect(processed).toEqual([job.id]);
  });
});
