import type { SessionStatus } from "@savepoint/shared";
import { CHECKPOINT_TABLE_LAYOUTS, createTestEnvironment, type TestEnvironment } from "@savepoint/shared/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PendingSnapshot, PersistOutcome } from "../src/domain/snapshot-batch.js";
import { CheckpointStore, createPool } from "../src/store/checkpoint-store.js";
import { isRetryableConflict } from "../src/store/pg-errors.js";
import { ROWS_PER_CHUNK } from "../src/store/retention.js";
import { persistOneStatement } from "../src/store/statements.js";
import { snapshot, storedPositions } from "./support.js";

const pending = (sessionId: string, epoch: number, seq: number, status: SessionStatus = "active", service = "trader"): PendingSnapshot => {
  const { state: _state, ...head } = snapshot({ service, sessionId, epoch, seq, status });
  return { head, stateJson: JSON.stringify({ seq, pad: "p".repeat(seq % 7) }) };
};

/** Each transaction a cleanup opened, and how many snapshots its delete statements removed. */
interface ChunkLog {
  transactions: Array<{ deleted: number }>;
}

/** The pool, passed to the store, noting what each connection taken for a transaction deleted. */
function withChunkLog(pool: pg.Pool): { pool: pg.Pool; log: ChunkLog } {
  const log: ChunkLog = { transactions: [] };
  const bound = (target: object, property: string | symbol) => {
    const value = Reflect.get(target, property) as unknown;
    return typeof value === "function" ? value.bind(target) : value;
  };
  const spied = new Proxy(pool, {
    get(target, property) {
      if (property !== "connect") return bound(target, property);
      return async () => {
        const client = await target.connect();
        const transaction = { deleted: 0 };
        log.transactions.push(transaction);
        return new Proxy(client, {
          get(clientTarget, clientProperty) {
            if (clientProperty !== "query") return bound(clientTarget, clientProperty);
            return async (config: pg.QueryConfig | string, values?: unknown[]) => {
              const result = await clientTarget.query(config as pg.QueryConfig, values);
              if (typeof config === "object" && config.text.includes("DELETE FROM checkpoints")) {
                transaction.deleted += (result.rows as Array<{ deleted: number }>).reduce((sum, row) => sum + row.deleted, 0);
              }
              return result;
            };
          },
        });
      };
    },
  });
  return { pool: spied, log };
}

