import type {
  CheckpointStats,
  CleanupRequest,
  SessionStatus,
  SnapshotKind,
  StoredSnapshot,
} from "@savepoint/shared";
import pg from "pg";
import type { PendingSnapshot, PersistOutcome } from "../domain/snapshot-batch.js";

export interface StorePoolOptions {
  databaseUrl: string;
  maxConnections: number;
  statementTimeoutMs: number;
}

export function createPool({ databaseUrl, maxConnections, statementTimeoutMs }: StorePoolOptions): pg.Pool {
  return new pg.Pool({
    connectionString: databaseUrl,
    max: maxConnections,
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: statementTimeoutMs,
    application_name: "savepoint-checkpointer",
  });
}

/**
 * How a session's row takes in a snapshot (`EXCLUDED`): its position, owner and status advance only when the
 * snapshot is newer than the one stored (monotonic latest); its epoch, the fencing token, only ever rises.
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
    latest_epoch = GREATEST(EXCLUDED.latest_epoch, s.latest_epoch)`;

/*
 * One statement, so one round trip and one implicit transaction, per batch:
 * 1. `heads` upserts each session's row with the batch's greatest (epoch, seq) (see ADVANCE_SESSION) and
 *    locks it; it returns the highest epoch now known for the session, the fencing token.
 * 2. `stored` inserts the snapshots whose epoch is not below that token; a key already present is skipped
 *    (idempotence).
 * 3. The final SELECT labels each input: stored now, already there (duplicate), or from a lower epoch than
 *    the session has seen and not already stored (stale). `persistBatch` re-checks "stale" with a fresh read.
 */
const PERSIST_BATCH_SQL = `
WITH input AS (
  SELECT t.ord - 1 AS ord, t.service, t.session_id, t.epoch, t.seq, t.owner_id, t.kind, t.status, t.schema_version,
         t.taken_at, t.state
  FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::int[],
              $9::timestamptz[], $10::json[])
         WITH ORDINALITY AS t(service, session_id, epoch, seq, owner_id, kind, status, schema_version, taken_at, state, ord)
),
heads AS (
  INSERT INTO checkpoint_sessions AS s (service, session_id, owner_id, status, latest_epoch, latest_seq)
  SELECT DISTINCT ON (service, session_id) service, session_id, owner_id, status, epoch, seq
  FROM input
  ORDER BY service, session_id, epoch DESC, seq DESC
  ON CONFLICT (service, session_id) DO UPDATE SET ${ADVANCE_SESSION}
  RETURNING s.service, s.session_id, s.latest_epoch
),
stored AS (
  INSERT INTO checkpoints (service, session_id, epoch, seq, owner_id, kind, status, schema_version, taken_at, state)
  SELECT i.service, i.session_id, i.epoch, i.seq, i.owner_id, i.kind, i.status, i.schema_version, i.taken_at, i.state
  FROM input i JOIN heads h ON h.service = i.service AND h.session_id = i.session_id
  WHERE i.epoch >= h.latest_epoch
  ON CONFLICT DO NOTHING
  RETURNING service, session_id, epoch, seq
)
SELECT i.ord,
       CASE WHEN x.seq IS NOT NULL THEN 'stored'
            WHEN i.epoch >= h.latest_epoch THEN 'duplicate'
            WHEN EXISTS (SELECT 1 FROM checkpoints c WHERE c.service = i.service AND c.session_id = i.session_id
                                                      AND c.epoch = i.epoch AND c.seq = i.seq) THEN 'duplicate'
            ELSE 'stale' END AS outcome,
       h.latest_epoch::float8 AS highest_epoch
FROM input i
JOIN heads h ON h.service = i.service AND h.session_id = i.session_id
LEFT JOIN stored x ON x.service = i.service AND x.session_id = i.session_id AND x.epoch = i.epoch AND x.seq = i.seq`;

/**
 * PERSIST_BATCH_SQL for a batch of one, with plain parameters. Most batches are one snapshot: every confirmed
 * save, and every save while the checkpointer keeps up. Without the arrays, their ordinality and the joins,
 * Postgres takes about a quarter less time per snapshot, and a confirmed save waits for exactly that.
 */
