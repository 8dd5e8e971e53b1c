import type { JobsOptions } from "bullmq";
import { bullmq } from "./commonjs.js";
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
import { stopRequestSchema, stopResultSchema } from "./schemas/session-control.js";
import { snapshotEnvelopeSchema, snapshotReceiptSchema } from "./schemas/snapshot.js";

interface JobContract {
  payload: z.ZodType;
  result: z.ZodType;
}

/**
 * Every queue, every job name on it, and the one payload and result type of each (docs/architecture.md, "Queues").
 * Producers and consumers are both typed from this table; a worker, built by createCatalogWorker, cannot start
 * without a handler for each of its queue's job names.
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
  // One BullMQ queue per running session, `trader-control.<sessionId>` (session-control.ts), not one fixed queue.
  "trader-control": {
    stop: { payload: stopRequestSchema, result: stopResultSchema },
  },
} as const satisfies Record<string, Record<string, JobContract>>;

type Catalog = typeof jobCatalog;
export type QueueName = keyof Catalog;
export type JobName<Q extends QueueName> = keyof Catalog[Q] & string;
type Contract<Q extends QueueName, J extends JobName<Q>> = Catalog[Q][J] extends JobContract ? Catalog[Q][J] : never;
export type JobPayload<Q extends QueueName, J extends JobName<Q>> = z.output<Contract<Q, J>["payload"]>;
export type JobInput<Q extends QueueName, J extends JobName<Q>> = z.input<Contract<Q, J>["payload"]>;
export type JobResult<Q extends QueueName, J extends JobName<Q>> = z.output<Contract<Q, J>["result"]>;

/** Catalog queues consumed as one BullMQ queue per session (traderControlQueueName), so never listed by name. */
const PER_SESSION_QUEUES: readonly QueueName[] = ["trader-control"];

/** The catalog's queues that each are one BullMQ queue of that name: what the board and the fleet page list. */
export const QUEUE_NAMES = (Object.keys(jobCatalog) as QueueName[]).filter((name) => !PER_SESSION_QUEUES.includes(name));

/**
 * How long finished jobs stay in Redis. Completed ones stay briefly so a hand-built producer's
 * `waitUntilFinished` can still read them (removing them at once races it); failed ones stay for a week so
 * people can see what was refused. The checkpoint client's own jobs are answered on its reply path
 * (replies.ts) and removed once completed.
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
  // A stop is asked once (requestStop withdraws one nobody took); finished ones stay a day, the queue being otherwise empty.
  "trader-control": { attempts: 1, removeOnComplete: { age: 24 * 3600, count: 100 }, removeOnFail: { age: 24 * 3600, count: 100 } },
};

/**
 * Why a worker refused a job, as it crosses the wire (docs/architecture.md, "Queues"): clients decide on these,
 * never on a message's wording.
 * - `invalid`: the payload does not parse (a field named in the message).
 * - `too_large`: the state is over the size limit.
 * - `unstorable`: Postgres cannot store the state (NUL characters, lone surrogates, …).
 * - `too_deep`: the state nests deeper than the depth limit.
 * - `stale_epoch`: the snapshot's epoch is below the session's highest; another owner has taken over.
 * - `unknown_job`: no such job name on that queue.
 * - `reused_job_id`: a `think` job's id belongs to an earlier run (the reasoner).
 * - `model_refused`: the model refused the request, which no retry changes (the reasoner).
 * - `fork_unavailable`: a fork's source run has no such steps to start from (the reasoner).
 * - `failed`: not refused for what it is, but failed on its last attempt (a fault that outlasted its retries).
 */
