import type { SessionStatus } from "@savepoint/shared";
import type pg from "pg";
import type { PendingSnapshot } from "../domain/snapshot-batch.js";

/*
 * Every statement the checkpointer sends to Postgres, as the query its store runs. They are exported so that
 * tests EXPLAIN exactly these, never a copy.
 *
 * Ordering clauses name the table's columns (`c.epoch`), never a bare name: the select lists cast epoch and
 * seq to float8 under the same names, and a bare ORDER BY binds to those outputs, which no index holds.
 */

/**
 * How a session's row takes in a write (`EXCLUDED`): its position, owner and status advance only when the
 * snapshot is newer than the one stored (monotonic latest); its epoch, the fencing token, only ever rises; its
 * counters add what the write stored.
 */
const ADVANCE_SESSION = `
    owner_id     = CASE WHEN (EXCLUDED.latest_epoch, EXCLUDED.latest_seq) > (s.latest_epoch, s.latest_seq)
                        THEN COALESCE(EXCLUDED.owner_id, s.owner_id) ELSE s.owner_id END,
    status       = CASE WHEN (EXCLUDED.latest_epoch, EXCLUDED.latest_seq) > (s.latest_epoch, s.latest_seq)
                        THEN EXCLUDED.status ELSE s.status END,
    latest_write = CASE WHEN (EXCLUDED.latest_epoch, EXCLUDED.latest_seq) > (s.latest_epoch, s.latest_seq)
                        THEN nextval('checkpoint_write_seq') ELSE s.latest_write END,
    updated_at   = CASE WHEN (EXCLUDED.latest_epoch, EXCLUDED.latest_seq) > (s.latest_epoch, s.latest_seq)
                        THEN now() ELSE s.updated_at END,
    latest_seq   = CASE WHEN (EXCLUDED.latest_epoch, EXCLUDED.latest_seq) > (s.latest_epoch, s.latest_seq)
                        THEN EXCLUDED.latest_seq ELSE s.latest_seq END,
    latest_epoch = GREATEST(EXCLUDED.latest_epoch, s.latest_epoch),
    snapshot_count      = s.snapshot_count + EXCLUDED.snapshot_count,
    snapshot_bytes      = s.snapshot_bytes + EXCLUDED.snapshot_bytes,
    oldest_persisted_at = LEAST(s.oldest_persisted_at, EXCLUDED.oldest_persisted_at),
    newest_persisted_at = GREATEST(s.newest_persisted_at, EXCLUDED.newest_persisted_at)`;

/*
 * One statement, so one round trip and one implicit transaction, per batch:
 * 1. `locked` locks the rows of the batch's sessions that exist, one primary-key lookup each, in key order (so
 *    concurrent batches cannot deadlock), and reads their highest epoch as of now; `fence` is that or the
 *    batch's own highest epoch.
 * 2. `stored` inserts the snapshots whose epoch is not below the fence; a key already present is skipped
 *    (idempotence).
 * 3. `heads` upserts each session's row with the batch's greatest (epoch, seq) (see ADVANCE_SESSION) and adds
 *    to its counters exactly what `stored` inserted. It runs last because one statement may change a row once.
 * 4. The final SELECT labels each input: stored now, already there (duplicate), or from a lower epoch than
 *    the session has seen and not already stored (stale). `persistBatch` re-checks "stale" with a fresh read.
 *    A session that did not exist when the statement began has no row to lock; if a concurrent write created
 *    it at a higher epoch meanwhile, the fence was too low, and checkpoint_session_raced rolls the statement
 *    back with a serialization failure, which the writer runs again (by then there is a row to lock).
 */
