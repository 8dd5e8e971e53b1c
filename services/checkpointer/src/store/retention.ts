import type { CleanupRequest, MaintenanceRequest } from "@savepoint/shared";
import type pg from "pg";
import {
  expiryCandidatesStatement,
  lockSessionsStatement,
  refreshBoundsStatement,
  scopedSessionsStatement,
  trimCandidatesStatement,
  trimStatement,
  type ExpiryCursor,
  type SessionCount,
  type TrimShare,
} from "./statements.js";

export type RetentionRequest = MaintenanceRequest;
export interface RetentionResult {
  deleted: number;
  /** Finished sessions whose snapshots were all deleted because they ended longer than the TTL ago. */
  expired: number;
}

/** Candidate sessions read per page of a walk. */
const SESSIONS_PER_PAGE = 500;
/**
 * Most snapshots one cleanup transaction deletes. Each chunk commits on its own and holds its sessions' rows
 * only while it runs, so a first run on a big table is many short transactions, never one long lock or one
 * burst of WAL; a session with more to delete than this is trimmed over several.
 */
export const ROWS_PER_CHUNK = 2_000;

interface Pending extends SessionCount {
  /** Something of it was deleted by an earlier chunk of this trim, so its bounds must be refreshed at the end. */
  touched: boolean;
}

/**
 * Deletes snapshots. The rule (README, "Retention"):
 * - A session that is not finished (active or interrupted) may need every snapshot it has to resume (the reasoner
 *   rebuilds a run from all its iteration snapshots), so no cleanup across sessions touches it: neither the
 *   scheduled one nor a request without a sessionId. Only a cleanup of that very session (its owner trimming its
 *   own snapshots, as the trader does) deletes from it.
 * - Finished (completed or stopped) sessions keep their newest `keepCount` snapshots (with `olderThanHours`,
 *   only older ones go), and lose every snapshot once they ended more than `finishedTtlHours` ago.
 * - Session rows stay, so fencing (the highest epoch seen) survives any cleanup.
 * Sessions are found through the counters kept on their rows, so a run visits only those with something to
 * delete, and deletes in chunks of at most ROWS_PER_CHUNK snapshots.
 */
export class Retention {
  constructor(private readonly pool: pg.Pool) {}

  /** The scheduled run: expiry of long-finished sessions, then the count-based trim of finished ones. */
  async run({ keepCount, olderThanHours, finishedTtlHours }: RetentionRequest): Promise<RetentionResult> {
    let deleted = 0;
    let expired = 0;
    if (finishedTtlHours !== undefined) {
      const finishedBefore = await this.hoursAgo(finishedTtlHours);
      let cursor: ExpiryCursor | undefined;
      for (;;) {
        const { rows } = await this.pool.query<SessionCount & ExpiryCursor>(
          expiryCandidatesStatement(finishedBefore, { cursor, limit: SESSIONS_PER_PAGE }),
        );
        if (rows.length === 0) break;
        const trimmed = await this.trim(rows, 0, undefined, true);
        deleted += trimmed.deleted;
        expired += trimmed.sessions;
        cursor = rows[rows.length - 1]!;
      }
    }
    deleted += await this.trimFinished(keepCount, olderThanHours, undefined);
    return { deleted, expired };
  }

  /**
   * A cleanup on request. With a sessionId it trims that session whatever its status (keepCount 0 empties it);
   * otherwise it trims the finished sessions (of `service`, if given), never an unfinished one.
   */
  async cleanup({ keepCount, olderThanHours, service, sessionId }: CleanupRequest): Promise<number> {
    if (sessionId === undefined) return this.trimFinished(keepCount, olderThanHours, service);
    const cutoff = olderThanHours === undefined ? undefined : await this.hoursAgo(olderThanHours);
    const { rows } = await this.pool.query<SessionCount>(scopedSessionsStatement(service, sessionId));
    return (await this.trim(rows, keepCount, cutoff, false)).deleted;
  }

  private async trimFinished(keepCount: number, olderThanHours: number | undefined, service: string | undefined): Promise<number> {
    const cutoff = olderThanHours === undefined ? undefined : await this.hoursAgo(olderThanHours);
    let deleted = 0;
    let cursor: SessionCount | undefined;
    for (;;) {
      const { rows } = await this.pool.query<SessionCount>(
        trimCandidatesStatement(keepCount, { service, cutoff, cursor, limit: SESSIONS_PER_PAGE }),
      );
      if (rows.length === 0) return deleted;
      deleted += (await this.trim(rows, keepCount, cutoff, true)).deleted;
      cursor = rows[rows.length - 1]!;
    }
  }

