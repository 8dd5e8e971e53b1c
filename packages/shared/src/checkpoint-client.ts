import type { JobsOptions, Queue, QueueOptions } from "bullmq";
import { bullmq } from "./commonjs.js";
import type { z } from "zod";
import type { CheckpointPort } from "./checkpoint-port.js";
import { namedError } from "./named-error.js";
import { defaultJobOptions, describeIssues, jobCatalog, sessionShard, snapshotQueues, type JobInput, type JobName, type JobResult, type QueueAddress, type RefusalCode } from "./jobs.js";
import { createRedisConnection, isCluster, waitForRedis, type RedisConnection, type RedisTarget } from "./redis.js";
import { ReplyInbox, type Answer } from "./replies.js";
import { TextDataQueue } from "./text-data-queue.js";
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
export class CheckpointInputError extends namedError("CheckpointInputError") {}
/** The checkpointer refused or failed the job: `code` says why, `message` says what to fix. */
export class CheckpointRejectedError extends Error {
  override name = "CheckpointRejectedError";
  constructor(
    readonly code: RefusalCode,
    message: string,
  ) {
    super(message);
  }
}
/**
 * The checkpointer refused a snapshot from an epoch below the highest it has stored for the session:
 * another owner has taken the session over, and this one must stop writing.
 */
export class CheckpointStaleEpochError extends CheckpointRejectedError {
  override name = "CheckpointStaleEpochError";
  constructor(message: string) {
    super("stale_epoch", message);
  }
}
/** No answer in time: the checkpointer may be down, busy, or waiting for Postgres, or Redis unreachable. */
export class CheckpointTimeoutError extends namedError("CheckpointTimeoutError") {}
/** Redis could not be reached to send the job; it may or may not have been queued. */
export class CheckpointUnavailableError extends namedError("CheckpointUnavailableError") {}
/** The client was closed while the call waited for its answer. */
export class CheckpointClientClosedError extends namedError("CheckpointClientClosedError") {}

/** Refuses an epoch claim the checkpointer could never fence on, naming each bad argument; shared by every CheckpointPort. */
export function checkEpochClaim(service: string, sessionId: string, atLeast: number): void {
  const problems: string[] = [];
  const serviceIssue = serviceNameSchema.safeParse(service).error?.issues[0];
  if (serviceIssue) problems.push(`service ${JSON.stringify(service)}: ${serviceIssue.message}`);
  const sessionIssue = sessionIdSchema.safeParse(sessionId).error?.issues[0];
  if (sessionIssue) problems.push(`sessionId ${JSON.stringify(sessionId)}: ${sessionIssue.message}`);
  if (!Number.isSafeInteger(atLeast) || atLeast < 0) problems.push(`atLeast: must be an integer ≥ 0 (got ${atLeast})`);
  if (problems.length > 0) throw new CheckpointInputError(`invalid epoch claim: ${problems.join("; ")}`);
}

export interface CheckpointClientOptions {
  /** The Redis the checkpointer consumes from: a URL, or a cluster (see `redisTargetOf`). */
  redis?: RedisTarget;
  /** Shorthand for `redis: { url }`. */
  redisUrl?: string;
  queuePrefix: string;
  /** How long `latest`, `history`, `stats` and `cleanup` wait for an answer. */
  requestTimeoutMs?: number;
  /** How long `saveAndConfirm` waits for the commit. */
  confirmTimeoutMs?: number;
  /** Refuse states larger than this before sending them (the checkpointer enforces its own limit too). */
  maxStateBytes?: number;
}

type RequestJob = JobName<"checkpoint-requests">;
type Settings = Required<Pick<CheckpointClientOptions, "requestTimeoutMs" | "confirmTimeoutMs" | "maxStateBytes">>;

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

/** Jobs answered on the reply path leave Redis once completed; refusals stay listed as failed jobs. */
const ANSWERED_JOB: JobsOptions = { removeOnComplete: true };

/**
 * The one way services talk to the checkpointer: save snapshots (fire-and-forget or confirmed after commit)
 * and ask for state. Inputs are checked here first, so a mistake surfaces in the caller with the field named.
 * Answers come back on this client's own reply path (replies.ts), never through QueueEvents.
 */
export class CheckpointClient implements CheckpointPort {
  private constructor(
    private readonly connection: RedisConnection,
    private readonly inbox: ReplyInbox,
    private readonly fireAndForget: TextDataQueue[],
    private readonly confirmed: TextDataQueue[],
    private readonly requests: Queue,
    private readonly settings: Settings,
    private readonly queuePrefix: string,
  ) {}

  static async connect(options: CheckpointClientOptions): Promise<CheckpointClient> {
    const target = options.redis ?? { url: options.redisUrl ?? "redis://127.0.0.1:6379" };
    const connection = createRedisConnection(target, "producer", "checkpoint-client");
    // Outages surface as typed errors of the calls they affect; the connection reconnects by itself.
    connection.on("error", () => undefined);
    try {
      await waitForRedis(connection);
    } catch (error) {
      connection.disconnect();
      throw error;
    }
    const prefix = options.queuePrefix;
    const open = <Q extends Queue>(QueueClass: new (name: string, options: QueueOptions) => Q, { name, prefix: keyPrefix }: QueueAddress, defaults: JobsOptions) => {
      const queue = new QueueClass(name, { connection, prefix: keyPrefix, defaultJobOptions: defaults });
      queue.on("error", () => undefined);
      return queue;
    };
    const layout = snapshotQueues(prefix, isCluster(target));
    const settings = {
      requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
      confirmTimeoutMs: options.confirmTimeoutMs ?? 10_000,
      maxStateBytes: options.maxStateBytes ?? DEFAULT_MAX_STATE_BYTES,
    };
    return new CheckpointClient(
      connection,
      new ReplyInbox(target, prefix),
      layout.fireAndForget.map((address) => open(TextDataQueue, address, defaultJobOptions.checkpoints)),
      layout.confirmed.map((address) => open(TextDataQueue, address, { ...defaultJobOptions.checkpoints, ...ANSWERED_JOB })),
      open(bullmq.Queue, { name: "checkpoint-requests", prefix }, { ...defaultJobOptions["checkpoint-requests"], ...ANSWERED_JOB }),
      settings,
      prefix,
    );
  }