const PERSIST_BATCH_SQL = `
WITH input AS (
  SELECT t.ord - 1 AS ord, t.service, t.session_id, t.epoch, t.seq, t.owner_id, t.kind, t.status, t.schema_version,
         t.taken_at, t.state
  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::int[],
              $9::timestamptz[], $10::json[])
         WITH ORDINALITY AS t(service, session_id, epoch, seq, owner_id, kind, status, schema_version, taken_at, state, ord)
),
locked AS (
  SELECT k.service, k.session_id, l.latest_epoch
  FROM (SELECT DISTINCT i.service, i.session_id FROM input i ORDER BY i.service, i.session_id) k
  CROSS JOIN LATERAL (
    SELECT s.latest_epoch FROM checkpoint_sessions s WHERE s.service = k.service AND s.session_id = k.session_id FOR UPDATE
  ) l
),
fence AS (
  SELECT i.service, i.session_id, GREATEST(max(i.epoch), max(l.latest_epoch)) AS epoch
  FROM input i LEFT JOIN locked l ON l.service = i.service AND l.session_id = i.session_id
  GROUP BY i.service, i.session_id
),
stored AS (
  INSERT INTO checkpoints (service, session_id, epoch, seq, owner_id, kind, status, schema_version, taken_at, state, state_bytes)
  SELECT i.service, i.session_id, i.epoch, i.seq, i.owner_id, i.kind, i.status, i.schema_version, i.taken_at, i.state,
         octet_length(i.state::text)
  FROM input i JOIN fence f ON f.service = i.service AND f.session_id = i.session_id
  WHERE i.epoch >= f.epoch
  ON CONFLICT DO NOTHING
  RETURNING service, session_id, epoch, seq, state_bytes, persisted_at
),
added AS (
  SELECT service, session_id, count(*) AS rows, sum(state_bytes) AS bytes, min(persisted_at) AS oldest, max(persisted_at) AS newest
  FROM stored GROUP BY service, session_id
),
heads AS (
  INSERT INTO checkpoint_sessions AS s (service, session_id, owner_id, status, latest_epoch, latest_seq,
                                        snapshot_count, snapshot_bytes, oldest_persisted_at, newest_persisted_at)
  SELECT DISTINCT ON (i.service, i.session_id) i.service, i.session_id, i.owner_id, i.status, i.epoch, i.seq,
         COALESCE(a.rows, 0), COALESCE(a.bytes, 0), a.oldest, a.newest
  FROM input i LEFT JOIN added a ON a.service = i.service AND a.session_id = i.session_id
  ORDER BY i.service, i.session_id, i.epoch DESC, i.seq DESC
  ON CONFLICT (service, session_id) DO UPDATE SET ${ADVANCE_SESSION}
  RETURNING s.service, s.session_id, s.latest_epoch
)
SELECT i.ord,
       CASE WHEN x.seq IS NOT NULL THEN 'stored'
            WHEN i.epoch >= f.epoch THEN 'duplicate'
            WHEN EXISTS (SELECT 1 FROM checkpoints c WHERE c.service = i.service AND c.session_id = i.session_id
                                                      AND c.epoch = i.epoch AND c.seq = i.seq) THEN 'duplicate'
            ELSE 'stale' END AS outcome,
       f.epoch::float8 AS highest_epoch,
       CASE WHEN h.latest_epoch > f.epoch THEN checkpoint_session_raced(i.service, i.session_id) END AS raced
FROM input i
JOIN fence f ON f.service = i.service AND f.session_id = i.session_id
JOIN heads h ON h.service = i.service AND h.session_id = i.session_id
LEFT JOIN stored x ON x.service = i.service AND x.session_id = i.session_id AND x.epoch = i.epoch AND x.seq = i.seq`;

/**
 * PERSIST_BATCH_SQL for a batch of one, with plain parameters. Most batches are one snapshot: every confirmed
 * save, and every save while the checkpointer keeps up. Without the arrays, their ordinality and the joins,
 * Postgres takes about a quarter less time per snapshot, and a confirmed save waits for exactly that.
 * `head` upserts the session's row only from the row `stored` inserted, adding 1 and its size to the counters
 * without aggregating: a duplicate or stale snapshot leaves the row (already locked) unwritten, and a stored one
 * costs its backend less CPU than through count()/sum() (495 vs 520 µs in one run of both forms, alternating, 8 KB states).
 * The session row then exists whenever something was stored, so an empty `head` only ever means nothing was.
 */
