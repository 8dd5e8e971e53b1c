import { Job, Queue, QueueEvents } from "bullmq";
import { CheckpointInputError, type CheckpointClient } from "@savepoint/shared";
import { createTestEnvironment, openQueueWithEvents, type TestEnvironment } from "@savepoint/shared/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningCheckpointer } from "../src/checkpointer.js";
import { RETENTION_SCHEDULER_ID } from "../src/queues/maintenance.js";
import { connectClient, snapshot, startTestCheckpointer, storedPositions } from "./support.js";

describe("scheduled maintenance", () => {
  let env: TestEnvironment;
  let checkpointers: RunningCheckpointer[] = [];
  let client: CheckpointClient;
  let queue: Queue;
  let events: QueueEvents;

  /** Resolves when the next scheduled cleanup that starts from now has completed. */
  function nextCleanup(): Promise<{ deleted: number; expired: number }> {
    return new Promise((resolve) => {
      let started = false;
      const onActive = () => (started = true);
      const onCompleted = ({ returnvalue }: { returnvalue: unknown }) => {
        if (!started) return;
        events.off("active", onActive);
        events.off("completed", onCompleted);
        resolve(returnvalue as { deleted: number; expired: number });
      };
      events.on("active", onActive);
      events.on("completed", onCompleted);
    });
  }

  beforeAll(async () => {
    env = await createTestEnvironment("maintenance");
    const connection = { url: env.redisUrl, maxRetriesPerRequest: null };
    queue = new Queue("checkpoint-maintenance", { connection, prefix: env.queuePrefix });
    events = new QueueEvents("checkpoint-maintenance", { connection, prefix: env.queuePrefix });
    await events.waitUntilReady();
    const settings = { CLEANUP_INTERVAL_MINUTES: "0.01", CLEANUP_KEEP_COUNT: "3", FINISHED_SESSION_TTL_HOURS: "24" };
    checkpointers = [await startTestCheckpointer(env, settings), await startTestCheckpointer(env, settings)];
    client = await connectClient(env);
  });
  afterAll(async () => {
    await client?.close();
    await Promise.all(checkpointers.map((c) => c.close()));
    await events?.close();
    await queue?.close();
    await env?.dispose();
  });

  it("has exactly one retention schedule however many checkpointers upsert it", async () => {
    const schedulers = await queue.getJobSchedulers();
    expect(schedulers.map((s) => s.key)).toEqual([RETENTION_SCHEDULER_ID]);
    expect(schedulers[0]).toMatchObject({ every: 600, name: "cleanup" });
  });

  it("keeps the newest CLEANUP_KEEP_COUNT snapshots of every finished session on schedule, and every snapshot of unfinished ones", async () => {
    for (let seq = 1; seq <= 8; seq++) {
      await client.saveAndConfirm(snapshot({ sessionId: "long-run", seq, status: seq === 8 ? "completed" : "active" }));
      await client.saveAndConfirm(snapshot({ sessionId: "still-running", seq, status: seq % 2 ? "active" : "interrupted" }));
    }
    await client.saveAndConfirm(snapshot({ sessionId: "short-run", seq: 1, status: "stopped" }));
    await nextCleanup();
    expect(await storedPositions(env, "trader", "long-run")).toEqual(["0:6", "0:7", "0:8"]);
    expect(await storedPositions(env, "trader", "still-running")).toHaveLength(8);
    expect(await storedPositions(env, "trader", "short-run")).toEqual(["0:1"]);
  });

  it("refuses at once a cleanup request with keepCount 0 and no scope, naming keepCount, and deletes nothing", async () => {
    await client.saveAndConfirm(snapshot({ sessionId: "unscoped-probe", seq: 1, status: "completed" }));
    const requests = await openQueueWithEvents(env, "checkpoint-requests");
    try {
      const job = await requests.queue.add("cleanup", { keepCount: 0 });
      await expect(job.waitUntilFinished(requests.events, 10_000)).rejects.toThrow(/keepCount: 0 without service or sessionId .* allSessions: true/);
      expect(await Job.fromId(requests.queue, job.id!).then((ended) => ended?.attemptsMade)).toBe(1);
    } finally {
      await requests.close();
    }
    expect(await storedPositions(env, "trader", "unscoped-probe")).toEqual(["0:1"]);
    await expect(client.cleanup({ keepCount: 0 })).rejects.toThrow(CheckpointInputError);
    await expect(client.cleanup({ keepCount: 0 })).rejects.toThrow("keepCount: ");
    await expect(client.cleanup({ keepCount: 1, service: "trader", allSessions: true })).rejects.toThrow("allSessions: ");
    expect(await client.cleanup({ keepCount: 0, allSessions: true })).toEqual({ deleted: expect.any(Number) });
    expect(await storedPositions(env, "trader", "unscoped-probe")).toEqual([]);
    expect(await storedPositions(env, "trader", "still-running")).toHaveLength(8);
  });

  it("deletes every snapshot of a session finished longer ago than FINISHED_SESSION_TTL_HOURS, keeping its fencing", async () => {
    await client.saveAndConfirm(snapshot({ sessionId: "done-long-ago", epoch: 4, seq: 1, status: "completed" }));
    await client.saveAndConfirm(snapshot({ sessionId: "done-recently", epoch: 0, seq: 1, status: "completed" }));
    await env.query("UPDATE checkpoint_sessions SET updated_at = now() - interval '25 hours' WHERE session_id = 'done-long-ago'");
    const result = await nextCleanup();
    expect(result.expired).toBeGreaterThanOrEqual(1);
    expect(await storedPositions(env, "trader", "done-long-ago")).toEqual([]);
    expect(await storedPositions(env, "trader", "done-recently")).toEqual(["0:1"]);
    await expect(client.saveAndConfirm(snapshot({ sessionId: "done-long-ago", epoch: 3, seq: 9 }))).rejects.toThrow(/stale epoch/);
  });
});
