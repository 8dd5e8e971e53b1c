import type { z } from "zod";
import { checkEpochClaim, CheckpointInputError, CheckpointStaleEpochError } from "../checkpoint-client.js";
import type { CheckpointPort, SaveAndConfirmOptions } from "../checkpoint-port.js";
import { describeIssues } from "../jobs.js";
import {
  cleanupRequestSchema,
  historyRequestSchema,
  latestRequestSchema,
  statsRequestSchema,
  type CheckpointStats,
  type CleanupRequest,
  type CleanupResult,
  type HistoryRequest,
  type LatestRequest,
  type StatsRequest,
} from "../schemas/requests.js";
import {
  DEFAULT_MAX_STATE_BYTES,
  serializeState,
  snapshotEnvelopeSchema,
  type SessionStatus,
  type SnapshotEnvelope,
  type SnapshotReceipt,
  type StoredSnapshot,
} from "../schemas/snapshot.js";

interface StoredRow {
  snapshot: StoredSnapshot;
  bytes: number;
}

interface SessionRecord {
  ownerId: string | undefined;
  status: SessionStatus;
  /** The fencing token: the highest epoch any snapshot of the session has carried; it never falls. */
  highestEpoch: number;
  newest: { epoch: number; seq: number };
  /** When the newest position last advanced, for "the owner's most recently written session". */
  lastWrite: number;
  rows: Map<string, StoredRow>;
}

export interface InMemoryCheckpointsOptions {
  /** Refuse states larger than this, as the client and the checkpointer do (default 1 MiB). */
  maxStateBytes?: number;
  /** The clock persistedAt and cleanup's olderThanHours are read from. */
  now?: () => Date;
}

const after = (a: { epoch: number; seq: number }, b: { epoch: number; seq: number }) => a.epoch > b.epoch || (a.epoch === b.epoch && a.seq > b.seq);
const newestFirst = (a: StoredRow, b: StoredRow) => (after(a.snapshot, b.snapshot) ? -1 : after(b.snapshot, a.snapshot) ? 1 : 0);
const FINISHED: SessionStatus[] = ["completed", "stopped"];
const sessionKey = (service: string, sessionId: string) => `${service}\u0000${sessionId}`;

/**
 * A `CheckpointPort` in memory, for tests of domain logic that need no Redis, Postgres or checkpointer. It
 * keeps the checkpointer's guarantees (idempotent, monotonic latest, stale-epoch refusal, the client's input
 * checks) and answers at once; `packages/shared/test/checkpoint-port.contract.ts` runs the same suite against
 * it and the real checkpointer. A stored state is a copy of the one saved, as a JSON round trip makes it.
 */
export class InMemoryCheckpoints implements CheckpointPort {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly claimed = new Map<string, number>();
  private readonly maxStateBytes: number;
  private readonly now: () => Date;
  private writes = 0;

  constructor(options: InMemoryCheckpointsOptions = {}) {
    this.maxStateBytes = options.maxStateBytes ?? DEFAULT_MAX_STATE_BYTES;
    this.now = options.now ?? (() => new Date());
  }

  async save(envelope: SnapshotEnvelope): Promise<void> {
    // As with the real client, a stale snapshot is refused after the caller has moved on.
    this.store(envelope);
  }

  async saveAndConfirm(envelope: SnapshotEnvelope, options: SaveAndConfirmOptions = {}): Promise<SnapshotReceipt> {
    const outcome = this.store(envelope, options.onQueued);
    if (outcome.outcome === "stale") {
      const { service, sessionId, epoch, seq } = envelope;
      throw new CheckpointStaleEpochError(
        `confirm snapshot refused by the checkpointer: stale epoch: ${service}/${sessionId} snapshot epoch ${epoch} seq ${seq} ` +
          `is below epoch ${outcome.highestEpoch}, already stored; another owner has taken over this session`,
      );
    }
    return { outcome: outcome.outcome };
  }

  async latest(request: LatestRequest): Promise<StoredSnapshot | null> {
    const query = parseRequest("latest", latestRequestSchema, request);
    if ("sessionId" in query) {
      const session = this.sessions.get(sessionKey(query.service, query.sessionId));
      return session ? (newestRows(session)[0]?.snapshot ?? null) : null;
    }
    const owned = [...this.sessions.entries()]
      .filter(([key, session]) => key.startsWith(`${query.service}\u0000`) && session.ownerId === query.ownerId)
      .filter(([, session]) => query.statuses === undefined || query.statuses.includes(session.status))
      .map(([, session]) => session)
      .filter((session) => session.rows.size > 0)
      .sort((a, b) => b.lastWrite - a.lastWrite);
    return owned[0] ? (newestRows(owned[0])[0]?.snapshot ?? null) : null;
  }

  async history(request: HistoryRequest): Promise<StoredSnapshot[]> {
    const { service, sessionId, limit, before } = parseRequest("history", historyRequestSchema, request);
    const session = this.sessions.get(sessionKey(service, sessionId));
    if (!session) return [];
    return newestRows(session)
      .filter((row) => before === undefined || after(before, row.snapshot))
      .slice(0, limit)
      .map((row) => row.snapshot);
  }

