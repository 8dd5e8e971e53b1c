import {
  describeIssues,
  SessionWriter,
  type CheckpointPort,
  type CheckpointStats,
  type Logger,
  type SessionStatus,
  type SessionTakenOverError,
  type SnapshotKind,
  type StoredSnapshot,
} from "@savepoint/shared";
import { TRADER_STATE_VERSION, traderStateSchema, TradingState } from "./state.js";

export const TRADER_SERVICE = "trader";
/** Snapshots kept per session when the session ends (the seed's default). */
export const DEFAULT_KEEP_COUNT = 100;
/** Every Nth checkpoint is logged, to show checkpointing is alive without flooding the log. */
const LOG_EVERY = 10;

/** A stored checkpoint this trader cannot resume from. */
export class RestoreError extends Error {
  override name = "RestoreError";
}

export interface CheckpointOwner {
  sessionId: string;
  /** The broker account id: "the latest session of this account" finds it. */
  ownerId: string;
  /** This process's generation for the session (fencing). */
  epoch: number;
}

export interface RestoredSession {
  snapshot: StoredSnapshot;
  state: TradingState;
}

/** Which session to restore: a given one, or the account's latest that is active or interrupted. */
export type RestoreTarget = { sessionId: string } | { ownerId: string };

/**
 * The session's checkpoints through the shared session writer, in the seed's terms: createCheckpoint,
 * restoreFromLatestCheckpoint, getCheckpointStats, cleanupOldCheckpoints.
 *
 * `createCheckpoint` is durable in Redis on return; the trading loop's routine checkpoints (periodic, on fills)
 * are handed off (`handOffCheckpoint`) and queued right after, so a tick waits neither for Redis nor for
 * Postgres. Both are confirmed in the background. A confirmation refused for a stale
 * epoch means another trader has taken the session over: `onTakenOver` is called once.
 */
export class SessionCheckpoints {
  private createdCount = 0;
  private readonly writer: SessionWriter;

  constructor(
    private readonly client: CheckpointPort,
    readonly owner: CheckpointOwner,
    private readonly logger: Logger,
    onTakenOver: (error: SessionTakenOverError) => void = () => undefined,
  ) {
    this.writer = new SessionWriter(client, {
      service: TRADER_SERVICE,
      ...owner,
      schemaVersion: TRADER_STATE_VERSION,
      logger,
      describeTakeOver: ({ sessionId, epoch }) =>
        `another trader has taken over session ${sessionId} (this one holds epoch ${epoch}, and the checkpointer has stored a higher one); stopping without placing further orders.`,
      onTakenOver,
    });
  }

  /** Checkpoints created by this process. */
  get created(): number {
    return this.createdCount;
  }

  /** Queues a snapshot of `state` (durable in Redis on return) and confirms it in the background. */
  async createCheckpoint(state: TradingState, kind: SnapshotKind = "periodic", status: SessionStatus = "active"): Promise<void> {
    await this.writer.save({ kind, status, state: (takenAt) => state.toSnapshot(takenAt) });
    this.counted();
  }

  /**
   * Takes a snapshot of `state` now and returns at once, for the trading loop: it is queued in Redis right
   * after (see `accepted`) and confirmed in the background; a failure to queue it is logged, a take-over found
   * later reaches `onTakenOver`.
   */
  handOffCheckpoint(state: TradingState, kind: SnapshotKind = "periodic"): void {
    this.writer.handOff({ kind, status: "active", state: (takenAt) => state.toSnapshot(takenAt) });
    this.counted();
  }

  /** Resolves once every checkpoint created or handed off so far is queued in Redis (or failed to be). */
  accepted(): Promise<void> {
    return this.writer.accepted();
  }

  /** Saves a snapshot and resolves only once the checkpointer has committed it (shutdown, resume). */
  async createConfirmedCheckpoint(state: TradingState, kind: SnapshotKind, status: SessionStatus, timeoutMs?: number): Promise<void> {
    await this.writer.saveConfirmed({ kind, status, state: (takenAt) => state.toSnapshot(takenAt) }, { timeoutMs });
    this.counted();
  }

  /** Waits for the background confirmations in flight. */
  settle(): Promise<void> {
    return this.writer.settle();
  }

  getCheckpointStats(): Promise<CheckpointStats> {
    return this.client.stats({ service: TRADER_SERVICE, sessionId: this.owner.sessionId });
  }

  /** Deletes all but the newest `keepCount` snapshots of the session (only those older than the given age, if any). */
  async cleanupOldCheckpoints(options: { keepCount?: number; olderThanHours?: number } = {}): Promise<number> {
    const { deleted } = await this.client.cleanup({
      keepCount: options.keepCount ?? DEFAULT_KEEP_COUNT,
      olderThanHours: options.olderThanHours,
      service: TRADER_SERVICE,
      sessionId: this.owner.sessionId,
    });
    return deleted;
  }

  /** The newest snapshot of the target session, validated; null when there is none. */
  static async restoreFromLatestCheckpoint(client: CheckpointPort, target: RestoreTarget): Promise<RestoredSession | null> {
    const snapshot =
      "sessionId" in target
        ? await client.latest({ service: TRADER_SERVICE, sessionId: target.sessionId })
        : await client.latest({ service: TRADER_SERVICE, ownerId: target.ownerId, status: ["active", "interrupted"] });
    if (!snapshot) return null;
    const where = `checkpoint of session ${snapshot.sessionId} (epoch ${snapshot.epoch}, seq ${snapshot.seq})`;
    if (snapshot.schemaVersion !== TRADER_STATE_VERSION) {
      throw new RestoreError(
        `${where} has state schemaVersion ${snapshot.schemaVersion}; this trader reads version ${TRADER_STATE_VERSION}. Resume it with a matching trader version, or start a new session.`,
      );
    }
    const parsed = traderStateSchema.safeParse(snapshot.state);
    if (!parsed.success) {
      throw new RestoreError(`${where} does not hold a valid trader state (${describeIssues(parsed.error)}); start a new session, or resume another with --resume-session`);
    }
    return { snapshot, state: TradingState.fromSnapshot(parsed.data) };
  }

  private counted(): void {
    this.createdCount += 1;
    if (this.createdCount % LOG_EVERY === 0) {
      this.logger.info({ sessionId: this.owner.sessionId, checkpoints: this.createdCount }, `💾 Checkpoint #${this.createdCount} created`);
    }
  }
}
