import { Queue, QueueEvents, type Job } from "bullmq";
import type { Redis } from "ioredis";
import type { z } from "zod";
import type { CheckpointPort } from "./checkpoint-port.js";
import { defaultJobOptions, describeIssues, jobCatalog, type JobInput, type JobName, type JobResult } from "./jobs.js";
import { createRedisConnection, waitForRedis } from "./redis.js";
import type { CheckpointStats, CleanupResult, HistoryRequest, LatestRequest, StatsRequest, CleanupRequest } from "./schemas/requests.js";
import {
  DEFAULT_MAX_STATE_BYTES,
  serializeState,
  serviceNameSchema,
  sessionIdSchema,
  snapshotEnvelopeSchema,
  snapshotJobId,
  type SnapshotEnvelope,
  type SnapshotReceipt,
  type StoredSnapshot,
} from "./schemas/snapshot.js";

/** The caller passed something the checkpointer would refuse; nothing was sent. */
export class CheckpointInputError extends Error {
  override name = "CheckpointInputError";
}
/** The checkpointer refused or failed the job; `message` is its reason (invalid field, stale epoch, …). */
export class CheckpointRejectedError extends Error {
  override name = "CheckpointRejectedError";
}
/**
 * The checkpointer refused a snapshot from an epoch below the highest it has stored for the session:
 * another owner has taken the session over, and this one must stop writing.
 */
export class CheckpointStaleEpochError extends CheckpointRejectedError {
  override name = "CheckpointStaleEpochError";
}
/** No answer in time: the checkpointer may be down, busy, or waiting for Postgres. */
export class CheckpointTimeoutError extends Error {
  override name = "CheckpointTimeoutError";
}

export interface CheckpointClientOptions {
  redisUrl: string;
  queuePrefix: string;
  /** How long `latest`, `history`, `stats` and `cleanup` wait for an answer. */
  requestTimeoutMs?: number;
  /** How long `saveAndConfirm` waits for the commit. */
  confirmTimeoutMs?: number;
  /** Refuse states larger than this before sending them (the checkpointer enforces its own limit too). */
  maxStateBytes?: number;
}

type RequestJob = JobName<"checkpoint-requests">;

/**
 * KEYS[1] the session's epoch counter; ARGV[1] the lowest acceptable epoch; ARGV[2] the counter's TTL in seconds.
 * One script, so two owners claiming at once always get different epochs.
 */
const CLAIM_EPOCH_SCRIPT = `
local stored = tonumber(redis.call('GET', KEYS[1]) or '-1')
local claimed = math.max(stored + 1, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], claimed, 'EX', tonumber(ARGV[2]))
return claimed`;
/** The counter only has to outlive concurrent claims; the checkpointer's stored epoch is the lasting fence. */
const EPOCH_COUNTER_TTL_SECONDS = 30 * 24 * 3600;

/**
 * The one way services talk to the checkpointer: save snapshots (fire-and-forget or confirmed after commit)
 * and ask for state. Inputs are checked here first, so a mistake surfaces in the caller with the field named.
 */
export class CheckpointClient implements CheckpointPort {
  private constructor(
    private readonly connection: Redis,
    private readonly snapshots: Queue,
    private readonly snapshotEvents: QueueEvents,
    private readonly requests: Queue,
    private readonly requestEvents: QueueEvents,
    private readonly settings: Required<Omit<CheckpointClientOptions, "redisUrl" | "queuePrefix">>,
    private readonly queuePrefix: string,
  ) {}

  static async connect(options: CheckpointClientOptions): Promise<CheckpointClient> {
    const connection = createRedisConnection(options.redisUrl, "producer", "checkpoint-client");
    try {
      await waitForRedis(connection);
    } catch (error) {
      connection.disconnect();
      throw error;
    }
    const prefix = options.queuePrefix;
    const eventsConnection = { url: options.redisUrl, maxRetriesPerRequest: null };
    const snapshots = new Queue("checkpoints", { connection, prefix, defaultJobOptions: defaultJobOptions.checkpoints });
    const requests = new Queue("checkpoint-requests", { connection, prefix, defaultJobOptions: defaultJobOptions["checkpoint-requests"] });
    const snapshotEvents = new QueueEvents("checkpoints", { connection: eventsConnection, prefix });
    const requestEvents = new QueueEvents("checkpoint-requests", { connection: eventsConnection, prefix });
    // Every pending confirmation or request listens on these; many at once is normal use, not a leak.
    for (const emitter of [snapshots, requests, snapshotEvents, requestEvents]) emitter.setMaxListeners(0);
    await Promise.all([snapshotEvents.waitUntilReady(), requestEvents.waitUntilReady()]);
    const settings = {
      requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
      confirmTimeoutMs: options.confirmTimeoutMs ?? 10_000,
      maxStateBytes: options.maxStateBytes ?? DEFAULT_MAX_STATE_BYTES,
    };
    return new CheckpointClient(connection, snapshots, snapshotEvents, requests, requestEvents, settings, prefix);
  }

  /** Queues a snapshot; resolves once Redis has it. The checkpointer persists it shortly after. */
  async save(envelope: SnapshotEnvelope): Promise<void> {
    await this.enqueueSnapshot(envelope);
  }

