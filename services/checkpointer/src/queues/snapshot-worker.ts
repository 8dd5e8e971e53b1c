import { Worker, type ConnectionOptions } from "bullmq";
import { createJobProcessor, JobRejectedError, serializeState, type Logger } from "@savepoint/shared";
import type { CheckpointerMetrics } from "../metrics.js";
import type { SnapshotWriter } from "../store/snapshot-writer.js";

export interface SnapshotWorkerOptions {
  connection: ConnectionOptions;
  prefix: string;
  concurrency: number;
  lockDurationMs: number;
  maxStateBytes: number;
  writer: SnapshotWriter;
  metrics: CheckpointerMetrics;
  logger: Logger;
}

/** Consumes `checkpoints`: validates each snapshot, hands it to the batched writer, answers once committed. */
export function createSnapshotWorker(options: SnapshotWorkerOptions): Worker {
  const { writer, metrics, logger, maxStateBytes } = options;
  const processor = createJobProcessor("checkpoints", {
    snapshot: async (envelope) => {
      const serialized = serializeState(envelope.state, maxStateBytes);
      if ("message" in serialized) {
        throw new JobRejectedError(serialized.reason, `invalid snapshot: ${serialized.field}: ${serialized.message}`);
      }
      const result = await writer.write({ envelope, stateJson: serialized.json });
      if (result.outcome === "stale") {
        throw new JobRejectedError(
          "stale",
          `stale epoch: ${envelope.service}/${envelope.sessionId} snapshot epoch ${envelope.epoch} seq ${envelope.seq} ` +
            `is below epoch ${result.highestEpoch}, already stored; another owner has taken over this session`,
        );
      }
      metrics.persisted.inc({ outcome: result.outcome });
      return { outcome: result.outcome };
    },
  });
  const worker = new Worker("checkpoints", processor, {
    connection: options.connection,
    prefix: options.prefix,
    concurrency: options.concurrency,
    lockDuration: options.lockDurationMs,
    stalledInterval: options.lockDurationMs,
    // A checkpointer killed mid-batch leaves its jobs stalled; they must come back, however often that happens.
    maxStalledCount: 100,
  });
  worker.on("failed", (job, error) => {
    if (error instanceof JobRejectedError) {
      metrics.rejected.inc({ reason: error.reason });
      logger.warn({ jobId: job?.id, reason: error.reason, problem: error.message }, "snapshot rejected");
    } else {
      logger.error({ jobId: job?.id, err: error, attempt: job?.attemptsMade }, "snapshot failed; it will be retried");
    }
  });
  worker.on("error", (error) => logger.error({ err: error }, "snapshot worker error"));
  return worker;
}
