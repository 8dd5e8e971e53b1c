import type { ConnectionOptions, Job, Processor, Worker } from "bullmq";
import { createCatalogWorker, JobRejectedError, TextDataWorker, type AnswerSender, type Logger, type QueueAddress } from "@savepoint/shared";
import { decodeSnapshot } from "../domain/snapshot-decoding.js";
import type { PendingSnapshot, PersistOutcome } from "../domain/snapshot-batch.js";
import type { CheckpointerMetrics } from "../metrics.js";
import type { SnapshotWriter } from "../store/snapshot-writer.js";
import { answering } from "./answering.js";

/** What `ConfirmationsFirst` needs to hear from a worker. */
export interface JobFlow {
  begin(): void;
  end(): void;
}

/** `processor`, telling `flow` when each job starts and settles. */
function reporting<T>(flow: JobFlow, processor: Processor<T>): Processor<T> {
  return async (job, token) => {
    flow.begin();
    try {
      return await processor(job, token);
    } finally {
      flow.end();
    }
  };
}

export interface SnapshotWorkerOptions {
  connection: ConnectionOptions;
  queue: QueueAddress;
  concurrency: number;
  lockDurationMs: number;
  maxStateBytes: number;
  writer: SnapshotWriter;
  /** Confirmed saves: each job starts as soon as it is fetched (`startJobsOnArrival`). */
  confirmed: boolean;
  /** Told when each job starts and settles (answer sent), for the confirmed queues' workers under confirmations first. */
  flow?: JobFlow;
  answers: AnswerSender;
  metrics: CheckpointerMetrics;
  logger: Logger;
}

/**
 * A Worker whose jobs keep their data as the JSON text Redis held (a TextDataWorker), for `decodeSnapshot` to
 * read: the state goes to Postgres as the producer wrote it, never parsed here.
 *
 * Its intake can be paused for certain (`pauseIntake`). BullMQ's `pause` only stops starting new fetches: a
 * fetch blocked waiting for a job when it is called still moves the next job to active when one arrives, and
 * a completion already on its way to Redis still takes the next job with it. Here every command that can make
 * a job active is counted while it runs and held back while paused, so once `pauseIntake` resolves the jobs in
 * hand are all the jobs this worker holds until `resumeIntake`.
 */
export class SnapshotJobWorker extends TextDataWorker {
  /** Commands on their way to Redis that may answer with a job made active for us. */
  private readonly taking = new Set<Promise<unknown>>();
  /** Set while intake is paused; resolved by `resumeIntake` or `close`. */
  private held: { released: Promise<void>; release: () => void } | undefined;
  /** See `startJobsOnArrival`. */
  private startsOnArrival = false;

  /**
   * Starts each fetched job at once. BullMQ's main loop fetches one job per round trip and goes on fetching
   * until the queue is empty or the worker full, and only then starts the jobs it has: the first of a burst of
   * confirmed saves would wait for a round trip per job behind it. The loop stops fetching to start what it has
   * when it sees a time to wait for delayed jobs (`blockUntil`); one long past, set after each job fetched, makes
   * it do that every time, and the next fetch or completion sets the real one again.
   */
  startJobsOnArrival(): void {
    this.startsOnArrival = true;
  }

  /** Stops taking jobs; resolves once no command that could still hand this worker a job is in flight. */
  async pauseIntake(): Promise<void> {
    if (!this.held) {
      let release = () => undefined as void;
      const released = new Promise<void>((resolve) => (release = resolve));
      this.held = { released, release };
    }
    await this.pause(true);
    while (this.taking.size > 0) await Promise.allSettled([...this.taking]);
  }

  resumeIntake(): void {
    this.releaseHeld();
    void this.resume();
  }

  override close(force?: boolean): Promise<void> {
    this.releaseHeld();
    return super.close(force);
  }

  // A fetch that was blocked waiting for a job when intake paused wakes here; it takes a job only once resumed.
  protected override async moveToActive(token: string, name?: string): Promise<Job<string>> {
    while (this.held) await this.held.released;
    if (this.closing) return undefined as unknown as Job<string>; // what BullMQ's own fetch answers when closing
    const job = await this.whileTaking(super.moveToActive(token, name));
    if (job && this.startsOnArrival) (this as unknown as { blockUntil: number }).blockUntil = 1;
    return job;
  }

  // A completion or failure sent before the pause may fetch the next job in the same command.
  protected override handleCompleted(...args: Parameters<Worker<string>["handleCompleted"]>): Promise<Job<string>> {
    return this.whileTaking(super.handleCompleted(...args));
  }

  protected override handleFailed(...args: Parameters<Worker<string>["handleFailed"]>): Promise<Job<string>> {
    return this.whileTaking(super.handleFailed(...args));
  }

  private whileTaking<T>(command: Promise<T>): Promise<T> {
    this.taking.add(command);
    void command.finally(() => this.taking.delete(command)).catch(() => undefined);
    return command;
  }

  private releaseHeld(): void {
    this.held?.release();
    this.held = undefined;
  }
}

/**
 * Consumes one snapshot queue (`checkpoints`, `checkpoints-confirmed`, or a shard of either): decodes each snapshot against the catalog's envelope schema (its state left as text),
 * hands it to the batched writer, and answers once committed (on the reply path when the job names an inbox). The catalog's handler for this queue's one job
 * takes the job's text (createCatalogWorker's text handlers), since parsing it by the catalog's schema would parse every state.
 */
export function createSnapshotWorker(options: SnapshotWorkerOptions): SnapshotJobWorker {
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

  const worker = createCatalogWorker(
    "checkpoints",
    {
      snapshot: async (text) => {
        const snapshot = decodeSnapshot(text, maxStateBytes);
        const result = await write(snapshot, text);
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
      },
    },
    {
      text: SnapshotJobWorker,
      queueName: options.queue.name,
      wrap: (processor) => {
        const answered = answering(options.answers, processor);
        return options.flow ? reporting(options.flow, answered) : answered;
      },
      connection: options.connection,
      prefix: options.queue.prefix,
      concurrency: options.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.lockDurationMs,
      // A checkpointer killed mid-batch leaves its jobs stalled; they must come back, however often that happens.
      maxStalledCount: 100,
    },
  );
  if (options.confirmed) worker.startJobsOnArrival();
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
