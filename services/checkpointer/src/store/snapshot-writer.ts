import { JobRejectedError, sessionShard, type Logger } from "@savepoint/shared";
import { MicroBatcher } from "../domain/micro-batcher.js";
import { dedupeBatch, type PendingSnapshot, type PersistOutcome } from "../domain/snapshot-batch.js";
import type { CheckpointerMetrics } from "../metrics.js";
import type { CheckpointStore } from "./checkpoint-store.js";
import type { DatabaseOutage } from "./database-outage.js";
import { isDataError, isRetryableConflict } from "./pg-errors.js";

export interface SnapshotWriterOptions {
  maxBatchSize: number;
  /** Batches written at once, each by its own lane (see `write`). */
  maxConcurrentFlushes: number;
}

const MAX_CONFLICT_RETRIES = 5;

/**
 * Writes snapshots to Postgres in batches, one transaction each, keeping per-snapshot answers: a snapshot's
 * promise resolves only after the transaction holding it has committed. Outages are waited out; a batch
 * that Postgres refuses for its data is split so that only the offending snapshot fails.
 */
export class SnapshotWriter {
  private readonly lanes: Array<MicroBatcher<PendingSnapshot, PersistOutcome>>;

  constructor(
    private readonly store: CheckpointStore,
    private readonly outage: DatabaseOutage,
    private readonly metrics: CheckpointerMetrics,
    private readonly logger: Logger,
    options: SnapshotWriterOptions,
  ) {
    this.lanes = Array.from(
      { length: options.maxConcurrentFlushes },
      () => new MicroBatcher<PendingSnapshot, PersistOutcome>((batch) => this.flush(batch), { maxBatchSize: options.maxBatchSize, maxConcurrentFlushes: 1 }),
    );
  }

  /**
   * Two batches holding the same session lock its row in turn, so batches flushed side by side only run in
   * parallel if their sessions differ: each session belongs to one lane (by the same hash that picks its
   * queue shard), and each lane writes one batch at a time.
   */
  write(snapshot: PendingSnapshot): Promise<PersistOutcome> {
    const { service, sessionId } = snapshot.head;
    return this.lanes[sessionShard(service, sessionId, this.lanes.length)]!.submit(snapshot);
  }

  private async flush(batch: PendingSnapshot[]): Promise<Array<PersistOutcome | Error>> {
    const { unique, indexOf } = dedupeBatch(batch);
    let outcomes: Array<PersistOutcome | Error>;
    try {
      outcomes = await this.persist(unique);
    } catch (error) {
      if (unique.length === 1) {
        outcomes = [this.asJobError(error)];
      } else {
        this.logger.warn({ err: error, batchSize: unique.length }, "batch refused by Postgres; writing its snapshots one by one");
        outcomes = [];
        for (const snapshot of unique) {
          outcomes.push(await this.persist([snapshot]).then((result) => result[0]!, (single) => this.asJobError(single)));
        }
      }
    }
    // A snapshot delivered twice within one batch was written once: its second copy is a duplicate.
    const answered = new Set<number>();
    return indexOf.map((index) => {
      const outcome = outcomes[index]!;
      if (answered.has(index) && !(outcome instanceof Error) && outcome.outcome === "stored") return { outcome: "duplicate" };
      answered.add(index);
      return outcome;
    });
  }

  private persist(unique: PendingSnapshot[]): Promise<PersistOutcome[]> {
    return this.outage.retryThroughOutage(async () => {
      for (let attempt = 1; ; attempt++) {
        const stopTimer = this.metrics.persistSeconds.startTimer();
        try {
          const outcomes = await this.store.persistBatch(unique);
          stopTimer();
          this.metrics.batchSize.observe(unique.length);
          return outcomes;
        } catch (error) {
          if (!isRetryableConflict(error) || attempt >= MAX_CONFLICT_RETRIES) throw error;
        }
      }
    });
  }

  private asJobError(error: unknown): Error {
    if (isDataError(error)) {
      return new JobRejectedError("unstorable", `Postgres refused this snapshot: ${(error as Error).message}`);
    }
    return error as Error;
  }
}