  /** Queues a snapshot; resolves once Redis has it. The checkpointer persists it shortly after. */
  async save(envelope: SnapshotEnvelope): Promise<void> {
    const { snapshot, text } = this.checkSnapshot(envelope);
    await this.send("save snapshot", () => this.shardOf(this.fireAndForget, snapshot).add("snapshot", text, { jobId: snapshotJobId(snapshot) }));
  }

  /**
   * Queues a snapshot and resolves only after the checkpointer has committed it to Postgres; `onQueued` is
   * called as soon as Redis has it. Confirmed saves have queues of their own, so they never wait behind
   * fire-and-forget traffic. Each call is its own job; the checkpointer stores a snapshot once however often
   * it arrives, and answers `duplicate` for the copies.
   */
  async saveAndConfirm(envelope: SnapshotEnvelope, options: { timeoutMs?: number; onQueued?: () => void } = {}): Promise<SnapshotReceipt> {
    const { snapshot, text } = this.checkSnapshot(envelope);
    const queue = this.shardOf(this.confirmed, snapshot);
    const result = await this.call("confirm snapshot", options.timeoutMs ?? this.settings.confirmTimeoutMs, snapshotJobId(snapshot), queue.name, (jobId) =>
      queue.add("snapshot", text, { jobId }),
    options.onQueued);
    return result as SnapshotReceipt;
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
    checkEpochClaim(service, sessionId, atLeast);
    const key = `${this.queuePrefix}:checkpoint-epochs:${service}:${sessionId}`;
    const claimed = await this.connection.eval(CLAIM_EPOCH_SCRIPT, 1, key, atLeast, EPOCH_COUNTER_TTL_SECONDS);
    return Number(claimed);
  }

  async close(): Promise<void> {
    await this.inbox.close(() => new CheckpointClientClosedError("the checkpoint client was closed before the checkpointer answered"));
    await Promise.allSettled([...this.fireAndForget, ...this.confirmed, this.requests].map((queue) => queue.close()));
    this.connection.disconnect();
  }

  /**
   * The envelope as parsed, and its JSON text with the state serialized once, for the size check and the job
   * both: the other members, then the state last, as the checkpointer reads it (`splitEnvelopeText`).
   */
  private checkSnapshot(envelope: SnapshotEnvelope): { snapshot: SnapshotEnvelope; text: string } {
    const parsed = snapshotEnvelopeSchema.safeParse(envelope);
    if (!parsed.success) throw new CheckpointInputError(`invalid snapshot: ${describeIssues(parsed.error)}`);
    const serialized = serializeState(parsed.data.state, this.settings.maxStateBytes);
    if ("message" in serialized) throw new CheckpointInputError(`invalid snapshot: ${serialized.field}: ${serialized.message}`);
    const { state: _state, ...head } = parsed.data;
    return { snapshot: parsed.data, text: `${JSON.stringify(head).slice(0, -1)},"state":${serialized.json}}` };
  }

  private shardOf(queues: Queue[], snapshot: SnapshotEnvelope): Queue {
    return queues[sessionShard(snapshot.service, snapshot.sessionId, queues.length)]!;
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
    const timeoutMs = options.timeoutMs ?? this.settings.requestTimeoutMs;
    const result = await this.call(name, timeoutMs, name, this.requests.name, (jobId) => this.requests.add(name, input, { jobId }));
    return result as JobResult<"checkpoint-requests", J>;
  }

  /** Adds a job named for this client's inbox and waits for its answer: the result, or a typed refusal. */
  private async call(what: string, timeoutMs: number, label: string, queueName: string, add: (jobId: string) => Promise<unknown>, onQueued?: () => void): Promise<unknown> {
    const jobId = this.inbox.nextJobId(label);
    const wait = this.inbox.expect(jobId, timeoutMs, (redisReachable) =>
      new CheckpointTimeoutError(
        `${what}: no answer from the checkpointer within ${timeoutMs} ms (job ${jobId} on "${queueName}"); ` +
          (redisReachable ? "is the checkpointer running and Postgres reachable?" : "Redis is unreachable; check REDIS_URL or REDIS_CLUSTER_NODES"),
      ),
    );
    // The wait may end (time out) while the job is still being sent; it is awaited below either way.
    wait.answer.catch(() => undefined);
    try {
      await this.send(what, () => add(jobId));
    } catch (error) {
      wait.cancel();
      throw error;
    }
    onQueued?.();
    return resultOf(what, await wait.answer);
  }

  private async send<T>(what: string, add: () => Promise<T>): Promise<T> {
    try {
      return await add();
    } catch (error) {
      throw new CheckpointUnavailableError(`${what}: could not queue the job in Redis (${(error as Error).message}); it may or may not have been queued, so retry it`);
    }
  }
}

function resultOf(what: string, answer: Answer): unknown {
  if (answer.ok) return answer.result;
  // The checkpointer's fencing refusal: another owner has taken the session over.
  const message = `${what} refused by the checkpointer: ${answer.message}`;
  throw answer.code === "stale_epoch" ? new CheckpointStaleEpochError(message) : new CheckpointRejectedError(answer.code, message);
}