  /** Postgres' clock, which set every persisted_at and updated_at, less some hours. */
  private async hoursAgo(hours: number): Promise<Date> {
    const { rows } = await this.pool.query<{ at: Date }>("SELECT now() - make_interval(secs => $1::float8 * 3600) AS at", [hours]);
    return rows[0]!.at;
  }

  /**
   * Trims sessions to their newest `keep` snapshots (with `cutoff`, deleting only older ones), grouping them
   * into chunks of about ROWS_PER_CHUNK rows by their counts. Answers the rows deleted and the sessions they
   * came from.
   */
  private async trim(sessions: SessionCount[], keep: number, cutoff: Date | undefined, skipLocked: boolean) {
    let deleted = 0;
    let touched = 0;
    let group: Pending[] = [];
    let groupRows = 0;
    const flush = async () => {
      let pending = group;
      group = [];
      groupRows = 0;
      // Only the first chunk of a group passes over busy sessions: one trimmed part-way waits for its lock, so
      // that its bounds are refreshed when it is done.
      for (let first = true; pending.length > 0; first = false) {
        const chunk = await this.trimChunk(pending, keep, cutoff, skipLocked && first);
        deleted += chunk.deleted;
        touched += chunk.finishedTouched;
        pending = chunk.unfinished;
      }
    };
    for (const session of sessions) {
      const excess = Math.max(session.snapshot_count - keep, 0);
      if (excess === 0) continue;
      if (group.length > 0 && groupRows + excess > ROWS_PER_CHUNK) await flush();
      group.push({ ...session, touched: false });
      groupRows += excess;
    }
    await flush();
    return { deleted, sessions: touched };
  }

  /**
   * One transaction: locks the sessions, deletes up to ROWS_PER_CHUNK of their snapshots, and refreshes the
   * bounds of those it is done with. Answers the sessions that may have more to delete.
   */
  private async trimChunk(sessions: Pending[], keep: number, cutoff: Date | undefined, skipLocked: boolean) {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const { rows: locked } = await client.query<SessionCount>(lockSessionsStatement(sessions, skipLocked));
      const touchedBefore = new Set(sessions.filter((s) => s.touched).map(sessionKey));
      const shares: TrimShare[] = [];
      const unfinished: Pending[] = [];
      let left = ROWS_PER_CHUNK;
      for (const session of locked) {
        const excess = Math.max(session.snapshot_count - keep, 0);
        const budget = Math.min(excess, left);
        if (budget > 0) {
          shares.push({ service: session.service, session_id: session.session_id, keep, budget });
          left -= budget;
        } else if (excess > 0) {
          unfinished.push({ ...session, touched: touchedBefore.has(sessionKey(session)) });
        }
      }
      const { rows: trimmed } = shares.length
        ? await client.query<{ service: string; session_id: string; deleted: number; remaining: number }>(trimStatement(shares, cutoff))
        : { rows: [] };
      const byKey = new Map(trimmed.map((row) => [sessionKey(row), row]));
      const finishedTouched: Array<{ service: string; session_id: string }> = [];
      let deleted = 0;
      for (const share of shares) {
        const row = byKey.get(sessionKey(share));
        const deletedNow = row?.deleted ?? 0;
        deleted += deletedNow;
        const touched = deletedNow > 0 || touchedBefore.has(sessionKey(share));
        // A share used up whole may have left more to delete; anything less means the session is done.
        if (row && deletedNow === share.budget && row.remaining > keep) {
          unfinished.push({ service: share.service, session_id: share.session_id, snapshot_count: row.remaining, touched });
        } else if (touched) {
          finishedTouched.push(share);
        }
      }
      if (finishedTouched.length > 0) await client.query(refreshBoundsStatement(finishedTouched));
      await client.query("COMMIT");
      return { deleted, unfinished, finishedTouched: finishedTouched.length };
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }
}

const sessionKey = (session: { service: string; session_id: string }) => `${session.service}\u0000${session.session_id}`;