  /**
   * Queues a snapshot and resolves only after the checkpointer has committed it to Postgres; `onQueued` is
   * called as soon as Redis has it.
   */
  async saveAndConfirm(envelope: SnapshotEnvelope, options: { timeoutMs?: number; onQueued?: () => void } = {}): Promise<SnapshotReceipt> {
    const job = await this.enqueueSnapshot(envelope);
    options.onQueued?.();
    const timeoutMs = options.timeoutMs ?? this.settings.confirmTimeoutMs;
    return (await awaitResult(job, this.snapshotEvents, timeoutMs, "confirm snapshot")) as SnapshotReceipt;
  }

  /** The newest stored snapshot of a session (or of an owner's most recent session), or null. */
  latest(request: LatestRequest, options?: { timeoutMs?: number }): Promise<StoredSnapshot | null> {
    return this.request("latest", request, options);
  }

  /** A page of a session's snapshots, newest first. */
  history(request: HistoryRequest, options?: { timeoutMs?: number }): Promise<StoredSnapshot[]> {
    return this.request("history", request, options);
  }

  stats(request: StatsRequest = {}, options?: { timeoutMs?: number }): Promise<CheckpointStats> {
    return this.request("stats", request, options);
  }

  cleanup(request: CleanupRequest, options?: { timeoutMs?: number }): Promise<CleanupResult> {
    return this.request("cleanup", request, options);
  }

  /**
   * Claims a new owner generation (fencing epoch) for a session: max(last claimed + 1, atLeast), atomically
   * in Redis, so of two processes taking over the same session at once each gets its own epoch and the
   * checkpointer refuses the lower one's snapshots once the higher one has written. Pass atLeast = the
   * latest stored epoch + 1 so the claim also outranks owners whose claims have expired.
   */
  async claimEpoch(service: string, sessionId: string, atLeast = 0): Promise<number> {
    const problems: string[] = [];
    const serviceIssue = serviceNameSchema.safeParse(service).error?.issues[0];
    if (serviceIssue) problems.push(`service ${JSON.stringify(service)}: ${serviceIssue.message}`);
    const sessionIssue = sessionIdSchema.safeParse(sessionId).error?.issues[0];
    if (sessionIssue) problems.push(`sessionId ${JSON.stringify(sessionId)}: ${sessionIssue.message}`);
    if (!Number.isSafeInteger(atLeast) || atLeast < 0) problems.push(`atLeast: must be an integer ≥ 0 (got ${atLeast})`);
    if (problems.length > 0) throw new CheckpointInputError(`invalid epoch claim: ${problems.join("; ")}`);
    const key = `${this.queuePrefix}:checkpoint-epochs:${service}:${sessionId}`;
    const claimed = await this.connection.eval(CLAIM_EPOCH_SCRIPT, 1, key, atLeast, EPOCH_COUNTER_TTL_SECONDS);
    return Number(claimed);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.snapshotEvents.close(), this.requestEvents.close(), this.snapshots.close(), this.requests.close()]);
    this.connection.disconnect();
  }

  private async enqueueSnapshot(envelope: SnapshotEnvelope): Promise<Job> {
    const parsed = snapshotEnvelopeSchema.safeParse(envelope);
    if (!parsed.success) throw new CheckpointInputError(`invalid snapshot: ${describeIssues(parsed.error)}`);
    const serialized = serializeState(parsed.data.state, this.settings.maxStateBytes);
    if ("message" in serialized) throw new CheckpointInputError(`invalid snapshot: ${serialized.field}: ${serialized.message}`);
    return this.snapshots.add("snapshot", parsed.data, { jobId: snapshotJobId(parsed.data) });
  }

  private async request<J extends RequestJob>(
    name: J,
    input: JobInput<"checkpoint-requests", J>,
    options: { timeoutMs?: number } = {},
  ): Promise<JobResult<"checkpoint-requests", J>> {
    const contract = jobCatalog["checkpoint-requests"][name];
    const parsed = (contract.payload as z.ZodType).safeParse(input);
    if (!parsed.success) throw new CheckpointInputError(`invalid ${name} request: ${describeIssues(parsed.error)}`);
    // The checkpointer parses the payload again; it is sent as given, since parsing may change its shape.
    const job = await this.requests.add(name, input);
    const timeoutMs = options.timeoutMs ?? this.settings.requestTimeoutMs;
    return (await awaitResult(job, this.requestEvents, timeoutMs, name)) as JobResult<"checkpoint-requests", J>;
  }
}

async function awaitResult(job: Job, events: QueueEvents, timeoutMs: number, what: string): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new CheckpointTimeoutError(
            `${what}: no answer from the checkpointer within ${timeoutMs} ms (job ${job.id} on "${job.queueName}"); is the checkpointer running and Postgres reachable?`,
          ),
        ),
      timeoutMs,
    );
  });
  // BullMQ's own wait gets a longer deadline so it never fires first; its late rejection is ignored.
  const finished = job.waitUntilFinished(events, timeoutMs + 60_000);
  finished.catch(() => undefined);
  try {
    return await Promise.race([finished, timedOut]);
  } catch (error) {
    if (error instanceof CheckpointTimeoutError) throw error;
    const reason = (error as Error).message;
    // The checkpointer's fencing refusal (see its snapshot worker) starts with these words.
    const Refusal = reason.startsWith("stale epoch:") ? CheckpointStaleEpochError : CheckpointRejectedError;
    throw new Refusal(`${what} refused by the checkpointer: ${reason}`);
  } finally {
    clearTimeout(timer);
  }
}