const PERSIST_ONE_SQL = `
WITH locked AS (
  SELECT s.latest_epoch FROM checkpoint_sessions s WHERE s.service = $1::text AND s.session_id = $2::text FOR UPDATE
),
fence AS (
  SELECT GREATEST($3::bigint, (SELECT l.latest_epoch FROM locked l)) AS epoch
),
stored AS (
  INSERT INTO checkpoints (service, session_id, epoch, seq, owner_id, kind, status, schema_version, taken_at, state, state_bytes)
  SELECT $1, $2, $3, $4::bigint, $5::text, $6::text, $7::text, $8::int, $9::timestamptz, $10::json, octet_length($10::text)
  FROM fence WHERE $3 >= fence.epoch
  ON CONFLICT DO NOTHING
  RETURNING state_bytes, persisted_at
),
head AS (
  INSERT INTO checkpoint_sessions AS s (service, session_id, owner_id, status, latest_epoch, latest_seq,
                                        snapshot_count, snapshot_bytes, oldest_persisted_at, newest_persisted_at)
  SELECT $1, $2, $5, $7, $3, $4, 1, x.state_bytes, x.persisted_at, x.persisted_at
  FROM stored x
  ON CONFLICT (service, session_id) DO UPDATE SET ${ADVANCE_SESSION}
  RETURNING s.latest_epoch
)
SELECT 0 AS ord,
       CASE WHEN EXISTS (SELECT 1 FROM stored) THEN 'stored'
            WHEN $3 >= f.epoch THEN 'duplicate'
            WHEN EXISTS (SELECT 1 FROM checkpoints c WHERE c.service = $1 AND c.session_id = $2
                                                      AND c.epoch = $3 AND c.seq = $4) THEN 'duplicate'
            ELSE 'stale' END AS outcome,
       f.epoch::float8 AS highest_epoch,
       CASE WHEN h.latest_epoch > f.epoch THEN checkpoint_session_raced($1, $2) END AS raced
FROM fence f LEFT JOIN head h ON true`;

const JSON_TYPE_OID = 114;

/**
 * A json[] parameter in Postgres' binary array format (node-postgres sends a Buffer as binary). Each text
 * reaches the server as is and is only validated there; as a text array literal every quote in it would be
 * escaped on the way out and unescaped again by the server, and one JSON array would be parsed twice more
 * to split it up.
 */
function jsonArrayParameter(texts: string[]): Buffer {
  const HEADER_BYTES = 20;
  let total = HEADER_BYTES;
  const lengths = texts.map((text) => Buffer.byteLength(text, "utf8"));
  for (const length of lengths) total += 4 + length;
  const buffer = Buffer.allocUnsafe(total);
  buffer.writeInt32BE(1, 0); // dimensions
  buffer.writeInt32BE(0, 4); // no nulls
  buffer.writeInt32BE(JSON_TYPE_OID, 8);
  buffer.writeInt32BE(texts.length, 12);
  buffer.writeInt32BE(1, 16); // lower bound
  let offset = HEADER_BYTES;
  texts.forEach((text, index) => {
    buffer.writeInt32BE(lengths[index]!, offset);
    offset += 4 + buffer.write(text, offset + 4, "utf8");
  });
  return buffer;
}

// Both named, so each connection parses and plans them once: the hot path of every write.
export function persistOneStatement({ head: e, stateJson }: PendingSnapshot): pg.QueryConfig {
  return {
    name: "persist-one",
    text: PERSIST_ONE_SQL,
    values: [e.service, e.sessionId, e.epoch, e.seq, e.ownerId ?? null, e.kind, e.status, e.schemaVersion, e.takenAt, stateJson],
  };
}

export function persistBatchStatement(snapshots: PendingSnapshot[]): pg.QueryConfig {
  const columns: unknown[][] = Array.from({ length: 9 }, () => []);
  for (const { head: e } of snapshots) {
    const values = [e.service, e.sessionId, e.epoch, e.seq, e.ownerId ?? null, e.kind, e.status, e.schemaVersion, e.takenAt];
    values.forEach((value, column) => columns[column]!.push(value));
  }
  return {
    name: "persist-batch",
    text: PERSIST_BATCH_SQL,
    values: [...columns, jsonArrayParameter(snapshots.map((snapshot) => snapshot.stateJson))],
  };
}