const PERSIST_ONE_SQL = `
WITH head AS (
  INSERT INTO checkpoint_sessions AS s (service, session_id, owner_id, status, latest_epoch, latest_seq)
  VALUES ($1::text, $2::text, $5::text, $7::text, $3::bigint, $4::bigint)
  ON CONFLICT (service, session_id) DO UPDATE SET ${ADVANCE_SESSION}
  RETURNING s.latest_epoch
),
stored AS (
  INSERT INTO checkpoints (service, session_id, epoch, seq, owner_id, kind, status, schema_version, taken_at, state)
  SELECT $1, $2, $3, $4, $5, $6::text, $7, $8::int, $9::timestamptz, $10::json FROM head WHERE $3 >= head.latest_epoch
  ON CONFLICT DO NOTHING
  RETURNING 1
)
SELECT 0 AS ord,
       CASE WHEN EXISTS (SELECT 1 FROM stored) THEN 'stored'
            WHEN $3 >= h.latest_epoch THEN 'duplicate'
            WHEN EXISTS (SELECT 1 FROM checkpoints c WHERE c.service = $1 AND c.session_id = $2
                                                      AND c.epoch = $3 AND c.seq = $4) THEN 'duplicate'
            ELSE 'stale' END AS outcome,
       h.latest_epoch::float8 AS highest_epoch
FROM head h`;

const snapshotColumns = (t: string) =>
  `${t}.service, ${t}.session_id, ${t}.owner_id, ${t}.epoch::float8 AS epoch, ${t}.seq::float8 AS seq, ${t}.kind,
   ${t}.status, ${t}.schema_version, ${t}.taken_at, ${t}.persisted_at, ${t}.state`;

interface SnapshotRow {
  service: string;
  session_id: string;
  owner_id: string | null;
  epoch: number;
  seq: number;
  kind: SnapshotKind;
  status: SessionStatus;
  schema_version: number;
  taken_at: Date;
  persisted_at: Date;
  state: Record<string, unknown>;
}

function toStoredSnapshot(row: SnapshotRow): StoredSnapshot {
  return {
    v: 1,
    service: row.service,
    sessionId: row.session_id,
    ...(row.owner_id === null ? {} : { ownerId: row.owner_id }),
    epoch: row.epoch,
    seq: row.seq,
    kind: row.kind,
    status: row.status,
    schemaVersion: row.schema_version,
    takenAt: row.taken_at.toISOString(),
    persistedAt: row.persisted_at.toISOString(),
    state: row.state,
  };
}

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
function persistOneQuery({ head: e, stateJson }: PendingSnapshot): pg.QueryConfig {
  return {
    name: "persist-one",
    text: PERSIST_ONE_SQL,
    values: [e.service, e.sessionId, e.epoch, e.seq, e.ownerId ?? null, e.kind, e.status, e.schemaVersion, e.takenAt, stateJson],
  };
}

