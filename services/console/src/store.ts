import { SESSION_STATUSES, SNAPSHOT_KINDS, type Logger } from "@savepoint/shared";
import pg from "pg";
import { z } from "zod";

/**
 * The console's reads of the checkpointer's tables, on connections that cannot write: each one starts with
 * `default_transaction_read_only = on`, so even a URL naming the owner role cannot change a row (the
 * checkpointer stays the only writer). SQL rather than the checkpointer's request queue, because the queue
 * answers one session at a time with whole states, and these pages list sessions with filters and keyset
 * paging, and read one field (the portfolio value, a step) out of thousands of snapshots, which Postgres does
 * where the rows are.
 */
export class ConsoleStore {
  private readonly pool: pg.Pool;

  constructor(options: { databaseUrl: string; poolSize: number; statementTimeoutMs: number; logger: Logger }) {
    this.pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize,
      options: `-c default_transaction_read_only=on -c statement_timeout=${options.statementTimeoutMs}`,
      application_name: "savepoint-console",
    });
    // An idle connection that breaks (Postgres restarted) is replaced on the next query; /readyz reports the outage.
    this.pool.on("error", (error) => options.logger.warn({ problem: error.message }, "Postgres connection lost; reconnecting on the next request"));
  }

  async ping(): Promise<void> {
    await this.pool.query("SELECT 1");
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** Sessions, most recently written first, after the `after` cursor (a session's write position). */
  async listSessions(filter: SessionFilter): Promise<SessionRow[]> {
    const { rows } = await this.pool.query(LIST_SESSIONS, [
      filter.service ?? null,
      filter.status ?? null,
      filter.owner ?? null,
      filter.after ?? null,
      filter.limit,
    ]);
    return rows.map((row) => sessionRowSchema.parse(row));
  }

  async session(service: string, sessionId: string): Promise<SessionRow | null> {
    const { rows } = await this.pool.query(ONE_SESSION, [service, sessionId]);
    return rows[0] ? sessionRowSchema.parse(rows[0]) : null;
  }

  /** The session's snapshots in (epoch, seq) order, without their states, from after `after`. */
  async timeline(service: string, sessionId: string, page: { limit: number; after?: Position }): Promise<TimelineEntry[]> {
    const { rows } = await this.pool.query(TIMELINE, [service, sessionId, page.after?.epoch ?? null, page.after?.seq ?? null, page.limit]);
    return rows.map((row) => timelineEntrySchema.parse(row));
  }

  /** The session's snapshots in (epoch, seq) order with their states, at most `limit` of them. */
  async snapshots(service: string, sessionId: string, limit: number): Promise<StoredState[]> {
    const { rows } = await this.pool.query(SNAPSHOTS, [service, sessionId, limit]);
    return rows.map((row) => storedStateSchema.parse(row));
  }

  /** Postgres's half of the fleet page: sessions per state, resumed vs fresh, recent checkpoint rate. */
  async fleetCounts(): Promise<FleetCounts> {
    const [states, starts, rate] = await Promise.all([this.pool.query(SESSIONS_PER_STATE), this.pool.query(RESUMED_VS_FRESH, [FLEET_RECENT_SESSIONS]), this.pool.query(CHECKPOINT_RATE, [FLEET_RATE_SECONDS])]);
    return {
      sessionsByState: states.rows.map((row) => sessionsByStateSchema.parse(row)),
      starts: starts.rows.map((row) => startsSchema.parse(row)),
      startsOf: FLEET_RECENT_SESSIONS,
      checkpointRate: rate.rows.map((row) => rateSchema.parse(row)).map(({ service, checkpoints }) => ({ service, checkpoints, perSecond: checkpoints / FLEET_RATE_SECONDS })),
      rateSeconds: FLEET_RATE_SECONDS,
    };
  }
}

export interface FleetCounts {
  sessionsByState: Array<{ service: string; status: string; sessions: number }>;
  /** Among the `startsOf` sessions written most recently: how many had more than one owner (resumed), how many one. */
  starts: Array<{ service: string; resumed: number; fresh: number }>;
  startsOf: number;
  /** Snapshots persisted in the last `rateSeconds`, per service. */
  checkpointRate: Array<{ service: string; checkpoints: number; perSecond: number }>;
  rateSeconds: number;
}

/** Resumed vs fresh is told over this many of the most recently written sessions. */
const FLEET_RECENT_SESSIONS = 1_000;
/** Checkpoints per second are counted over this window. */
const FLEET_RATE_SECONDS = 60;

export interface SessionFilter {
  service?: string;
  status?: string;
  owner?: string;
  /** Only sessions written before this write position (the previous page's last `cursor`). */
  after?: string;
  limit: number;
}

export interface Position {
  epoch: number;
  seq: number;
}

// Every query names its session or walks an index: the primary keys of both tables, the owner index.
const SESSION_COLUMNS = `
  s.service, s.session_id, s.owner_id, s.status, s.latest_epoch, s.latest_seq, s.latest_write, s.started_at, s.updated_at,
  s.snapshot_count, s.snapshot_bytes,
  (SELECT count(DISTINCT c.epoch) FROM checkpoints c WHERE c.service = s.service AND c.session_id = s.session_id) AS epochs`;

const LIST_SESSIONS = `
SELECT ${SESSION_COLUMNS}
FROM checkpoint_sessions s
WHERE ($1::text IS NULL OR s.service = $1)
  AND ($2::text IS NULL OR s.status = $2)
  AND ($3::text IS NULL OR s.owner_id = $3)
  AND ($4::bigint IS NULL OR s.latest_write < $4)
ORDER BY s.latest_write DESC
LIMIT $5`;

const ONE_SESSION = `SELECT ${SESSION_COLUMNS} FROM checkpoint_sessions s WHERE s.service = $1 AND s.session_id = $2`;

const TIMELINE = `
SELECT epoch, seq, kind, status, taken_at, persisted_at, COALESCE(state_bytes, pg_column_size(state)) AS bytes
FROM checkpoints
WHERE service = $1 AND session_id = $2 AND ($3::bigint IS NULL OR (epoch, seq) > ($3, $4))
ORDER BY epoch, seq
LIMIT $5`;

const SNAPSHOTS = `
SELECT epoch, seq, kind, status, schema_version, taken_at, persisted_at, state
FROM checkpoints
WHERE service = $1 AND session_id = $2
ORDER BY epoch, seq
LIMIT $3`;

const SESSIONS_PER_STATE = `SELECT service, status, count(*) AS sessions FROM checkpoint_sessions GROUP BY service, status ORDER BY service, status`;

// A session is resumed when its oldest stored epoch is below its latest (min(epoch) is one primary-key probe).
const RESUMED_VS_FRESH = `
SELECT service, count(*) FILTER (WHERE resumed) AS resumed, count(*) FILTER (WHERE NOT resumed) AS fresh
FROM (
  SELECT s.service,
         s.latest_epoch > COALESCE((SELECT min(c.epoch) FROM checkpoints c WHERE c.service = s.service AND c.session_id = s.session_id), s.latest_epoch) AS resumed
  FROM checkpoint_sessions s
  ORDER BY s.latest_write DESC
  LIMIT $1
) recent
GROUP BY service
ORDER BY service`;

// Only sessions written within the window, and of each its newest 10,000 snapshots at most (walked backwards on
// the primary key): checkpoints has no index on persisted_at, which every write would pay for.
const CHECKPOINT_RATE = `
SELECT s.service, sum(recent.n) AS checkpoints
FROM checkpoint_sessions s
CROSS JOIN LATERAL (
  SELECT count(*) AS n FROM (
    SELECT c.persisted_at FROM checkpoints c
    WHERE c.service = s.service AND c.session_id = s.session_id
    ORDER BY c.epoch DESC, c.seq DESC
    LIMIT 10000
  ) newest
  WHERE newest.persisted_at > now() - make_interval(secs => $1)
) recent
WHERE s.newest_persisted_at > now() - make_interval(secs => $1)
GROUP BY s.service
ORDER BY s.service`;

const count = z.coerce.number().int().min(0);
const sessionsByStateSchema = z.object({ service: z.string(), status: z.string(), sessions: count });
const startsSchema = z.object({ service: z.string(), resumed: count, fresh: count });
const rateSchema = z.object({ service: z.string(), checkpoints: count });
const time = z.date().transform((value) => value.toISOString());

const sessionRowSchema = z
  .object({
    service: z.string(),
    session_id: z.string(),
    owner_id: z.string().nullable(),
    status: z.enum(SESSION_STATUSES),
    latest_epoch: count,
    latest_seq: count,
    latest_write: z.string(),
    started_at: time,
    updated_at: time,
    snapshot_count: count,
    snapshot_bytes: count,
    epochs: count,
  })
  .transform((row) => ({
    service: row.service,
    sessionId: row.session_id,
    ownerId: row.owner_id,
    status: row.status,
    latest: { epoch: row.latest_epoch, seq: row.latest_seq },
    startedAt: row.started_at,
    updatedAt: row.updated_at,
    checkpoints: row.snapshot_count,
    bytes: row.snapshot_bytes,
    /** Each owner after the first resumed the session (among the epochs whose snapshots are still stored). */
    resumes: Math.max(0, row.epochs - 1),
    cursor: row.latest_write,
  }));
export type SessionRow = z.output<typeof sessionRowSchema>;

/** The columns of every snapshot row: where it stands in its session, and when it was taken and stored. */
const snapshotColumns = {
  epoch: count,
  seq: count,
  kind: z.enum(SNAPSHOT_KINDS),
  status: z.enum(SESSION_STATUSES),
  taken_at: time,
  persisted_at: time,
};
const snapshotFields = (row: z.output<z.ZodObject<typeof snapshotColumns>>) => ({
  epoch: row.epoch,
  seq: row.seq,
  kind: row.kind,
  status: row.status,
  takenAt: row.taken_at,
  persistedAt: row.persisted_at,
});

const timelineEntrySchema = z.object({ ...snapshotColumns, bytes: count }).transform((row) => ({ ...snapshotFields(row), bytes: row.bytes }));
export type TimelineEntry = z.output<typeof timelineEntrySchema>;

const storedStateSchema = z
  .object({ ...snapshotColumns, schema_version: count, state: z.unknown() })
  .transform((row) => ({ ...snapshotFields(row), schemaVersion: row.schema_version, state: row.state }));
export type StoredState = z.output<typeof storedStateSchema>;
