import { setTimeout as delay } from "node:timers/promises";
import {
  CheckpointClient,
  CheckpointInputError,
  CheckpointStaleEpochError,
  snapshotJobId,
  type SnapshotEnvelope,
  type SnapshotReceipt,
} from "@savepoint/shared";
import type { TestEnvironment } from "@savepoint/shared/testing";
import { Job, type QueueEvents } from "bullmq";
import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { snapshot, storedPositions, useRunningCheckpointer } from "./support.js";

// Set explicitly because the within-one-batch test blocks exactly this many flushes to make a batch form.
const FLUSH_SLOTS = 2;

// The checkpointer's guarantees (docs/architecture.md, "Guarantees"), driven through the shared client and, where a test
// needs deliveries the client would never make (a second job id, a re-added job), raw jobs on the queue.
describe("checkpointer guarantees", () => {
  const stack = useRunningCheckpointer("guarantees", { overrides: { BATCH_MAX_CONCURRENCY: String(FLUSH_SLOTS) }, rawQueue: true });

  const addRaw = (envelope: SnapshotEnvelope, jobId?: string) => stack.raw.queue.add("snapshot", envelope, jobId ? { jobId } : {});
  const answerOf = (job: Job) => job.waitUntilFinished(stack.raw.events, 10_000) as Promise<SnapshotReceipt>;

  /** Awaits a job that must fail, then reads back how it ended. */
  async function failureOf(job: Job) {
    await expect(answerOf(job)).rejects.toThrow();
    const ended = await Job.fromId(stack.raw.queue, job.id!);
    return { state: await ended!.getState(), attemptsMade: ended!.attemptsMade, failedReason: ended!.failedReason };
  }

  describe("idempotent", () => {
    it("stores a snapshot added twice as raw jobs with different job ids once; the second answer is duplicate", async () => {
      const twice = snapshot({ sessionId: "idem-raw", seq: 1 });
      expect(await answerOf(await addRaw(twice, "idem-raw-first"))).toEqual({ outcome: "stored" });
      expect(await answerOf(await addRaw(twice, "idem-raw-second"))).toEqual({ outcome: "duplicate" });
      expect(await storedPositions(stack.env, "trader", "idem-raw")).toEqual(["0:1"]);
    });

    it("stores a snapshot delivered twice within one batch once; one copy is answered stored, the other duplicate", async () => {
      // Every flush slot is held up on a session row this test locks, so both copies queue up and are
      // flushed together once the lock is released.
      const blockers = Array.from({ length: FLUSH_SLOTS }, (_, slot) => `idem-blocker-${slot}`);
      for (const sessionId of blockers) await stack.client.saveAndConfirm(snapshot({ sessionId, seq: 1 }));
      const lock = new pg.Client({ connectionString: stack.env.databaseUrl });
      await lock.connect();
      const blocked: Job[] = [];
      let copies: Job[];
      try {
        await lock.query("BEGIN");
        await lock.query("SELECT 1 FROM checkpoint_sessions WHERE session_id = ANY($1) FOR UPDATE", [blockers]);
        for (const [index, sessionId] of blockers.entries()) {
          blocked.push(await addRaw(snapshot({ sessionId, seq: 2 })));
          await waitFor(async () => (await flushesWaitingOnLocks(stack.env)) === index + 1, "a flush to wait on the test's row lock");
        }
        const twice = snapshot({ sessionId: "idem-batch", seq: 1 });
        const bothActive = activeJobs(stack.raw.events, ["idem-batch-a", "idem-batch-b"]);
        copies = await stack.raw.queue.addBulk([
          { name: "snapshot", data: twice, opts: { jobId: "idem-batch-a" } },
          { name: "snapshot", data: twice, opts: { jobId: "idem-batch-b" } },
        ]);
        await bothActive;
        await lock.query("COMMIT");
      } finally {
        await lock.end();
      }
      const answers = await Promise.all(copies.map(answerOf));
      expect(answers.map((answer) => answer.outcome).sort()).toEqual(["duplicate", "stored"]);
      expect(await storedPositions(stack.env, "trader", "idem-batch")).toEqual(["0:1"]);
      expect(await Promise.all(blocked.map(answerOf))).toEqual(blockers.map(() => ({ outcome: "stored" })));
    });
  });

  describe("out-of-order arrival", () => {
    it("makes the greatest seq latest when seqs arrive shuffled, and keeps every one in history", async () => {
      const shuffled = [7, 19, 2, 13, 20, 1, 11, 5, 16, 3, 9, 18, 4, 14, 8, 10, 6, 17, 12, 15];
      const jobs = await stack.raw.queue.addBulk(
        shuffled.map((seq) => ({ name: "snapshot", data: snapshot({ sessionId: "shuffled", seq, state: { seq } }) })),
      );
      await Promise.all(jobs.map(answerOf));

      expect(await stack.client.latest({ service: "trader", sessionId: "shuffled" })).toMatchObject({ seq: 20, state: { seq: 20 } });
      const history = await stack.client.history({ service: "trader", sessionId: "shuffled", limit: 100 });
      expect(history.map((s) => s.seq)).toEqual([...shuffled].sort((a, b) => b - a));
    });

    it("keeps latest (and the session's status) when a late, older seq arrives after a newer one is stored", async () => {
      await stack.client.saveAndConfirm(snapshot({ sessionId: "late", ownerId: "late-owner", epoch: 1, seq: 10, state: { at: 10 } }));
      expect(await stack.client.saveAndConfirm(snapshot({ sessionId: "late", ownerId: "late-owner", epoch: 1, seq: 3, status: "stopped" }))).toEqual({
        outcome: "stored",
      });

      expect(await stack.client.latest({ service: "trader", sessionId: "late" })).toMatchObject({ epoch: 1, seq: 10, status: "active" });
      expect(await stack.client.latest({ service: "trader", ownerId: "late-owner", status: "active" })).toMatchObject({ seq: 10 });
      expect(await storedPositions(stack.env, "trader", "late")).toEqual(["1:3", "1:10"]);
    });
  });

  describe("retried jobs", () => {
    it("adds no row and keeps latest when a producer retries saveAndConfirm of a snapshot already stored", async () => {
      const first = snapshot({ sessionId: "retry-confirm", seq: 1 });
      await stack.client.saveAndConfirm(first);
      await stack.client.saveAndConfirm(snapshot({ sessionId: "retry-confirm", seq: 2 }));

      // Each confirmed save is its own job: the retry is written again and found already stored.
      expect(await stack.client.saveAndConfirm(first)).toEqual({ outcome: "duplicate" });
      expect(await storedPositions(stack.env, "trader", "retry-confirm")).toEqual(["0:1", "0:2"]);
      expect(await stack.client.latest({ service: "trader", sessionId: "retry-confirm" })).toMatchObject({ seq: 2 });
    });

    it("answers duplicate, adds no row and keeps latest when a completed job is re-added under the same id", async () => {
      const first = snapshot({ sessionId: "retry-readd", seq: 1 });
      const jobId = snapshotJobId(first);
      const original = await addRaw(first, jobId);
      expect(await answerOf(original)).toEqual({ outcome: "stored" });
      await stack.client.saveAndConfirm(snapshot({ sessionId: "retry-readd", seq: 2 }));
      await original.remove();

      expect(await answerOf(await addRaw(first, jobId))).toEqual({ outcome: "duplicate" });
      expect(await storedPositions(stack.env, "trader", "retry-readd")).toEqual(["0:1", "0:2"]);
      expect(await stack.client.latest({ service: "trader", sessionId: "retry-readd" })).toMatchObject({ seq: 2 });
    });

    it("answers duplicate and adds no row when BullMQ retries a completed snapshot job", async () => {
      const original = await addRaw(snapshot({ sessionId: "retry-bullmq", seq: 1 }));
      expect(await answerOf(original)).toEqual({ outcome: "stored" });
      await stack.client.saveAndConfirm(snapshot({ sessionId: "retry-bullmq", seq: 2 }));

      await original.retry("completed");
      expect(await answerOf(original)).toEqual({ outcome: "duplicate" });
      expect(await storedPositions(stack.env, "trader", "retry-bullmq")).toEqual(["0:1", "0:2"]);
      expect(await stack.client.latest({ service: "trader", sessionId: "retry-bullmq" })).toMatchObject({ seq: 2 });
    });
  });

  describe("stale epochs", () => {
    beforeAll(async () => {
      await stack.client.saveAndConfirm(snapshot({ sessionId: "fencing", epoch: 1, seq: 1 }));
      await stack.client.saveAndConfirm(snapshot({ sessionId: "fencing", epoch: 1, seq: 2 }));
      await stack.client.saveAndConfirm(snapshot({ sessionId: "fencing", epoch: 2, seq: 0 }));
    });

    it("fails an epoch-1 snapshot at once, naming both epochs, and stores nothing once epoch 2 is stored", async () => {
      const failure = await failureOf(await addRaw(snapshot({ sessionId: "fencing", epoch: 1, seq: 3 })));
      expect(failure.state).toBe("failed");
      expect(failure.attemptsMade).toBe(1);
      expect(failure.failedReason).toMatch(/stale epoch/);
      expect(failure.failedReason).toMatch(/epoch 1 seq 3 is below epoch 2/);

      await expect(stack.client.saveAndConfirm(snapshot({ sessionId: "fencing", epoch: 1, seq: 4 }))).rejects.toThrow(CheckpointStaleEpochError);
      expect(await storedPositions(stack.env, "trader", "fencing")).toEqual(["1:1", "1:2", "2:0"]);
    });

    it("still answers a redelivered, already stored epoch-1 snapshot as duplicate, not stale", async () => {
      const redelivered = await addRaw(snapshot({ sessionId: "fencing", epoch: 1, seq: 2 }), "fencing-redelivered");
      expect(await answerOf(redelivered)).toEqual({ outcome: "duplicate" });
      expect(await storedPositions(stack.env, "trader", "fencing")).toEqual(["1:1", "1:2", "2:0"]);
    });
  });

  describe("confirmed saves", () => {
    it("has the row visible through a separate Postgres connection as soon as saveAndConfirm resolves", async () => {
      const seqs = Array.from({ length: 40 }, (_, index) => index + 1);
      // Concurrent saves, so the confirmations come from batches of several snapshots.
      await Promise.all(
        seqs.map(async (seq) => {
          await stack.client.saveAndConfirm(snapshot({ sessionId: "confirmed", seq }));
          const { rows } = await stack.env.query("SELECT 1 FROM checkpoints WHERE session_id = 'confirmed' AND seq = $1", [seq]);
          expect(rows, `seq ${seq}`).toHaveLength(1);
        }),
      );
    });
  });

  describe("state requests", () => {
    it("finds an owner's most recently written session, filtered by status", async () => {
      await stack.client.saveAndConfirm(snapshot({ sessionId: "owner-a", ownerId: "acct-42", seq: 1, status: "interrupted" }));
      await stack.client.saveAndConfirm(snapshot({ sessionId: "owner-b", ownerId: "acct-42", seq: 1, status: "completed" }));
      await stack.client.saveAndConfirm(snapshot({ sessionId: "owner-c", ownerId: "acct-42", seq: 1, status: "active" }));
      await stack.client.saveAndConfirm(snapshot({ sessionId: "owner-b", ownerId: "acct-42", seq: 2, status: "completed" }));

      const latestFor = (status?: "active" | "interrupted" | "completed" | "stopped" | Array<"active" | "interrupted">) =>
        stack.client.latest({ service: "trader", ownerId: "acct-42", ...(status ? { status } : {}) });
      expect(await latestFor()).toMatchObject({ sessionId: "owner-b", seq: 2 });
      expect(await latestFor("interrupted")).toMatchObject({ sessionId: "owner-a", seq: 1 });
      expect(await latestFor(["active", "interrupted"])).toMatchObject({ sessionId: "owner-c", seq: 1 });
      expect(await latestFor("stopped")).toBeNull();
      expect(await stack.client.latest({ service: "reasoner", ownerId: "acct-42" })).toBeNull();
    });

    it("pages history newest first with before, without gaps or overlaps", async () => {
      // Epoch 0 first: once epoch 1 is stored, epoch 0 snapshots are stale.
      for (const [epoch, seqs] of [[0, [1, 2, 3, 4, 5]], [1, [0, 1, 2, 3, 4, 5, 6, 7]]] as const) {
        await Promise.all(seqs.map((seq) => stack.client.saveAndConfirm(snapshot({ sessionId: "paging", epoch, seq }))));
      }

      const pages: string[][] = [];
      let before: { epoch: number; seq: number } | undefined;
      for (;;) {
        const page = await stack.client.history({ service: "trader", sessionId: "paging", limit: 5, ...(before ? { before } : {}) });
        if (page.length === 0) break;
        pages.push(page.map((s) => `${s.epoch}:${s.seq}`));
        const last = page[page.length - 1]!;
        before = { epoch: last.epoch, seq: last.seq };
      }
      expect(pages).toEqual([
        ["1:7", "1:6", "1:5", "1:4", "1:3"],
        ["1:2", "1:1", "1:0", "0:5", "0:4"],
        ["0:3", "0:2", "0:1"],
      ]);
    });

    it("reports stats: checkpoints, sessions, oldest and newest persistence times and state bytes as written, of the filter", async () => {
      await stack.client.saveAndConfirm(snapshot({ service: "stats-probe", sessionId: "s1", seq: 1, state: { blob: "a".repeat(100) } }));
      await stack.client.saveAndConfirm(snapshot({ service: "stats-probe", sessionId: "s1", seq: 2, state: { blob: "b".repeat(300) } }));
      await stack.client.saveAndConfirm(snapshot({ service: "stats-probe", sessionId: "s2", seq: 1, state: { n: 1 } }));
      const { rows } = await stack.env.query<{ oldest: Date; newest: Date; bytes: string }>(
        `SELECT min(persisted_at) AS oldest, max(persisted_at) AS newest, sum(octet_length(state::text)) AS bytes
         FROM checkpoints WHERE service = 'stats-probe'`,
      );
      const expected = rows[0]!;

      expect(await stack.client.stats({ service: "stats-probe" })).toEqual({
        totalCheckpoints: 3,
        sessions: 2,
        oldestAt: expected.oldest.toISOString(),
        newestAt: expected.newest.toISOString(),
        bytes: Number(expected.bytes),
      });
      expect(await stack.client.stats({ service: "stats-probe", sessionId: "s1" })).toMatchObject({ totalCheckpoints: 2, sessions: 1 });
      expect(await stack.client.stats({ service: "never-used" })).toEqual({
        totalCheckpoints: 0,
        sessions: 0,
        oldestAt: null,
        newestAt: null,
        bytes: 0,
      });
    });

    it("cleanup with olderThanHours deletes only rows past the cutoff beyond keepCount; newer ones survive", async () => {
      const seqs = Array.from({ length: 10 }, (_, index) => index + 1);
      await Promise.all(seqs.map((seq) => stack.client.saveAndConfirm(snapshot({ sessionId: "aging", seq }))));
      // Age seqs 1-6 and 9 by two days; 9 is within keepCount, 7 and 8 are beyond it but recent.
      await stack.env.query(
        "UPDATE checkpoints SET persisted_at = now() - interval '48 hours' WHERE session_id = 'aging' AND seq IN (1, 2, 3, 4, 5, 6, 9)",
      );

      expect(await stack.client.cleanup({ keepCount: 2, olderThanHours: 24, service: "trader", sessionId: "aging" })).toEqual({ deleted: 6 });
      expect(await storedPositions(stack.env, "trader", "aging")).toEqual(["0:7", "0:8", "0:9", "0:10"]);
    });

    it("still refuses a stale epoch after cleanup deleted every snapshot of the session", async () => {
      for (const seq of [1, 2, 3]) await stack.client.saveAndConfirm(snapshot({ sessionId: "fenced-cleanup", epoch: 3, seq }));
      expect(await stack.client.cleanup({ keepCount: 0, service: "trader", sessionId: "fenced-cleanup" })).toEqual({ deleted: 3 });
      expect(await stack.client.latest({ service: "trader", sessionId: "fenced-cleanup" })).toBeNull();

      const failure = await failureOf(await addRaw(snapshot({ sessionId: "fenced-cleanup", epoch: 2, seq: 50 })));
      expect(failure).toMatchObject({ state: "failed", attemptsMade: 1 });
      expect(failure.failedReason).toMatch(/stale epoch: .* epoch 2 seq 50 is below epoch 3/);
      expect(await storedPositions(stack.env, "trader", "fenced-cleanup")).toEqual([]);

      expect(await stack.client.saveAndConfirm(snapshot({ sessionId: "fenced-cleanup", epoch: 3, seq: 4 }))).toEqual({ outcome: "stored" });
    });
  });

  describe("client-side input errors", () => {
    const valid = () => snapshot({ sessionId: "client-input" });

    it.each([
      { problem: "a negative epoch", envelope: { ...valid(), epoch: -1 }, field: "epoch" },
      { problem: "a sessionId with ':'", envelope: { ...valid(), sessionId: "a:b" }, field: "sessionId" },
      { problem: "an unknown kind", envelope: { ...valid(), kind: "hourly" }, field: "kind" },
      { problem: "a missing takenAt", envelope: { ...valid(), takenAt: undefined }, field: "takenAt" },
      { problem: "a state over the client's size limit", envelope: { ...valid(), state: { blob: "x".repeat(1024 * 1024) } }, field: "state" },
      { problem: "a state holding a NUL character", envelope: { ...valid(), state: { note: "a\u0000b" } }, field: "state" },
    ])("refuses $problem in an envelope with CheckpointInputError naming the field, and sends nothing", async ({ envelope, field }) => {
      const refused = stack.client.saveAndConfirm(envelope as SnapshotEnvelope);
      await expect(refused).rejects.toThrow(CheckpointInputError);
      await expect(refused).rejects.toThrow(`${field}: `);
      expect(await stack.raw.queue.getJob(snapshotJobId(envelope as SnapshotEnvelope))).toBeUndefined();
    });

    it.each([
      { problem: "latest with a bad sessionId", call: (c: CheckpointClient) => c.latest({ service: "trader", sessionId: "a/b" }), field: "sessionId" },
      { problem: "latest with a bad service", call: (c: CheckpointClient) => c.latest({ service: "Trader", sessionId: "x" }), field: "service" },
      { problem: "history with limit 0", call: (c: CheckpointClient) => c.history({ service: "trader", sessionId: "x", limit: 0 }), field: "limit" },
      {
        problem: "history with half a before position",
        call: (c: CheckpointClient) => c.history({ service: "trader", sessionId: "x", before: { epoch: 1 } as { epoch: number; seq: number } }),
        field: "before.seq",
      },
      { problem: "stats with a bad service", call: (c: CheckpointClient) => c.stats({ service: "-x" }), field: "service" },
      { problem: "cleanup with a negative keepCount", call: (c: CheckpointClient) => c.cleanup({ keepCount: -1 }), field: "keepCount" },
      {
        problem: "cleanup with a zero olderThanHours",
        call: (c: CheckpointClient) => c.cleanup({ keepCount: 1, olderThanHours: 0 }),
        field: "olderThanHours",
      },
    ])("refuses $problem with CheckpointInputError naming the field", async ({ call, field }) => {
      const refused = call(stack.client);
      await expect(refused).rejects.toThrow(CheckpointInputError);
      await expect(refused).rejects.toThrow(`${field}: `);
    });
  });
});

/** Resolves once each of `jobIds` has been taken by a worker. */
function activeJobs(events: QueueEvents, jobIds: string[]): Promise<void> {
  const waiting = new Set(jobIds);
  return new Promise((resolve) => {
    const onActive = ({ jobId }: { jobId: string }) => {
      waiting.delete(jobId);
      if (waiting.size === 0) {
        events.off("active", onActive);
        resolve();
      }
    };
    events.on("active", onActive);
  });
}

/** Checkpointer statements on the test database that are waiting for a lock. */
async function flushesWaitingOnLocks(env: TestEnvironment): Promise<number> {
  const { rows } = await env.query<{ waiting: number }>(
    `SELECT count(*)::int AS waiting FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = 'savepoint-checkpointer' AND wait_event_type = 'Lock'`,
  );
  return rows[0]!.waiting;
}

/** Polls an external condition (no event announces it) until it holds, for at most 10 s. */
async function waitFor(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after 10 s waiting for ${what}`);
    await delay(20);
  }
}
