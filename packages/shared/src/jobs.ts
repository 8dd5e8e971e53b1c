import { UnrecoverableError, type Job, type JobsOptions, type Processor } from "bullmq";
import type { z } from "zod";
import {
  cleanupRequestSchema,
  cleanupResultSchema,
  historyRequestSchema,
  historyResultSchema,
  latestRequestSchema,
  latestResultSchema,
  maintenanceRequestSchema,
  maintenanceResultSchema,
  statsRequestSchema,
  statsResultSchema,
} from "./schemas/requests.js";
import { thinkPayloadSchema, thinkResultSchema } from "./schemas/reasoning.js";
import { snapshotEnvelopeSchema, snapshotReceiptSchema } from "./schemas/snapshot.js";

interface JobContract {
  payload: z.ZodType;
  result: z.ZodType;
}

/**
 * Every queue, every job name on it, and the one payload and result type of each (docs/architecture.md, "Queues").
 * Producers and consumers are both typed from this table; a worker cannot start without a handler for each
 * of its queue's job names.
 */
export const jobCatalog = {
  checkpoints: {
    snapshot: { payload: snapshotEnvelopeSchema, result: snapshotReceiptSchema },
  },
  "checkpoint-requests": {
    latest: { payload: latestRequestSchema, result: latestResultSchema },
    history: { payload: historyRequestSchema, result: historyResultSchema },
    stats: { payload: statsRequestSchema, result: statsResultSchema },
    cleanup: { payload: cleanupRequestSchema, result: cleanupResultSchema },
  },
  "checkpoint-maintenance": {
    cleanup: { payload: maintenanceRequestSchema, result: maintenanceResultSchema },
  },
  reasoning: {
    think: { payload: thinkPayloadSchema, result: thinkResultSchema },
  },
} as const satisfies Record<string, Record<string, JobContract>>;

type Catalog = typeof jobCatalog;
export type QueueName = keyof Catalog;
export type JobName<Q extends QueueName> = keyof Catalog[Q] & string;
type Contract<Q extends QueueName, J extends JobName<Q>> = Catalog[Q][J] extends JobContract ? Catalog[Q][J] : never;
export type JobPayload<Q extends QueueName, J extends JobName<Q>> = z.output<Contract<Q, J>["payload"]>;
export type JobInput<Q extends QueueName, J extends JobName<Q>> = z.input<Contract<Q, J>["payload"]>;
export type JobResult<Q extends QueueName, J extends JobName<Q>> = z.output<Contract<Q, J>["result"]>;

export const QUEUE_NAMES = Object.keys(jobCatalog) as QueueName[];

/**
 * How long finished jobs stay in Redis. Completed ones stay briefly so `waitUntilFinished` can still read
 * them (removing them at once races it); failed ones stay for a week so people can see what was refused.
 */
const KEEP_COMPLETED = { age: 300, count: 5_000 };
const KEEP_FAILED = { age: 7 * 24 * 3600, count: 10_000 };

export const defaultJobOptions: Record<QueueName, JobsOptions> = {
  // Transient failures are retried; a Postgres outage is ridden out by the checkpointer without using attempts.
  checkpoints: {
    attempts: 8,
    backoff: { type: "exponential", delay: 500 },
    removeOnComplete: KEEP_COMPLETED,
    removeOnFail: KEEP_FAILED,
  },
  // A state request is answered now or not at all: the asker has a timeout and decides what to do.
  "checkpoint-requests": { attempts: 1, removeOnComplete: KEEP_COMPLETED, removeOnFail: { age: 3600, count: 1_000 } },
  "checkpoint-maintenance": { attempts: 3, backoff: { type: "exponential", delay: 5_000 }, removeOnComplete: 100, removeOnFail: 100 },
  // Attempts are spent only by failures (model or checkpointer unavailable past their own retries); each retry
  // resumes from the latest checkpoint. Shutdowns put the job back without spending one; crashes count as
  // stalls, bounded by the worker's maxStalledCount.
  reasoning: {
    attempts: 5,
    backoff: { type: "exponential", delay: 2_000 },
    removeOnComplete: KEEP_COMPLETED,
    removeOnFail: KEEP_FAILED,
  },
};

/**
 * A job refused for what it is, not for a passing fault: it fails at once, without retries. `reason` is a
 * short machine-readable label (for metrics); `message` tells the producer what to fix.
 */
export class JobRejectedError extends UnrecoverableError {
  override name = "JobRejectedError";
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** `epoch: must be ≥ 0; state: must be a JSON object` */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "(payload)"}: ${issue.message}`)
    .join("; ");
}

export type JobHandlers<Q extends QueueName> = {
  [J in JobName<Q>]: (payload: JobPayload<Q, J>, job: Job) => Promise<JobResult<Q, J>>;
};

/**
 * Builds the processor of a queue from one handler per job name. Fails at once if a job name of the catalog
 * has no handler (or a handler has no job name). At run time, an unknown job name or a payload that does not
 * parse fails that job without retries, naming the field.
 */
export function createJobProcessor<Q extends QueueName>(queue: Q, handlers: JobHandlers<Q>): Processor {
  const contracts = jobCatalog[queue] as Record<string, JobContract>;
  const expected = Object.keys(contracts).sort();
  const provided = Object.keys(handlers).sort();
  if (expected.join() !== provided.join()) {
    throw new Error(`queue "${queue}" needs exactly one handler per job name [${expected.join(", ")}]; got [${provided.join(", ")}]`);
  }
  const byName = handlers as Record<string, (payload: unknown, job: Job) => Promise<unknown>>;
  return async (job: Job) => {
    const contract = contracts[job.name];
    const handle = byName[job.name];
    if (!contract || !handle) {
      throw new JobRejectedError("unknown_job", `unknown job name "${job.name}" on queue "${queue}"; expected one of: ${expected.join(", ")}`);
    }
    const parsed = contract.payload.safeParse(job.data);
    if (!parsed.success) {
      throw new JobRejectedError("invalid", `invalid ${job.name} job: ${describeIssues(parsed.error)}`);
    }
    return handle(parsed.data, job);
  };
}