function persistBatchQuery(snapshots: PendingSnapshot[]): pg.QueryConfig {
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

/** Sessions handled per cleanup statement, so a cleanup never holds one huge transaction. */
const CLEANUP_SESSIONS_PER_STATEMENT = 500;

/** The checkpointer's access to Postgres: every query it runs lives here. */
export class CheckpointStore {
  constructor(private readonly pool: pg.Pool) {}

  async ping(): Promise<void> {
    await this.pool.query("SELECT 1");
  }

  /** Fails with the fix when the migrations have not been applied to this database. */
  async checkSchema(): Promise<void> {
    try {
      await this.pool.query("SELECT 1 FROM checkpoints, checkpoint_sessions LIMIT 0");
    } catch (error) {
      if ((error as { code?: string }).code === "42P01") {
        throw new Error("the checkpoint tables do not exist in DATABASE_URL's database: run `npm run migrate` first", {
          cause: error,
        });
      }
      throw error;
    }
  }

  /** Persists distinct snapshots (see `dedupeBatch`) in one transaction; one outcome per snapshot, in order. */
  async persistBatch(snapshots: PendingSnapshot[]): Promise<PersistOutcome[]> {
    const rows = await this.pool.query<{ ord: number; outcome: PersistOutcome["outcome"]; highest_epoch: number }>(
      snapshots.length === 1 ? persistOneQuery(snapshots[0]!) : persistBatchQuery(snapshots),
    ).then((result) => result.rows);
    const outcomes = new Array<PersistOutcome>(snapshots.length);
    for (const row of rows) {
      outcomes[row.ord] =
        row.outcome === "stale" ? { outcome: "stale", highestEpoch: row.highest_epoch } : { outcome: row.outcome };
    }
    const stale = rows.filter((row) => row.outcome === "stale").map((row) => row.ord);
    if (stale.length > 0) {
      // The statement read through a snapshot taken before it waited for the session rows, so it cannot see a
      // concurrent batch that stored one of these very snapshots and committed during that wait. A snapshot
      // stored before the new epoch arrived is a duplicate, not stale; this later read sees every such commit.
      for (const ord of await this.storedAmong(snapshots, stale)) outcomes[ord] = { outcome: "duplicate" };
    }
    return outcomes;
  }

  /** Which of `snapshots[ords]` are stored, read with a snapshot of now. */
  private async storedAmong(snapshots: PendingSnapshot[], ords: number[]): Promise<number[]> {
    const heads = ords.map((ord) => snapshots[ord]!.head);
    const { rows } = await this.pool.query<{ ord: number }>(
      `SELECT k.ord FROM unnest($1::int[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS k(ord, service, session_id, epoch, seq)
       WHERE EXISTS (SELECT 1 FROM checkpoints c WHERE c.service = k.service AND c.session_id = k.session_id
                                                  AND c.epoch = k.epoch AND c.seq = k.seq)`,
      [ords, heads.map((h) => h.service), heads.map((h) => h.sessionId), heads.map((h) => h.epoch), heads.map((h) => h.seq)],
    );
    return rows.map((row) => row.ord);
  }

  async latestBySession(service: string, sessionId: string): Promise<StoredSnapshot | null> {
    const { rows } = await this.pool.query<SnapshotRow>({
      name: "latest-by-session",
      text: `SELECT ${snapshotColumns("c")} FROM checkpoints c WHERE service = $1 AND session_id = $2
             ORDER BY epoch DESC, seq DESC LIMIT 1`,
      values: [service, sessionId],
    });
    return rows[0] ? toStoredSnapshot(rows[0]) : null;
  }

  /** The newest snapshot of the owner's most recently written session (optionally with one of `statuses`). */
  async latestByOwner(service: string, ownerId: string, statuses?: SessionStatus[]): Promise<StoredSnapshot | null> {
    const { rows } = await this.pool.query<SnapshotRow>(
      `SELECT ${snapshotColumns("c")}
       FROM checkpoint_sessions s
       CROSS JOIN LATERAL (
         SELECT * FROM checkpoints c WHERE c.service = s.service AND c.session_id = s.session_id
         ORDER BY c.epoch DESC, c.seq DESC LIMIT 1
       ) c
       WHERE s.service = $1 AND s.owner_id = $2 AND ($3::text[] IS NULL OR s.status = ANY($3))
       ORDER BY s.latest_write DESC LIMIT 1`,
      [service, ownerId, statuses ?? null],
    );
    return rows[0] ? toStoredSnapshot(rows[0]) : null;
  }

  async history(
    service: string,
    sessionId: string,
    limit: number,
    before?: { epoch: number; seq: number },
  ): Promise<StoredSnapshot[]> {
    const { rows } = await this.pool.query<SnapshotRow>(
      `SELECT ${snapshotColumns("c")} FROM checkpoints c
       WHERE service = $1 AND session_id = $2 AND ($3::bigint IS NULL OR (epoch, seq) < ($3, $4::bigint))
       ORDER BY epoch DESC, seq DESC LIMIT $5`,
      [service, sessionId, before?.epoch ?? null, before?.seq ?? null, limit],
    );
    return rows.map(toStoredSnapshot);
  }

  async stats(filter: { service?: string; sessionId?: string }): Promise<CheckpointStats> {
    const { rows } = await this.pool.query<{
      total: number;
      sessions: number;
      oldest: Date | null;
      newest: Date | null;
      bytes: number;
    }>(
      `SELECT count(*)::float8 AS total,
              count(DISTINCT (service, session_id))::float8 AS sessions,
              min(persisted_at) AS oldest, max(persisted_at) AS newest,
              coalesce(sum(pg_column_size(state)), 0)::float8 AS bytes
       FROM checkpoints
       WHERE ($1::text IS NULL OR service = $1) AND ($2::text IS NULL OR session_id = $2)`,
      [filter.service ?? null, filter.sessionId ?? null],
    );
    const row = rows[0]!;
    return {
      totalCheckpoints: row.total,
      sessions: row.sessions,
      oldestAt: row.oldest?.toISOString() ?? null,
      newestAt: row.newest?.toISOString() ?? null,
      bytes: row.bytes,
    };
  }

  /**
   * Deletes all but the newest `keepCount` snapshots of each matching session (with `olderThanHours`, only
   * those persisted before then), a page of sessions per statement. Session rows, and so fencing, stay.
   */
  async cleanup({ keepCount, olderThanHours, service, sessionId }: CleanupRequest): Promise<number> {
    let deleted = 0;
    await this.forEachSessionPage(
      `($3::text IS NULL OR service = $3) AND ($4::text IS NULL OR session_id = $4)`,
      [service ?? null, sessionId ?? null],
      async (services, sessionIds) => {
        const result = await this.pool.query(
          `WITH cut AS (
             SELECT k.service, k.session_id, c.epoch, c.seq
             FROM unnest($1::text[], $2::text[]) AS k(service, session_id)
             CROSS JOIN LATERAL (
               SELECT epoch, seq FROM checkpoints c
               WHERE c.service = k.service AND c.session_id = k.session_id
               ORDER BY epoch DESC, seq DESC OFFSET $3 LIMIT 1
             ) c
           )
           DELETE FROM checkpoints c USING cut
           WHERE c.service = cut.service AND c.session_id = cut.session_id AND (c.epoch, c.seq) <= (cut.epoch, cut.seq)
             AND ($4::float8 IS NULL OR c.persisted_at < now() - make_interval(secs => $4 * 3600))`,
          [services, sessionIds, keepCount, olderThanHours ?? null],
        );
        deleted += result.rowCount ?? 0;
      },
    );
    return deleted;
  }

  /** Deletes every snapshot of sessions that ended (completed or stopped) more than `ttlHours` ago. */
  async expireFinishedSessions(ttlHours: number): Promise<{ deleted: number; sessions: number }> {
    let deleted = 0;
    let sessions = 0;
    await this.forEachSessionPage(
      `status IN ('completed', 'stopped') AND updated_at < now() - make_interval(secs => $3 * 3600)
       AND EXISTS (SELECT 1 FROM checkpoints c
                   WHERE c.service = checkpoint_sessions.service AND c.session_id = checkpoint_sessions.session_id)`,
      [ttlHours],
      async (services, sessionIds) => {
        const result = await this.pool.query(
          `DELETE FROM checkpoints c USING unnest($1::text[], $2::text[]) AS k(service, session_id)
           WHERE c.service = k.service AND c.session_id = k.session_id`,
          [services, sessionIds],
        );
        deleted += result.rowCount ?? 0;
        sessions += services.length;
      },
    );
    return { deleted, sessions };
  }

  /** Walks checkpoint_sessions matching `where` (parameters from $3) in key order, one page at a time. */
  private async forEachSessionPage(
    where: string,
    params: unknown[],
    visit: (services: string[], sessionIds: string[]) => Promise<void>,
  ): Promise<void> {
    let after: [string, string] = ["", ""];
    for (;;) {
      const { rows } = await this.pool.query<{ service: string; session_id: string }>(
        `SELECT service, session_id FROM checkpoint_sessions
         WHERE (service, session_id) > ($1, $2) AND ${where}
         ORDER BY service, session_id LIMIT ${CLEANUP_SESSIONS_PER_STATEMENT}`,
        [...after, ...params],
      );
      if (rows.length === 0) return;
      await visit(
        rows.map((row) => row.service),
        rows.map((row) => row.session_id),
      );
      const last = rows[rows.length - 1]!;
      after = [last.service, last.session_id];
      if (rows.length < CLEANUP_SESSIONS_PER_STATEMENT) return;
    }
  }
}
