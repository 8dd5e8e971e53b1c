import type { ConnectionOptions, Worker } from "bullmq";
import { createCatalogWorker, JobRejectedError, type Logger } from "@savepoint/shared";
import type { ReasonerMetrics } from "../metrics.js";
import { LockLost, ShutdownRequested, type ThinkRunner } from "../run/think-runner.js";

/**
 * Whether a worker "error" is BullMQ's report of a lock it could not renew. BullMQ (6.x, its LockManager)
 * emits that as a plain Error with no type or code, so its wording is all there is to tell it by; the same
 * event also reaches the lockRenewalFailed handler, with the job ids, which is where it is handled.
 */
function isLockRenewalFailure(error: Error): boolean {
  return error.message.startsWith("could not renew lock for job ");
}

export interface ThinkWorkerOptions {
  connection: ConnectionOptions;
  prefix: string;
  concurrency: number;
  lockDurationMs: number;
  maxStalledCount: number;
  /** On close, how long a model call in flight may still answer before it is aborted. */
  callGraceMs: number;
  runner: ThinkRunner;
  metrics: ReasonerMetrics;
  logger: Logger;
  /** host:pid; BullMQ puts it in the worker's Redis client name, so CLIENT LIST (the console's fleet page) tells workers apart. */
  name: string;
}

/** How a run in hand is stopped: `stop` ends it after the iteration under way, `call` cancels its model call. */
interface RunControl {
  stop: AbortController;
  call: AbortController;
}

/** BullMQ's reason for failing a job whose worker stalled more than maxStalledCount times (moveStalledJobsToWait). */
const STALLED_TOO_OFTEN = "job stalled more than allowable limit";

/**
 * Consumes `reasoning`. Closing stops every run in hand after the iteration under way: a model call in flight
 * gets `callGraceMs` to answer (its answer is then checkpointed, not lost and paid again on resume) before
 * it is aborted; each run is then checkpointed and requeued. A lock BullMQ could not renew stops that run
 * and its call at once, since another worker may already own it.
 */
export class ThinkWorker {
  readonly worker: Worker;
  private readonly runs = new Map<string, RunControl>();
  private readonly graceTimers = new Set<NodeJS.Timeout>();
  private closing = false;

  constructor(private readonly options: ThinkWorkerOptions) {
    const { logger, metrics } = options;
    this.worker = createCatalogWorker(
      "reasoning",
      {
        think: async (payload, job) => {
          const control: RunControl = { stop: new AbortController(), call: new AbortController() };
          if (this.closing) this.shutDown(control);
          this.runs.set(job.id!, control);
          metrics.activeRuns.inc();
          try {
            return await options.runner.run(payload, job, { stop: control.stop.signal, call: control.call.signal });
          } finally {
            this.runs.delete(job.id!);
            metrics.activeRuns.dec();
          }
        },
      },
      {
        connection: options.connection,
        prefix: options.prefix,
        name: options.name,
        concurrency: options.concurrency,
        lockDuration: options.lockDurationMs,
        // Checked twice per lock period, so a crashed worker's runs move elsewhere within ~1.5 lock durations.
        stalledInterval: Math.max(500, Math.floor(options.lockDurationMs / 2)),
        maxStalledCount: options.maxStalledCount,
      },
    );
    this.worker.on("lockRenewalFailed", (jobIds) => {
      for (const jobId of jobIds) {
        logger.warn({ sessionId: jobId }, "could not renew the job lock; stopping the run");
        const control = this.runs.get(jobId);
        const reason = new LockLost(`lock of job ${jobId} lost`);
        control?.stop.abort(reason);
        control?.call.abort(reason);
      }
    });
    this.worker.on("failed", (job, error) => {
      if (job && error.message === STALLED_TOO_OFTEN) {
        void options.runner.deadLetterStalled(job, `the worker running it crashed (stalled) more than ${options.maxStalledCount} times`);
        return;
      }
      if (error instanceof JobRejectedError) {
        logger.warn({ sessionId: job?.id, reason: error.code, problem: error.message }, "think job refused");
      } else {
        logger.error({ sessionId: job?.id, err: error, attempt: job?.attemptsMade }, "think job failed");
      }
    });
    this.worker.on("error", (error) => {
      // Already reported, with the run it stops, by the lockRenewalFailed handler.
      if (isLockRenewalFailure(error)) return;
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
    for (const control of this.runs.values()) this.shutDown(control);
    try {
      await closed;
    } finally {
      for (const timer of this.graceTimers) clearTimeout(timer);
    }
  }

  private shutDown(control: RunControl): void {
    const reason = new ShutdownRequested("shutting down");
    control.stop.abort(reason);
    const timer = setTimeout(() => {
      this.graceTimers.delete(timer);
      control.call.abort(reason);
    }, this.options.callGraceMs);
    this.graceTimers.add(timer);
  }
}
