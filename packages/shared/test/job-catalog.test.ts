import { Queue, QueueEvents, type Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCatalogWorker, TextDataWorker, type JobHandlers } from "../src/catalog-worker.js";
import { JobRejectedError } from "../src/jobs.js";
import { createTestEnvironment, type TestEnvironment } from "../src/testing/index.js";

const answerAll: JobHandlers<"checkpoint-requests"> = {
  latest: async () => null,
  history: async () => [],
  stats: async () => ({ totalCheckpoints: 0, sessions: 0, oldestAt: null, newestAt: null, bytes: 0 }),
  cleanup: async () => ({ deleted: 0 }),
};

describe("createCatalogWorker", () => {
  // Refused before any connection is made: the service never boots with a job nobody handles.
  const unused = { connection: { host: "127.0.0.1", port: 1, lazyConnect: true } };

  it("refuses to build a worker when a job name of the catalog has no handler", () => {
    const { stats: _missing, ...incomplete } = answerAll;
    expect(() => createCatalogWorker("checkpoint-requests", incomplete as JobHandlers<"checkpoint-requests">, unused)).toThrow(
      'queue "checkpoint-requests" needs exactly one handler per job name [cleanup, history, latest, stats]; got [cleanup, history, latest]',
    );
  });

  it("refuses a handler for a job name the catalog does not have, parsed or text", () => {
    expect(() => createCatalogWorker("checkpoint-requests", { ...answerAll, purge: async () => null } as never, unused)).toThrow(/got \[cleanup, history, latest, purge, stats\]/);
    expect(() => createCatalogWorker("checkpoints", { snapshot: async () => ({ outcome: "stored" as const }), restore: async () => null } as never, { ...unused, text: TextDataWorker })).toThrow(
      'queue "checkpoints" needs exactly one handler per job name [snapshot]; got [restore, snapshot]',
    );
  });

  describe("on a real queue", () => {
    let env: TestEnvironment;
    const closing: Array<{ close(): Promise<void> }> = [];
    let queue: Queue;
    let events: QueueEvents;
    const texts: string[] = [];

    const open = async <T extends Worker | QueueEvents>(opened: T): Promise<T> => {
      closing.push(opened);
      await opened.waitUntilReady();
      return opened;
    };

    beforeAll(async () => {
      env = await createTestEnvironment("catalog");
      const connection = { url: env.redisUrl, maxRetriesPerRequest: null };
      queue = new Queue("checkpoint-requests", { connection, prefix: env.queuePrefix });
      closing.push(queue);
      events = await open(new QueueEvents("checkpoint-requests", { connection, prefix: env.queuePrefix }));
      await open(createCatalogWorker("checkpoint-requests", answerAll, { connection, prefix: env.queuePrefix }));
      await open(
        createCatalogWorker(
          "checkpoints",
          {
            snapshot: async (text) => {
              texts.push(text);
              return { outcome: "stored" as const };
            },
          },
          { connection, prefix: env.queuePrefix, queueName: "checkpoints-confirmed", text: TextDataWorker },
        ),
      );
    });
    afterAll(async () => {
      for (const opened of closing.reverse()) await opened.close();
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

    it("hands text handlers the data as the text Redis held, and refuses an unknown job name naming the queue consumed", async () => {
      const connection = { url: env.redisUrl, maxRetriesPerRequest: null };
      const confirmed = new Queue("checkpoints-confirmed", { connection, prefix: env.queuePrefix });
      closing.push(confirmed);
      const confirmedEvents = await open(new QueueEvents("checkpoints-confirmed", { connection, prefix: env.queuePrefix }));
      const data = { v: 1, state: { nested: { n: 1 } } };
      const stored = await confirmed.add("snapshot", data);
      await expect(stored.waitUntilFinished(confirmedEvents, 10_000)).resolves.toEqual({ outcome: "stored" });
      expect(texts).toEqual([JSON.stringify(data)]);

      const unknown = await confirmed.add("restore", data, { attempts: 5 });
      await expect(unknown.waitUntilFinished(confirmedEvents, 10_000)).rejects.toThrow('unknown job name "restore" on queue "checkpoints-confirmed"; expected one of: snapshot');
      expect((await confirmed.getJob(unknown.id!))?.attemptsMade).toBe(1);
    });
  });

  it("marks refusals as unrecoverable so BullMQ never retries them", () => {
    expect(new JobRejectedError("invalid", "x")).toBeInstanceOf(Error);
    expect(new JobRejectedError("invalid", "x").code).toBe("invalid");
  });
});
