import {
  CheckpointStaleEpochError,
  CheckpointTimeoutError,
  describeIssues,
  type CheckpointPort,
  type CheckpointStats,
  type Logger,
  type SessionStatus,
  type SnapshotEnvelope,
  type SnapshotKind,
  type StoredSnapshot,
} from "@savepoint/shared";
import { TRADER_STATE_VERSION, traderStateSchema, TradingState } from "./state.js";

export const TRADER_SERVICE = "trader";
/** Snapshots kept per session when the session ends (the seed's default). */
export const DEFAULT_KEEP_COUNT = 100;
/** Every Nth checkpoint is logged, to show checkpointing is alive without flooding the log. */
const LOG_EVERY = 10;

/** Another trader claimed a higher epoch for this session and wrote with it: this one must stop. */
export class SessionTakenOverError extends Error {
  override name = "SessionTakenOverError";
}

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
 * The session's checkpoints through the shared client, in the seed's terms: createCheckpoint,
 * restoreFromLatestCheckpoint, getCheckpointStats, cleanupOldCheckpoints.
 *
 * Routine checkpoints (periodic, on fills) are durable in Redis before `createCheckpoint` returns and are
 * confirmed in the background, so a tick never waits for Postgres. A confirmation refused for a stale
 * epoch means another trader has taken the session over: `onTakenOver` is called once.
 */
export class SessionCheckpoints {
  private seq = 0;
  private createdCount = 0;
  private readonly confirmations = new Set<Promise<void>>();
  private takenOver: SessionTakenOverError | undefined;

  constructor(
    private readonly client: CheckpointPort,
    readonly owner: CheckpointOwner,
    private readonly logger: Logger,
    private readonly onTakenOver: (error: SessionTakenOverError) => void = () => undefined,
  ) {}

  /** Checkpoints created by this process. */
  get created(): number {
    return this.createdCount;
  }

  /** Queues a snapshot of `state` (durable in Redis on return) and confirms it in the background. */
  async createCheckpoint(state: TradingState, kind: SnapshotKind = "periodic", status: SessionStatus = "active"): Promise<void> {
    this.throwIfTakenOver();
    const envelope = this.envelope(state, kind, status);
    await new Promise<void>((queued, failed) => {
      let inRedis = false;
      const confirmation = this.client
        .saveAndConfirm(envelope, {
          onQueued: () => {
            inRedis = true;
            queued();
          },
        })
        .then(
          () => undefined,
          (error: unknown) => (inRedis ? this.confirmationFailed(error, envelope) : failed(error)),
        );
      this.confirmations.add(confirmation);
      void confirmation.finally(() => this.confirmations.delete(confirmation));
    });
    this.counted();
  }

  /** Saves a snapshot and resolves only once the checkpointer has committed it (shutdown, resume). */
  async createConfirmedCheckpoint(state: TradingState, kind: SnapshotKind, status: SessionStatus, timeoutMs?: number): Promise<void> {
    this.throwIfTakenOver();
    const envelope = this.envelope(state, kind, status);
    try {
      await this.client.saveAndConfirm(envelope, { timeoutMs });
    } catch (error) {
      throw this.asTakeOver(error) ?? error;
    }
    this.counted();
  }

  /** Waits for the background confirmations in flight. */
  async settle(): Promise<void> {
    await Promise.all([...this.confirmations]);
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

  private envelope(state: TradingState, kind: SnapshotKind, status: SessionStatus): SnapshotEnvelope {
    const takenAt = new Date();
    return {
      v: 1,
      service: TRADER_SERVICE,
      sessionId: this.owner.sessionId,
      ownerId: this.owner.ownerId,
      epoch: this.owner.epoch,
      seq: this.seq++,
      kind,
      status,
      schemaVersion: TRADER_STATE_VERSION,
      takenAt: takenAt.toISOString(),
      state: state.toSnapshot(takenAt),
    };
  }

  private counted(): void {
    this.createdCount += 1;
    if (this.createdCount % LOG_EVERY === 0) {
      this.logger.info({ sessionId: this.owner.sessionId, checkpoints: this.createdCount }, `💾 Checkpoint #${this.createdCount} created`);
    }
  }

  private confirmationFailed(error: unknown, envelope: SnapshotEnvelope): void {
    const first = this.takenOver === undefined;
    const takeOver = this.asTakeOver(error);
    if (takeOver) {
      if (first) this.onTakenOver(takeOver);
      return;
    }
    const at = { sessionId: envelope.sessionId, epoch: envelope.epoch, seq: envelope.seq, kind: envelope.kind };
    if (error instanceof CheckpointTimeoutError) {
      this.logger.warn({ ...at, problem: error.message }, "checkpoint not confirmed yet; it stays queued in Redis and is stored once the checkpointer catches up");
    } else {
      this.logger.error({ ...at, err: error }, "checkpoint refused by the checkpointer");
    }
  }

  private asTakeOver(error: unknown): SessionTakenOverError | undefined {
    if (!(error instanceof CheckpointStaleEpochError)) return undefined;
    this.takenOver ??= new SessionTakenOverError(
      `another trader has taken over session ${this.owner.sessionId} (this one holds epoch ${this.owner.epoch}, and the checkpointer has stored a higher one); stopping without placing further orders. ${error.message}`,
    );
    return this.takenOver;
  }

  private throwIfTakenOver(): void {
    if (this.takenOver) throw this.takenOver;
  }
}
