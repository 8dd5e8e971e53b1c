import { Worker, type ConnectionOptions } from "bullmq";
import { createJobProcessor, JobRejectedError, type Logger } from "@savepoint/shared";
import type { ReasonerMetrics } from "../metrics.js";
import { LockLost, ShutdownRequested, type ThinkRunner } from "../run/think-runner.js";

const LOCK_RENEWAL_FAILURE = /^could not renew lock for job /;

export interface ThinkWorkerOptions {
  connection: ConnectionOptions;
  prefix: string;
  concurrency: number;
  lockDurationMs: number;
  maxStalledCount: number;
  runner: ThinkRunner;
  metrics: ReasonerMetrics;
  logger: Logger;
}

/**
 * Consumes `reasoning`. Each run in hand has an AbortController: closing aborts them all (their model calls
 * are cancelled, they are checkpointed and requeued), and a lock BullMQ could not renew aborts that run,
 * since another worker may already own it.
 */
export class ThinkWorker {
  readonly worker: Worker;
  private readonly runs = new Map<string, AbortController>();
  private closing = false;

  constructor(private readonly options: ThinkWorkerOptions) {
    const { logger, metrics } = options;
    const processor = createJobProcessor("reasoning", {
      think: async (payload, job) => {
        const controller = new AbortController();
        if (this.closing) controller.abort(new ShutdownRequested("shutting down"));
        this.runs.set(job.id!, controller);
        metrics.activeRuns.inc();
        try {
          return await options.runner.run(payload, job, controller.signal);
        } finally {
          this.runs.delete(job.id!);
          metrics.activeRuns.dec();
        }
      },
    });
    this.worker = new Worker("reasoning", processor, {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      lockDuration: options.lockDurationMs,
      // Checked twice per lock period, so a crashed worker's runs move elsewhere within ~1.5 lock durations.
      stalledInterval: Math.max(500, Math.floor(options.lockDurationMs / 2)),
      maxStalledCount: options.maxStalledCount,
    });
    this.worker.on("lockRenewalFailed", (jobIds) => {
      for (const jobId of jobIds) {
        logger.warn({ sessionId: jobId }, "could not renew the job lock; stopping the run");
        this.runs.get(jobId)?.abort(new LockLost(`lock of job ${jobId} lost`));
      }
    });
    this.worker.on("failed", (job, error) => {
      if (error instanceof JobRejectedError) {
        logger.warn({ sessionId: job?.id, reason: error.reason, problem: error.message }, "think job refused");
      } else {
        logger.error({ sessionId: job?.id, err: error, attempt: job?.attemptsMade }, "think job failed");
      }
    });
    this.worker.on("error", (error) => {
      // Already reported, with the run it stops, by the lockRenewalFailed handler.
      if (LOCK_RENEWAL_FAILURE.test(error.message)) return;
      logger.error({ err: error }, "reasoning worker error");
    });
  }

  waitUntilReady(): Promise<unknown> {
    return this.worker.waitUntilReady();
  }

  /** Stops taking jobs, interrupts the runs in hand (each is checkpointed and requeued) and waits for them. */
  async close(): Promise<void> {
    this.closing = true;
    const closed = this.worker.close();
    for (const controller of this.runs.values()) controller.abort(new ShutdownRequested("shutting down"));
    await closed;
  }
}
