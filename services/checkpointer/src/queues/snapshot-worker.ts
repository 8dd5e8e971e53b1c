import { Worker, type ConnectionOptions, type Job, type JobJson, type Processor } from "bullmq";
import { jobCatalog, JobRejectedError, type AnswerSender, type Logger, type QueueAddress } from "@savepoint/shared";
import { decodeSnapshot } from "../domain/snapshot-decoding.js";
import type { PendingSnapshot, PersistOutcome } from "../domain/snapshot-batch.js";
import type { CheckpointerMetrics } from "../metrics.js";
import type { SnapshotWriter } from "../store/snapshot-writer.js";
import { answering } from "./answering.js";

export interface SnapshotWorkerOptions {
  connection: ConnectionOptions;
  queue: QueueAddress;
  concurrency: number;
  lockDurationMs: number;
  maxStateBytes: number;
  writer: SnapshotWriter;
  answers: AnswerSender;
  metrics: CheckpointerMetrics;
  logger: Logger;
}

const JOB_NAMES = Object.keys(jobCatalog.checkpoints);
if (JOB_NAMES.join() !== "snapshot") {
  throw new Error(`the checkpointer's snapshot worker handles only "snapshot" jobs, but the checkpoints queue now has [${JOB_NAMES.join(", ")}]`);
}

/**
 * A Worker whose jobs keep their data as the JSON text Redis held (BullMQ would parse it into objects), for
 * `decodeSnapshot` to read: the state goes to Postgres as the producer wrote it, never parsed here.
 */
class SnapshotJobWorker extends Worker<string> {
  protected override createJob(data: JobJson, jobId: string): Job<string> {
    const job = super.createJob({ ...data, data: "null" }, jobId);
    job.data = data.data;
    return job;
  }
}

/**
 * Consumes one snapshot queue (`checkpoints`, `checkpoints-confirmed`, or a shard of either): decodes each snapshot against the catalog's envelope schema (its state left as text),
 * hands it to the batched writer, and answers once committed (on the reply path when the job names an inbox). This queue's one job is decoded here rather than
 * by createJobProcessor, which would parse every state.
 */
export function createSnapshotWorker(options: SnapshotWorkerOptions): Worker {
  const { writer, metrics, logger, maxStateBytes } = options;

  async function write(snapshot: PendingSnapshot & { stateCut: boolean }, text: string): Promise<PersistOutcome> {
    try {
      return await writer.write(snapshot);
    } catch (error) {
      if (!snapshot.stateCut || !(error instanceof JobRejectedError) || error.code !== "unstorable") throw error;
      // Postgres refused the state cut from the text. Decoding it whole names the field at fault, or (if the
      // text only repeated a key) gives a state Postgres takes.
      return writer.write(decodeSnapshot(text, maxStateBytes, { parseState: true }));
    }
  }

  const processor: Processor<string> = async (job) => {
    if (job.name !== "snapshot") {
      throw new JobRejectedError("unknown_job", `unknown job name "${job.name}" on queue "${options.queue.name}"; expected one of: snapshot`);
    }
    const snapshot = decodeSnapshot(job.data, maxStateBytes);
    const result = await write(snapshot, job.data);
    if (result.outcome === "stale") {
      const { head } = snapshot;
      throw new JobRejectedError(
        "stale_epoch",
        `stale epoch: ${head.service}/${head.sessionId} snapshot epoch ${head.epoch} seq ${head.seq} ` +
          `is below epoch ${result.highestEpoch}, already stored; another owner has taken over this session`,
      );
    }
    metrics.persisted.inc({ outcome: result.outcome });
    return { outcome: result.outcome };
  };

  const worker = new SnapshotJobWorker(options.queue.name, answering(options.answers, processor), {
    connection: options.connection,
    prefix: options.queue.prefix,
    concurrency: options.concurrency,
    lockDuration: options.lockDurationMs,
    stalledInterval: options.lockDurationMs,
    // A checkpointer killed mid-batch leaves its jobs stalled; they must come back, however often that happens.
    maxStalledCount: 100,
  });
  worker.on("failed", (job, error) => {
    if (error instanceof JobRejectedError) {
      metrics.rejected.inc({ reason: error.code });
      logger.warn({ jobId: job?.id, queue: options.queue.name, reason: error.code, problem: error.message }, "snapshot rejected");
    } else {
      logger.error({ jobId: job?.id, err: error, attempt: job?.attemptsMade }, "snapshot failed; it will be retried");
    }
  });
  worker.on("stalled", (jobId) => logger.warn({ jobId, queue: options.queue.name }, "snapshot job redelivered: the checkpointer holding it stopped"));
  worker.on("error", (error) => logger.error({ err: error }, "snapshot worker error"));
  return worker;
}