// Retention and the counters it relies on, through the store's own statements on a real Postgres.
describe.each(CHECKPOINT_TABLE_LAYOUTS)("retention and session counters on $layout", ({ checkpointPartitions }) => {
  let env: TestEnvironment;
  let pool: pg.Pool;
  let store: CheckpointStore;
  let log: ChunkLog;

  beforeAll(async () => {
    env = await createTestEnvironment("retention", { checkpointPartitions });
    pool = createPool({ databaseUrl: env.databaseUrl, maxConnections: 6, statementTimeoutMs: 30_000, onConnectionLost: () => undefined });
    const spied = withChunkLog(pool);
    log = spied.log;
    store = new CheckpointStore(spied.pool);
  });
  afterAll(async () => {
    await pool?.end();
    await env?.dispose();
  });

  /** Writes as the snapshot writer does: a serialization failure or deadlock is run again. */
  async function write(snapshots: PendingSnapshot[], on = store): Promise<PersistOutcome[]> {
    for (;;) {
      try {
        return await on.persistBatch(snapshots);
      } catch (error) {
        if (!isRetryableConflict(error)) throw error;
      }
    }
  }

  async function writeMany(sessionId: string, seqs: number[], status: SessionStatus, service = "trader") {
    for (let from = 0; from < seqs.length; from += 250) {
      await write(seqs.slice(from, from + 250).map((seq) => pending(sessionId, 0, seq, status, service)));
    }
  }

  /** Sessions whose counters differ from what their snapshots add up to; none, when the store keeps them. */
  async function countersOff() {
    const { rows } = await env.query(
      `SELECT s.service, s.session_id, s.snapshot_count::int AS count, c.rows::int AS rows, s.snapshot_bytes::int AS bytes, c.bytes::int AS actual_bytes,
              s.oldest_persisted_at AS oldest, c.oldest AS actual_oldest, s.newest_persisted_at AS newest, c.newest AS actual_newest
       FROM checkpoint_sessions s
       LEFT JOIN (SELECT service, session_id, count(*) AS rows, sum(COALESCE(state_bytes, pg_column_size(state))) AS bytes,
                         min(persisted_at) AS oldest, max(persisted_at) AS newest
                  FROM checkpoints GROUP BY service, session_id) c USING (service, session_id)
       WHERE s.snapshot_count <> COALESCE(c.rows, 0) OR s.snapshot_bytes <> COALESCE(c.bytes, 0)
          OR s.oldest_persisted_at IS DISTINCT FROM c.oldest OR s.newest_persisted_at IS DISTINCT FROM c.newest`,
    );
    return rows;
  }

  it("counts exactly what each write stored: batches, single writes, duplicates, stale and late snapshots", async () => {
    expect(await write([pending("count-a", 1, 3), pending("count-a", 1, 1), pending("count-b", 0, 1)])).toEqual([
      { outcome: "stored" },
      { outcome: "stored" },
      { outcome: "stored" },
    ]);
    expect(await write([pending("count-a", 1, 3)])).toEqual([{ outcome: "duplicate" }]);
    expect(await write([pending("count-a", 0, 9), pending("count-a", 1, 2), pending("count-b", 0, 1)])).toEqual([
      { outcome: "stale", highestEpoch: 1 },
      { outcome: "stored" },
      { outcome: "duplicate" },
    ]);
    expect(await write([pending("count-a", 0, 4)])).toEqual([{ outcome: "stale", highestEpoch: 1 }]);
    expect(await countersOff()).toEqual([]);
    const { rows } = await env.query(
      "SELECT sum(octet_length(state::text))::float8 AS bytes FROM checkpoints WHERE session_id IN ('count-a', 'count-b')",
    );
    const stats = await store.stats({ service: "trader" });
    expect(stats).toMatchObject({ totalCheckpoints: 4, sessions: 2, bytes: rows[0]!.bytes });
  });

  it("keeps counters exact under two stores writing overlapping batches of the same sessions at once", async () => {
    const otherPool = createPool({ databaseUrl: env.databaseUrl, maxConnections: 4, statementTimeoutMs: 30_000, onConnectionLost: () => undefined });
    const other = new CheckpointStore(otherPool);
    try {
      const batches = Array.from({ length: 60 }, (_, index) =>
        Array.from({ length: 1 + (index % 5) }, (_, offset) => pending(`busy-${(index + offset) % 4}`, index % 3, (index * 7 + offset) % 40)),
      );
      // Within a batch a snapshot appears once, as dedupeBatch makes it before the store sees it.
      const distinct = batches.map((batch) => [...new Map(batch.map((s) => [`${s.head.sessionId}:${s.head.epoch}:${s.head.seq}`, s])).values()]);
      await Promise.all(distinct.map((batch, index) => write(batch, index % 2 === 0 ? store : other)));
      expect(await countersOff()).toEqual([]);
    } finally {
      await otherPool.end();
    }
  });

  it("rolls back a write that created a session while a write at a higher epoch did, and fences it when run again", async () => {
    const racer = new pg.Client({ connectionString: env.databaseUrl });
    await racer.connect();
    try {
      await racer.query("BEGIN");
      await racer.query(persistOneStatement(pending("raced", 2, 1)));
      const lower = store.persistBatch([pending("raced", 1, 5)]);
      lower.catch(() => undefined);
      await waitForLockWait();
      await racer.query("COMMIT");
      await expect(lower).rejects.toMatchObject({ code: "40001" });
    } finally {
      await racer.end();
    }
    expect(await write([pending("raced", 1, 5)])).toEqual([{ outcome: "stale", highestEpoch: 2 }]);
    expect(await storedPositions(env, "trader", "raced")).toEqual(["2:1"]);
    expect(await countersOff()).toEqual([]);
  });

  async function waitForLockWait() {
    for (;;) {
      const { rows } = await env.query<{ waiting: number }>(
        "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      );
      if (rows[0]!.waiting > 0) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  it("trims finished sessions to keepCount on schedule and leaves unfinished ones whole", async () => {
    const seqs = Array.from({ length: 30 }, (_, index) => index + 1);
    await writeMany("run-active", seqs, "active", "sched");
    await writeMany("run-interrupted", seqs, "interrupted", "sched");
    await writeMany("run-completed", seqs, "completed", "sched");
    await writeMany("run-stopped", seqs, "stopped", "sched");
    const result = await store.runRetention({ keepCount: 10 });
    expect(result.deleted).toBeGreaterThanOrEqual(40);
    for (const sessionId of ["run-active", "run-interrupted"]) expect(await storedPositions(env, "sched", sessionId)).toHaveLength(30);
    for (const sessionId of ["run-completed", "run-stopped"]) {
      expect(await storedPositions(env, "sched", sessionId)).toEqual(seqs.slice(-10).map((seq) => `0:${seq}`));
    }
    expect(await countersOff()).toEqual([]);
  });

  it("deletes a big session's excess in transactions of at most ROWS_PER_CHUNK snapshots", async () => {
    const total = ROWS_PER_CHUNK * 2 + 600;
    await writeMany("huge", Array.from({ length: total }, (_, index) => index + 1), "completed", "chunked");
    log.transactions.length = 0;
    const result = await store.runRetention({ keepCount: 100 });
    expect(result.deleted).toBe(total - 100);
    const deletions = log.transactions.map((transaction) => transaction.deleted).filter((deleted) => deleted > 0);
    expect(deletions.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...deletions)).toBeLessThanOrEqual(ROWS_PER_CHUNK);
    expect(await storedPositions(env, "chunked", "huge")).toHaveLength(100);
    expect(await countersOff()).toEqual([]);
  });

  it("opens no transaction at all when nothing is over the kept count or expired", async () => {
    await store.runRetention({ keepCount: 100, finishedTtlHours: 24 });
    log.transactions.length = 0;
    expect(await store.runRetention({ keepCount: 100, finishedTtlHours: 24 })).toEqual({ deleted: 0, expired: 0 });
    expect(log.transactions).toEqual([]);
  });

  it("expires every snapshot of sessions finished longer ago than the TTL, keeping their fencing", async () => {
    await writeMany("ended-long-ago", [1, 2, 3], "completed", "expiry");
    await write([pending("ended-long-ago", 4, 9, "completed", "expiry")]);
    await writeMany("ended-recently", [1, 2], "completed", "expiry");
    await env.query("UPDATE checkpoint_sessions SET updated_at = now() - interval '25 hours' WHERE session_id = 'ended-long-ago'");
    expect(await store.runRetention({ keepCount: 100, finishedTtlHours: 24 })).toEqual({ deleted: 4, expired: 1 });
    expect(await storedPositions(env, "expiry", "ended-long-ago")).toEqual([]);
    expect(await storedPositions(env, "expiry", "ended-recently")).toEqual(["0:1", "0:2"]);
    expect(await store.stats({ service: "expiry", sessionId: "ended-long-ago" })).toEqual({
      totalCheckpoints: 0,
      sessions: 0,
      oldestAt: null,
      newestAt: null,
      bytes: 0,
    });
    expect(await write([pending("ended-long-ago", 3, 10, "active", "expiry")])).toEqual([{ outcome: "stale", highestEpoch: 4 }]);
    expect(await countersOff()).toEqual([]);
  });

  it("a cleanup without sessionId spares unfinished sessions; with allSessions and keepCount 0 it empties finished ones only", async () => {
    await writeMany("live", [1, 2, 3], "active", "everything");
    await writeMany("paused", [1, 2, 3], "interrupted", "everything");
    await writeMany("over", [1, 2, 3], "completed", "everything");
    expect(await store.cleanup({ keepCount: 0, service: "everything" })).toBe(3);
    await writeMany("over-too", [1, 2], "stopped", "everything");
    expect(await store.cleanup({ keepCount: 0, allSessions: true })).toBeGreaterThanOrEqual(2);
    expect(await storedPositions(env, "everything", "live")).toEqual(["0:1", "0:2", "0:3"]);
    expect(await storedPositions(env, "everything", "paused")).toEqual(["0:1", "0:2", "0:3"]);
    expect(await storedPositions(env, "everything", "over")).toEqual([]);
    expect(await storedPositions(env, "everything", "over-too")).toEqual([]);
    // Scoped to the session, a cleanup does what it says whatever the status: the owner trimming its own.
    expect(await store.cleanup({ keepCount: 1, service: "everything", sessionId: "live" })).toBe(2);
    expect(await storedPositions(env, "everything", "live")).toEqual(["0:3"]);
    expect(await countersOff()).toEqual([]);
  });

  it("with olderThanHours deletes only older snapshots beyond keepCount and keeps the bounds exact", async () => {
    await writeMany("aging", Array.from({ length: 10 }, (_, index) => index + 1), "completed", "aged");
    await env.query(
      `UPDATE checkpoints SET persisted_at = now() - interval '48 hours' WHERE service = 'aged' AND seq IN (1, 2, 3, 4, 5, 6, 9)`,
    );
    await env.query(
      `UPDATE checkpoint_sessions s SET oldest_persisted_at = c.oldest
       FROM (SELECT min(persisted_at) AS oldest FROM checkpoints WHERE service = 'aged') c WHERE s.service = 'aged'`,
    );
    expect(await store.runRetention({ keepCount: 2, olderThanHours: 24 })).toEqual({ deleted: 6, expired: 0 });
    expect(await storedPositions(env, "aged", "aging")).toEqual(["0:7", "0:8", "0:9", "0:10"]);
    expect(await countersOff()).toEqual([]);
  });
});
