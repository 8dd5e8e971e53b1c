import { Queue, QueueEvents, Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobProcessor, JobRejectedError, type JobHandlers } from "../src/jobs.js";
import { createTestEnvironment, type TestEnvironment } from "../src/testing/index.js";

const answerAll: JobHandlers<"checkpoint-requests"> = {
  latest: async () => null,
  history: async () => [],
  stats: async () => ({ totalCheckpoints: 0, sessions: 0, oldestAt: null, newestAt: null, bytes: 0 }),
  cleanup: async () => ({ deleted: 0 }),
};

describe("createJobProcessor", () => {
  it("refuses to build a processor when a job name of the catalog has no handler", () => {
    const { stats: _missing, ...incomplete } = answerAll;
    expect(() => createJobProcessor("checkpoint-requests", incomplete as JobHandlers<"checkpoint-requests">)).toThrow(
      'queue "checkpoint-requests" needs exactly one handler per job name [cleanup, history, latest, stats]; got [cleanup, history, latest]',
    );
  });

  it("refuses a handler for a job name the catalog does not have", () => {
    expect(() => createJobProcessor("checkpoint-requests", { ...answerAll, purge: async () => null } as never)).toThrow(/got \[cleanup, history, latest, purge, stats\]/);
  });

  describe("on a real queue", () => {
    let env: TestEnvironment;
    let queue: Queue;
    let events: QueueEvents;
    let worker: Worker;

    beforeAll(async () => {
      env = await createTestEnvironment("catalog");
      const connection = { url: env.redisUrl, maxRetriesPerRequest: null };
      queue = new Queue("checkpoint-requests", { connection, prefix: env.queuePrefix });
      events = new QueueEvents("checkpoint-requests", { connection, prefix: env.queuePrefix });
      worker = new Worker("checkpoint-requests", createJobProcessor("checkpoint-requests", answerAll), { connection, prefix: env.queuePrefix });
      await Promise.all([events.waitUntilReady(), worker.waitUntilReady()]);
    });
    afterAll(async () => {
      await worker?.close();
      await events?.close();
      await queue?.close();
      await env?.dispose();
    });

    it("fails an unknown job name at once, without retries, listing the known names", async () => {
      const job = await queue.add("purge", {}, { attempts: 5 });
      await expect(job.waitUntilFinished(events, 10_000)).rejects.toThrow(
        'unknown job name "purge" on queue "checkpoint-requests"; expected one of: cleanup, history, latest, stats',
      );
      expect((await queue.getJob(job.id!))?.attemptsMade).toBe(1);
    });

    it("fails a payload that does not parse at once, naming the field", async () => {
      const job = await queue.add("history", { service: "trader", sessionId: "s", limit: 0 }, { attempts: 5 });
      await expect(job.waitUntilFinished(events, 10_000)).rejects.toThrow("invalid history job: limit:");
      expect((await queue.getJob(job.id!))?.attemptsMade).toBe(1);
    });

    it("hands a valid payload to its handler and returns the result", async () => {
      const job = await queue.add("latest", { service: "trader", sessionId: "s" });
      await expect(job.waitUntilFinished(events, 10_000)).resolves.toBeNull();
    });
  });

  it("marks refusals as unrecoverable so BullMQ never retries them", () => {
    expect(new JobRejectedError("invalid", "x")).toBeInstanceOf(Error);
    expect(new JobRejectedError("invalid", "x").code).toBe("invalid");
  });
});