  async stats(request: StatsRequest = {}): Promise<CheckpointStats> {
    const filter = parseRequest("stats", statsRequestSchema, request);
    const rows = [...this.matching(filter)].flatMap((session) => [...session.rows.values()]);
    const persisted = rows.map((row) => row.snapshot.persistedAt).sort();
    return {
      totalCheckpoints: rows.length,
      sessions: [...this.matching(filter)].filter((session) => session.rows.size > 0).length,
      oldestAt: persisted[0] ?? null,
      newestAt: persisted.at(-1) ?? null,
      bytes: rows.reduce((sum, row) => sum + row.bytes, 0),
    };
  }

  async cleanup(request: CleanupRequest): Promise<CleanupResult> {
    const { keepCount, olderThanHours, service, sessionId } = parseRequest("cleanup", cleanupRequestSchema, request);
    const cutoff = olderThanHours === undefined ? undefined : this.now().getTime() - olderThanHours * 3_600_000;
    let deleted = 0;
    for (const session of this.matching({ service, sessionId })) {
      // Across sessions only finished ones are trimmed: an unfinished one may need all it has to resume.
      if (sessionId === undefined && !FINISHED.includes(session.status)) continue;
      for (const row of newestRows(session).slice(keepCount)) {
        if (cutoff !== undefined && Date.parse(row.snapshot.persistedAt) >= cutoff) continue;
        session.rows.delete(rowKey(row.snapshot));
        deleted += 1;
      }
    }
    return { deleted };
  }

  async claimEpoch(service: string, sessionId: string, atLeast = 0): Promise<number> {
    checkEpochClaim(service, sessionId, atLeast);
    const key = sessionKey(service, sessionId);
    const epoch = Math.max((this.claimed.get(key) ?? -1) + 1, atLeast);
    this.claimed.set(key, epoch);
    return epoch;
  }

  async close(): Promise<void> {}

  private store(envelope: SnapshotEnvelope, onQueued?: () => void): { outcome: "stored" | "duplicate" } | { outcome: "stale"; highestEpoch: number } {
    const parsed = snapshotEnvelopeSchema.safeParse(envelope);
    if (!parsed.success) throw new CheckpointInputError(`invalid snapshot: ${describeIssues(parsed.error)}`);
    const serialized = serializeState(parsed.data.state, this.maxStateBytes);
    if ("message" in serialized) throw new CheckpointInputError(`invalid snapshot: ${serialized.field}: ${serialized.message}`);
    onQueued?.();

    const snapshot = parsed.data;
    const key = sessionKey(snapshot.service, snapshot.sessionId);
    const session = this.sessions.get(key) ?? {
      ownerId: snapshot.ownerId,
      status: snapshot.status,
      highestEpoch: snapshot.epoch,
      newest: { epoch: snapshot.epoch, seq: snapshot.seq },
      lastWrite: ++this.writes,
      rows: new Map<string, StoredRow>(),
    };
    this.sessions.set(key, session);
    if (session.rows.has(rowKey(snapshot))) return { outcome: "duplicate" };
    if (snapshot.epoch < session.highestEpoch) return { outcome: "stale", highestEpoch: session.highestEpoch };

    session.highestEpoch = snapshot.epoch;
    if (session.rows.size === 0 || after(snapshot, session.newest)) {
      session.newest = { epoch: snapshot.epoch, seq: snapshot.seq };
      session.ownerId = snapshot.ownerId ?? session.ownerId;
      session.status = snapshot.status;
      session.lastWrite = ++this.writes;
    }
    const { ownerId, ...rest } = snapshot;
    const stored: StoredSnapshot = {
      ...rest,
      ...(ownerId === undefined ? {} : { ownerId }),
      takenAt: new Date(snapshot.takenAt).toISOString(),
      persistedAt: this.now().toISOString(),
      state: JSON.parse(serialized.json) as Record<string, unknown>,
    };
    session.rows.set(rowKey(snapshot), { snapshot: stored, bytes: serialized.bytes });
    return { outcome: "stored" };
  }

  private *matching(filter: { service?: string; sessionId?: string }): Iterable<SessionRecord> {
    for (const [key, session] of this.sessions) {
      const [service, sessionId] = key.split("\u0000");
      if ((filter.service === undefined || filter.service === service) && (filter.sessionId === undefined || filter.sessionId === sessionId)) {
        yield session;
      }
    }
  }
}

function rowKey({ epoch, seq }: { epoch: number; seq: number }): string {
  return `${epoch}.${seq}`;
}

function newestRows(session: SessionRecord): StoredRow[] {
  return [...session.rows.values()].sort(newestFirst);
}

function parseRequest<S extends z.ZodType>(name: string, schema: S, request: unknown): z.output<S> {
  const parsed = schema.safeParse(request);
  if (!parsed.success) throw new CheckpointInputError(`invalid ${name} request: ${describeIssues(parsed.error)}`);
  return parsed.data;
}
