import type { CheckpointStats, CleanupRequest, CleanupResult, HistoryRequest, LatestRequest, StatsRequest } from "./schemas/requests.js";
import type { SnapshotEnvelope, SnapshotReceipt, StoredSnapshot } from "./schemas/snapshot.js";

export interface CheckpointRequestOptions {
  /** How long to wait for the answer; the implementation's default otherwise. */
  timeoutMs?: number;
}

export interface SaveAndConfirmOptions extends CheckpointRequestOptions {
  /** Called as soon as the snapshot is accepted for storing, before it is committed. */
  onQueued?: () => void;
}

/**
 * What a service needs from checkpoint storage, and all it may rely on (docs/architecture.md, "Guarantees"):
 * the same (service, sessionId, epoch, seq) is stored once; `latest` is the greatest (epoch, seq) stored;
 * a snapshot from an epoch below the session's highest is refused with `CheckpointStaleEpochError`; input
 * the checkpointer would refuse throws `CheckpointInputError` before anything is stored.
 * `CheckpointClient` implements it over BullMQ; `InMemoryCheckpoints` (`@savepoint/shared/testing`) in memory.
 */
export interface CheckpointPort {
  /** Stores a snapshot without waiting for the commit; a stale one is refused later, out of the caller's sight. */
  save(envelope: SnapshotEnvelope): Promise<void>;
  /**
   * Stores a snapshot and resolves once it is committed. Saving one already stored confirms it again
   * ("duplicate", or the first save's "stored" while its answer is still at hand) and stores nothing new.
   */
  saveAndConfirm(envelope: SnapshotEnvelope, options?: SaveAndConfirmOptions): Promise<SnapshotReceipt>;
  /** The newest stored snapshot of a session (or of an owner's most recently written session), or null. */
  latest(request: LatestRequest, options?: CheckpointRequestOptions): Promise<StoredSnapshot | null>;
  /** A page of a session's snapshots, newest first. */
  history(request: HistoryRequest, options?: CheckpointRequestOptions): Promise<StoredSnapshot[]>;
  stats(request?: StatsRequest, options?: CheckpointRequestOptions): Promise<CheckpointStats>;
  /** Deletes all but the newest `keepCount` snapshots of each matching session; fencing is kept. */
  cleanup(request: CleanupRequest, options?: CheckpointRequestOptions): Promise<CleanupResult>;
  /** A new owner generation for a session: max(last claimed + 1, atLeast), never the same twice. */
  claimEpoch(service: string, sessionId: string, atLeast?: number): Promise<number>;
  close(): Promise<void>;
}
