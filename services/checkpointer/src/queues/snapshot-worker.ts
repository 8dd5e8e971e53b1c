import { Worker, type ConnectionOptions, type Job, type JobJson } from "bullmq";
import { createJobProcessor, JobRejectedError, serializeState, type Logger, type SnapshotEnvelope } from "@savepoint/shared";
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

/**
 * A Worker that keeps each job's data as Redis held it (the producer's JSON text), so the state can go to
 * Postgres as written instead of being serialized again: re-serializing 8 KB per snapshot was a tenth of
 * the checkpointer's CPU.
 */
class SnapshotJobWorker extends Worker {
  private readonly rawData = new WeakMap<Job, string>();

  protected override createJob(data: JobJson, jobId: string): Job {
    const job = super.createJob(data, jobId);
    this.rawData.set(job, data.data);
    return job;
  }

  envelopeJson(job: Job): string {
    return this.rawData.get(job) ?? JSON.stringify(job.data);
  }
}

/**
 * The envelope's JSON text, once its state is known to be storable. The text holds the state, so a text within
 * the limit with no \u escape at all needs no closer look; otherwise the state is serialized and checked.
 */
function storableEnvelopeJson(envelopeJson: string, envelope: SnapshotEnvelope, maxStateBytes: number): string {
  if (Buffer.byteLength(envelopeJson, "utf8") <= maxStateBytes && !envelopeJson.includes("\\u")) return envelopeJson;
  const serialized = serializeState(envelope.state, maxStateBytes);
  if ("message" in serialized) {
    throw new JobRejectedError(serialized.reason, `invalid snapshot: ${serialized.field}: ${serialized.message}`);
  }
  return envelopeJson;
}

/** Consumes `checkpoints`: validates each snapshot, hands it to the batched writer, answers once committed. */
export function createSnapshotWorker(options: SnapshotWorkerOptions): Worker {
  const { writer, metrics, logger, maxStateBytes } = options;
  let worker: SnapshotJobWorker;
  const processor = createJobProcessor("checkpoints", {
    snapshot: async (envelope, job) => {
      const envelopeJson = storableEnvelopeJson(worker.envelopeJson(job), envelope, maxStateBytes);
      const result = await writer.write({ envelope, envelopeJson });
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
  worker = new SnapshotJobWorker("checkpoints", processor, {
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