export const REFUSAL_CODES = [
  "invalid",
  "too_large",
  "unstorable",
  "too_deep",
  "stale_epoch",
  "unknown_job",
  "reused_job_id",
  "model_refused",
  "fork_unavailable",
  "failed",
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

/**
 * A job refused for what it is, not for a passing fault: it fails at once, without retries. `code` says why
 * (for clients and metrics); `message` tells the producer what to fix.
 */
export class JobRejectedError extends bullmq.UnrecoverableError {
  override name = "JobRejectedError";
  constructor(
    readonly code: Exclude<RefusalCode, "failed">,
    message: string,
  ) {
    super(message);
  }
}

/** Where a queue lives in Redis: BullMQ's queue name and key prefix. */
export interface QueueAddress {
  name: string;
  prefix: string;
}

/**
 * How many queues snapshot traffic is spread over on a Redis Cluster, per kind of save. Fixed, so that every
 * producer and every checkpointer agree without configuration.
 */
export const SNAPSHOT_QUEUE_SHARDS = 8;

/**
 * Which of `count` shards a session belongs to (FNV-1a of service and session, so all agree): its snapshot
 * queue on a cluster, and the checkpointer's writer lane.
 */
export function sessionShard(service: string, sessionId: string, count: number): number {
  let hash = 0x811c9dc5;
  for (const text of [service, sessionId]) {
    for (let index = 0; index < text.length; index++) hash = Math.imul(hash ^ text.charCodeAt(index), 0x01000193);
    hash = Math.imul(hash ^ 0, 0x01000193);
  }
  return (hash >>> 0) % count;
}

/**
 * The queues snapshots travel on. Fire-and-forget saves and confirmed saves have queues of their own, so a
 * confirmation never waits behind a backlog. On one Redis that is `checkpoints` and `checkpoints-confirmed`;
 * on a cluster one prefix is one slot, so each kind is sharded by session over SNAPSHOT_QUEUE_SHARDS queues
 * (`checkpoints-0` … `checkpoints-7`, `checkpoints-confirmed-0` …), shard i under its own hash tag `{prefix-i}`
 * so the shards spread over the masters. A session always maps to the same shard, so every per-session
 * guarantee holds as on one queue. `legacy` is plain `checkpoints`, consumed whatever the layout, for
 * producers that add `snapshot` jobs by hand.
 */
export function snapshotQueues(queuePrefix: string, sharded: boolean): { fireAndForget: QueueAddress[]; confirmed: QueueAddress[]; legacy: QueueAddress } {
  const legacy = { name: "checkpoints", prefix: queuePrefix };
  if (!sharded) return { fireAndForget: [legacy], confirmed: [{ name: "checkpoints-confirmed", prefix: queuePrefix }], legacy };
  const tag = queuePrefix.replace(/^\{|\}$/g, "");
  const shards = Array.from({ length: SNAPSHOT_QUEUE_SHARDS }, (_, shard) => ({ shard, prefix: `{${tag}-${shard}}` }));
  return {
    fireAndForget: shards.map(({ shard, prefix }) => ({ name: `checkpoints-${shard}`, prefix })),
    confirmed: shards.map(({ shard, prefix }) => ({ name: `checkpoints-confirmed-${shard}`, prefix })),
    legacy,
  };
}

/** Every queue a checkpointer consumes snapshots from: both kinds of save, and plain `checkpoints`. */
export function allSnapshotQueues(queuePrefix: string, sharded: boolean): QueueAddress[] {
  const { fireAndForget, confirmed, legacy } = snapshotQueues(queuePrefix, sharded);
  return [...new Set([legacy, ...fireAndForget, ...confirmed])];
}

/**
 * Every BullMQ queue of the job catalog, where it lives: the catalog's own queues under `queuePrefix`, with
 * `checkpoints` standing for every snapshot queue of the layout (`checkpoints-confirmed`, and on a cluster the
 * shards under their own hash tags). What the board shows and the checkpointer's queue metrics count; the
 * reply path's inboxes are plain lists, not queues.
 */
export function catalogQueues(queuePrefix: string, sharded: boolean): QueueAddress[] {
  return QUEUE_NAMES.flatMap((name) => (name === "checkpoints" ? allSnapshotQueues(queuePrefix, sharded) : [{ name, prefix: queuePrefix }]));
}

/** `epoch: must be ≥ 0; state: must be a JSON object` */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join(".") : "(payload)"}: ${issue.message}`)
    .join("; ");
}
