import type {
  CheckpointStats,
  CleanupRequest,
  SessionStatus,
  SnapshotKind,
  StoredSnapshot,
} from "@savepoint/shared";
import pg from "pg";
import type { PendingSnapshot, PersistOutcome } from "../domain/snapshot-batch.js";
import { Retention, type RetentionRequest, type RetentionResult } from "./retention.js";
import {
  historyStatement,
  latestByOwnerStatement,
  latestBySessionStatement,
  persistBatchStatement,
  persistOneStatement,
  statsStatement,
  storedAmongStatement,
} from "./statements.js";

export interface StorePoolOptions {
  databaseUrl: string;
  maxConnections: number;
  statementTimeoutMs: number;
  /** An idle connection the server dropped (restart, DROP DATABASE … FORCE); the pool replaces it on next use. */
  onConnectionLost: (error: Error & { code?: string }) => void;
}

/** A pool whose lost idle connections are reported to `onConnectionLost`, never thrown as an unhandled 'error'. */
export function createPool({ databaseUrl, maxConnections, statementTimeoutMs, onConnectionLost }: StorePoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: maxConnections,
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: statementTimeoutMs,
    application_name: "savepoint-checkpointer",
  });
  pool.on("error", onConnectionLost);
  return pool;
}

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

/** The checkpointer's access to Postgres; the statements themselves are in statements.ts. */
export class CheckpointStore {
  private readonly retention: Retention;

  constructor(private readonly pool: pg.Pool) {
    this.retention = new Retention(pool);
  }

  async ping(): Promise<void> {
    await this.pool.query("SELECT 1");
  }

  /** Fails with the fix when the migrations have not been applied to this database. */
  async checkSchema(): Promise<void> {
    try {
      await this.pool.query("SELECT c.state_bytes, s.snapshot_count FROM checkpoints c, checkpoint_sessions s LIMIT 0");
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "42P01" || code === "42703") {
        const problem = code === "42P01" ? "the checkpoint tables do not exist" : "the checkpoint tables are from an older version";
        throw new Error(`${problem} in DATABASE_URL's database: run \`npm run migrate\` first`, {
          cause: error,
        });
      }
      throw error;
    }
  }


  /** Persists distinct snapshots (see `dedupeBatch`) in one transaction; one outcome per snapshot, in order. */
  async persistBatch(snapshots: PendingSnapshot[]): Promise<PersistOutcome[]> {
    const rows = await this.pool.query<{ ord: number; outcome: PersistOutcome["outcome"]; highest_epoch: number }>(
      snapshots.length === 1 ? persistOneStatement(snapshots[0]!) : persistBatchStatement(snapshots),
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
      const keys = stale.map((ord) => ({ ord, ...snapshots[ord]!.head }));
      const { rows: stored } = await this.pool.query<{ ord: number }>(storedAmongStatement(keys));
      for (const { ord } of stored) outcomes[ord] = { outcome: "duplicate" };
    }
    return outcomes;
  }

  async latestBySession(service: string, sessionId: string): Promise<StoredSnapshot | null> {
    const { rows } = await this.pool.query<SnapshotRow>(latestBySessionStatement(service, sessionId));
    return rows[0] ? toStoredSnapshot(rows[0]) : null;
  }

  /** The newest snapshot of the owner's most recently written session (optionally with one of `statuses`). */
  async latestByOwner(service: string, ownerId: string, statuses?: SessionStatus[]): Promise<StoredSnapshot | null> {
    const { rows } = await this.pool.query<SnapshotRow>(latestByOwnerStatement(service, ownerId, statuses));
    return rows[0] ? toStoredSnapshot(rows[0]) : null;
  }

  async history(service: string, sessionId: string, limit: number, before?: { epoch: number; seq: number }): Promise<StoredSnapshot[]> {
    const { rows } = await this.pool.query<SnapshotRow>(historyStatement(service, sessionId, limit, before));
    return rows.map(toStoredSnapshot);
  }

  /** From the sessions' counters: one row read per matching session, however many snapshots they hold. */
  async stats(filter: { service?: string; sessionId?: string }): Promise<CheckpointStats> {
    const { rows } = await this.pool.query<{ total: number; sessions: number; oldest: Date | null; newest: Date | null; bytes: number }>(
      statsStatement(filter),
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

  /** A cleanup asked for through `checkpoint-requests`; see Retention.cleanup for what it spares. */
  cleanup(request: CleanupRequest): Promise<number> {
    return this.retention.cleanup(request);
  }

  /** The scheduled retention run; see Retention.run. */
  runRetention(request: RetentionRequest): Promise<RetentionResult> {
    return this.retention.run(request);
  }
}