/** Which of the given snapshots are stored, read with a snapshot of now. */
export function storedAmongStatement(keys: Array<{ ord: number; service: string; sessionId: string; epoch: number; seq: number }>): pg.QueryConfig {
  return {
    text: `SELECT k.ord FROM unnest($1::int[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS k(ord, service, session_id, epoch, seq)
           WHERE EXISTS (SELECT 1 FROM checkpoints c WHERE c.service = k.service AND c.session_id = k.session_id
                                                      AND c.epoch = k.epoch AND c.seq = k.seq)`,
    values: [keys.map((k) => k.ord), keys.map((k) => k.service), keys.map((k) => k.sessionId), keys.map((k) => k.epoch), keys.map((k) => k.seq)],
  };
}

const snapshotColumns = (t: string) =>
  `${t}.service, ${t}.session_id, ${t}.owner_id, ${t}.epoch::float8 AS epoch, ${t}.seq::float8 AS seq, ${t}.kind,
   ${t}.status, ${t}.schema_version, ${t}.taken_at, ${t}.persisted_at, ${t}.state`;

// The reads are named too: after five runs on a connection Postgres may plan them once for any parameters,
// and the plan it keeps must still walk the primary key (the tests EXPLAIN both plans).
export function latestBySessionStatement(service: string, sessionId: string): pg.QueryConfig {
  return {
    name: "latest-by-session",
    text: `SELECT ${snapshotColumns("c")} FROM checkpoints c WHERE c.service = $1 AND c.session_id = $2
           ORDER BY c.epoch DESC, c.seq DESC LIMIT 1`,
    values: [service, sessionId],
  };
}

/** The newest snapshot of the owner's most recently written session (optionally with one of `statuses`). */
export function latestByOwnerStatement(service: string, ownerId: string, statuses?: SessionStatus[]): pg.QueryConfig {
  return {
    name: "latest-by-owner",
    text: `SELECT ${snapshotColumns("c")}
           FROM checkpoint_sessions s
           CROSS JOIN LATERAL (
             SELECT * FROM checkpoints c WHERE c.service = s.service AND c.session_id = s.session_id
             ORDER BY c.epoch DESC, c.seq DESC LIMIT 1
           ) c
           WHERE s.service = $1 AND s.owner_id = $2 AND ($3::text[] IS NULL OR s.status = ANY($3))
           ORDER BY s.latest_write DESC LIMIT 1`,
    values: [service, ownerId, statuses ?? null],
  };
}

/** A page of a session's snapshots, newest first, starting below `before` when given. */
export function historyStatement(service: string, sessionId: string, limit: number, before?: { epoch: number; seq: number }): pg.QueryConfig {
  if (!before) {
    return {
      name: "history-first-page",
      text: `SELECT ${snapshotColumns("c")} FROM checkpoints c WHERE c.service = $1 AND c.session_id = $2
             ORDER BY c.epoch DESC, c.seq DESC LIMIT $3`,
      values: [service, sessionId, limit],
    };
  }
  return {
    name: "history-next-page",
    text: `SELECT ${snapshotColumns("c")} FROM checkpoints c
           WHERE c.service = $1 AND c.session_id = $2 AND (c.epoch, c.seq) < ($3::bigint, $4::bigint)
           ORDER BY c.epoch DESC, c.seq DESC LIMIT $5`,
    values: [service, sessionId, before.epoch, before.seq, limit],
  };
}

/** Totals over the matching sessions' counters: one row per session read, never one per snapshot. */
export function statsStatement(filter: { service?: string; sessionId?: string }): pg.QueryConfig {
  return {
    text: `SELECT coalesce(sum(s.snapshot_count), 0)::float8 AS total,
                  count(*) FILTER (WHERE s.snapshot_count > 0)::float8 AS sessions,
                  min(s.oldest_persisted_at) AS oldest, max(s.newest_persisted_at) AS newest,
                  coalesce(sum(s.snapshot_bytes), 0)::float8 AS bytes
           FROM checkpoint_sessions s
           WHERE ($1::text IS NULL OR s.service = $1) AND ($2::text IS NULL OR s.session_id = $2)`,
    values: [filter.service ?? null, filter.sessionId ?? null],
  };
}

/** A session and its snapshot count, as retention pages through candidates. */
export interface SessionCount {
  service: string;
  session_id: string;
  snapshot_count: number;
}

/**
 * Finished sessions holding more than `keepCount` snapshots (of `service`, when given; whose oldest snapshot
 * is older than `cutoff`, when given), after `cursor` in (count, service, session id) order: a range of
 * checkpoint_sessions_trim_idx. A session trimmed meanwhile moves below the cursor and is not seen again.
 */
export function trimCandidatesStatement(
  keepCount: number,
  options: { service?: string; cutoff?: Date; cursor?: SessionCount; limit: number },
): pg.QueryConfig {
  // Past every session holding exactly keepCount (no service or session id is empty): a range starting at
  // (keepCount, '', '') would read all of those only to filter them out.
  const cursor = options.cursor ?? { snapshot_count: keepCount + 1, service: "", session_id: "" };
  return {
    text: `SELECT s.service, s.session_id, s.snapshot_count::float8 AS snapshot_count FROM checkpoint_sessions s
           WHERE s.status IN ('completed', 'stopped') AND s.snapshot_count > $1
             AND (s.snapshot_count, s.service, s.session_id) > ($2::bigint, $3::text, $4::text)
             AND ($5::text IS NULL OR s.service = $5) AND ($6::timestamptz IS NULL OR s.oldest_persisted_at < $6)
           ORDER BY s.snapshot_count, s.service, s.session_id LIMIT $7`,
    values: [keepCount, cursor.snapshot_count, cursor.service, cursor.session_id, options.service ?? null, options.cutoff ?? null, options.limit],
  };
}

/** Where an expiry walk is; `updated_at` as Postgres prints it, since a JS Date would drop its microseconds. */
export interface ExpiryCursor {
  updated_at: string;
  service: string;
  session_id: string;
}

/**
 * Finished sessions last written before `finishedBefore` that still hold snapshots, after `cursor` in
 * (updated_at, service, session id) order: a range of checkpoint_sessions_expiry_idx, which a session leaves
 * once emptied.
 */
export function expiryCandidatesStatement(finishedBefore: Date, options: { cursor?: ExpiryCursor; limit: number }): pg.QueryConfig {
  const cursor = options.cursor ?? { updated_at: "-infinity", service: "", session_id: "" };
  return {
    text: `SELECT s.service, s.session_id, s.snapshot_count::float8 AS snapshot_count, s.updated_at::text AS updated_at
           FROM checkpoint_sessions s
           WHERE s.status IN ('completed', 'stopped') AND s.snapshot_count > 0 AND s.updated_at < $1
             AND (s.updated_at, s.service, s.session_id) > ($2::timestamptz, $3::text, $4::text)
           ORDER BY s.updated_at, s.service, s.session_id LIMIT $5`,
    values: [finishedBefore, cursor.updated_at, cursor.service, cursor.session_id, options.limit],
  };
}

/** The given sessions of `service`/`sessionId`, any status (a cleanup scoped to one session). */
export function scopedSessionsStatement(service: string | undefined, sessionId: string): pg.QueryConfig {
  return {
    text: `SELECT s.service, s.session_id, s.snapshot_count::float8 AS snapshot_count FROM checkpoint_sessions s
           WHERE s.session_id = $2 AND ($1::text IS NULL OR s.service = $1) AND s.snapshot_count > 0
           ORDER BY s.service, s.session_id`,
    values: [service ?? null, sessionId],
  };
}

/**
 * Locks sessions' rows in key order (as writers do), reading their counts as of now: while a cleanup holds a
 * session, no snapshot of it is written, so what it deletes and counts is exact. `skipLocked` passes over a
 * session being written right now (a walk over many sessions visits it next run rather than wait).
 */
export function lockSessionsStatement(sessions: Array<{ service: string; session_id: string }>, skipLocked: boolean): pg.QueryConfig {
  return {
    text: `SELECT s.service, s.session_id, s.snapshot_count::float8 AS snapshot_count FROM checkpoint_sessions s
           WHERE (s.service, s.session_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
           ORDER BY s.service, s.session_id
           FOR UPDATE${skipLocked ? " SKIP LOCKED" : ""}`,
    values: [sessions.map((s) => s.service), sessions.map((s) => s.session_id)],
  };
}

/** One session's share of a trim: keep its newest `keep` snapshots, delete at most `budget` of the others. */
export interface TrimShare {
  service: string;
  session_id: string;
  keep: number;
  budget: number;
}

/**
 * Deletes, per session, its oldest snapshots beyond the newest `keep` (with `cutoff`, only those persisted
 * before it), at most `budget` of them, and subtracts them from the session's counters. The (keep+1)-th newest
 * position bounds what may go (keep 0: the newest itself). Answers the rows deleted and left per session.
 * The positions are found first (MATERIALIZED): folded into the DELETE's join, they would be searched again
 * for every row of the session.
 */
export function trimStatement(shares: TrimShare[], cutoff: Date | undefined): pg.QueryConfig {
  return {
    text: `
WITH share AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[]) AS t(service, session_id, keep, budget)
),
bound AS MATERIALIZED (
  SELECT t.service, t.session_id, t.budget, k.epoch, k.seq
  FROM share t
  CROSS JOIN LATERAL (
    SELECT c.epoch, c.seq FROM checkpoints c WHERE c.service = t.service AND c.session_id = t.session_id
    ORDER BY c.epoch DESC, c.seq DESC OFFSET t.keep LIMIT 1
  ) k
),
doomed AS MATERIALIZED (
  SELECT b.service, b.session_id, d.epoch, d.seq
  FROM bound b
  CROSS JOIN LATERAL (
    SELECT c.epoch, c.seq FROM checkpoints c
    WHERE c.service = b.service AND c.session_id = b.session_id AND (c.epoch, c.seq) <= (b.epoch, b.seq)
      AND ($5::timestamptz IS NULL OR c.persisted_at < $5)
    ORDER BY c.epoch, c.seq LIMIT b.budget
  ) d
),
gone AS (
  DELETE FROM checkpoints c USING doomed d
  WHERE c.service = d.service AND c.session_id = d.session_id AND c.epoch = d.epoch AND c.seq = d.seq
  RETURNING c.service, c.session_id, COALESCE(c.state_bytes, pg_column_size(c.state)) AS bytes
),
tally AS (
  SELECT service, session_id, count(*) AS rows, sum(bytes) AS bytes FROM gone GROUP BY service, session_id
)
UPDATE checkpoint_sessions s
SET snapshot_count = s.snapshot_count - t.rows, snapshot_bytes = s.snapshot_bytes - t.bytes
FROM tally t
WHERE s.service = t.service AND s.session_id = t.session_id
RETURNING s.service, s.session_id, t.rows::float8 AS deleted, s.snapshot_count::float8 AS remaining`,
    values: [
      shares.map((s) => s.service),
      shares.map((s) => s.session_id),
      shares.map((s) => s.keep),
      shares.map((s) => s.budget),
      cutoff ?? null,
    ],
  };
}

/** Sets sessions' oldest and newest persisted_at from the snapshots they hold now (NULL when none). */
export function refreshBoundsStatement(sessions: Array<{ service: string; session_id: string }>): pg.QueryConfig {
  return {
    text: `UPDATE checkpoint_sessions s
           SET oldest_persisted_at = b.oldest, newest_persisted_at = b.newest
           FROM (
             SELECT k.service, k.session_id, x.oldest, x.newest
             FROM unnest($1::text[], $2::text[]) AS k(service, session_id)
             CROSS JOIN LATERAL (
               SELECT min(c.persisted_at) AS oldest, max(c.persisted_at) AS newest FROM checkpoints c
               WHERE c.service = k.service AND c.session_id = k.session_id
             ) x
           ) b
           WHERE s.service = b.service AND s.session_id = b.session_id`,
    values: [sessions.map((s) => s.service), sessions.map((s) => s.session_id)],
  };
}
