import type { Job, Queue, QueueEvents } from "bullmq";
import { bullmq } from "./commonjs.js";
import { namedError } from "./named-error.js";
import { DecisionRequestError, requestDecision } from "./decisions.js";
import { describeIssues, type JobInput } from "./jobs.js";
import { createRedisConnection, waitForRedis, type RedisConnection, type RedisTarget } from "./redis.js";
import { thinkResultSchema, type ThinkResult } from "./schemas/reasoning.js";

/** Redis did not answer: the think job was not queued, or its decision cannot be awaited. Try again later. */
export class ReasoningUnavailableError extends namedError("ReasoningUnavailableError") {}
/** No decision within the wait: the run may still finish (its decision is then the job's return value). */
export class ReasoningTimeoutError extends namedError("ReasoningTimeoutError") {}
/** The run ended without a decision (failed, refused, dead-lettered, or a result that is not a decision). */
export class ReasoningFailedError extends Error {
  override name = "ReasoningFailedError";
  constructor(
    message: string,
    /** Why, in the run's own words (its failedReason, or what is wrong with its result). */
    readonly reason: string,
  ) {
    super(message);
  }
}

export interface ReasoningClientOptions {
  /** The Redis the reasoner consumes from: a URL, or a cluster (see `redisTargetOf`). */
  redis?: RedisTarget;
  /** Shorthand for `redis: { url }`. */
  redisUrl?: string;
  queuePrefix: string;
  /** How long `decision` waits when not told otherwise. */
  decisionTimeoutMs?: number;
  /** How long `request` waits for Redis to take the job (default 5 s). */
  queueTimeoutMs?: number;
  /** The Redis client name, as `CLIENT LIST` shows it. */
  connectionName?: string;
  /**
   * Called with the connection's errors, which BullMQ and ioredis emit while Redis is away; the failed calls
   * throw `ReasoningUnavailableError` as well, so a caller that reports those can leave this quiet.
   */
  onRedisError?: (error: Error) => void;
}

/** A queued think job: its id (also the reasoning session's id) and a way to wait for its decision. */
export interface PendingDecision {
  jobId: string;
  /** The run's decision; ReasoningTimeoutError, ReasoningFailedError or ReasoningUnavailableError otherwise. */
  decision(timeoutMs?: number): Promise<ThinkResult>;
}

/**
 * A producer's client of the `reasoning` queue: requests decisions (think jobs) and waits for them with a
 * timeout. Every failure is typed: DecisionRequestError for a job the reasoner would refuse (nothing queued),
 * ReasoningUnavailableError when Redis does not answer, ReasoningTimeoutError, ReasoningFailedError.
 */
export class ReasoningClient {
  private constructor(
    private readonly connection: RedisConnection,
    private readonly eventsConnection: RedisConnection,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly decisionTimeoutMs: number,
    private readonly queueTimeoutMs: number,
  ) {}

  /** Connects to Redis (throws if it does not answer in time) and listens for the queue's events. */
  static async connect(options: ReasoningClientOptions): Promise<ReasoningClient> {
    const target = options.redis ?? { url: options.redisUrl ?? "redis://127.0.0.1:6379" };
    const name = options.connectionName ?? "reasoning-client";
    const connection = createRedisConnection(target, "producer", name);
    const onError = options.onRedisError ?? (() => undefined);
    connection.on("error", onError);
    try {
      await waitForRedis(connection);
    } catch (error) {
      connection.disconnect();
      throw error;
    }
    // QueueEvents blocks on its reads, so BullMQ runs it on a duplicate of the connection it is given; a worker's
    // (retrying forever) is what it needs, and on a cluster only an instance can say "cluster".
    const eventsConnection = createRedisConnection(target, "worker", `${name}-events`);
    eventsConnection.on("error", onError);
    const queue = new bullmq.Queue("reasoning", { connection, prefix: options.queuePrefix });
    const events = new bullmq.QueueEvents("reasoning", { connection: eventsConnection, prefix: options.queuePrefix });
    // Every pending decision listens on these; many at once is normal use, not a leak.
    queue.setMaxListeners(0);
    events.setMaxListeners(0);
    queue.on("error", onError);
    events.on("error", onError);
    await events.waitUntilReady();
    return new ReasoningClient(connection, eventsConnection, queue, events, options.decisionTimeoutMs ?? 120_000, options.queueTimeoutMs ?? 5_000);
  }

  /**
   * Queues a think job under `jobId` (see `thinkJobId`); queuing the same id again is harmless (BullMQ keeps
   * the first job, and its decision is the one awaited). While Redis reconnects BullMQ waits for it rather than
   * fail, so the wait is bounded: past it the job may still be queued once Redis is back, which is why a caller
   * that asks again later uses the same id.
   */
  async request(jobId: string, payload: JobInput<"reasoning", "think">): Promise<PendingDecision> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.queueTimeoutMs} ms`)), this.queueTimeoutMs);
    });
    let job: Job;
    try {
      const queued = requestDecision(this.queue, jobId, payload);
      queued.catch(() => undefined);
      job = await Promise.race([queued, timedOut]);
    } catch (error) {
      if (error instanceof DecisionRequestError) throw error;
      throw new ReasoningUnavailableError(`cannot queue think job ${jobId}: Redis does not answer (${(error as Error).message})`);
    } finally {
      clearTimeout(timer);
    }
    return { jobId, decision: (timeoutMs = this.decisionTimeoutMs) => this.awaitDecision(job, timeoutMs) };
  }

  /** Requests a decision and waits for it. */
  async decide(jobId: string, payload: JobInput<"reasoning", "think">, options: { timeoutMs?: number } = {}): Promise<ThinkResult> {
    return (await this.request(jobId, payload)).decision(options.timeoutMs);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.events.close(), this.queue.close()]);
    this.connection.disconnect();
    this.eventsConnection.disconnect();
  }

  /**
   * Waits for the job's `completed` or `failed` event, after checking once whether it finished before the
   * wait began. Not BullMQ's `waitUntilFinished`: that one checks from inside its promise, so a Redis gone
   * away at that moment is an unhandled rejection instead of an error for this caller.
   */
  private awaitDecision(job: Job, timeoutMs: number): Promise<ThinkResult> {
    const jobId = job.id!;
    // QueueEvents also emits each job's own events ("completed:<id>"), which its typings do not list; listening
    // to those spares every wait from seeing every other job's events.
    const events = this.events as unknown as NodeJS.EventEmitter;
    const completedEvent = `completed:${jobId}`;
    const failedEvent = `failed:${jobId}`;
    return new Promise<ThinkResult>((resolve, reject) => {
      let settled = false;
      const settle = (outcome: () => ThinkResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        events.off(completedEvent, onCompleted);
        events.off(failedEvent, onFailed);
        try {
          resolve(outcome());
        } catch (error) {
          reject(error as Error);
        }
      };
      const decided = (value: unknown) => () => {
        const parsed = thinkResultSchema.safeParse(value);
        if (!parsed.success) {
          const reason = `unexpected result: ${describeIssues(parsed.error)}`;
          throw new ReasoningFailedError(`think job ${jobId} returned something that is not a decision (${reason})`, reason);
        }
        return parsed.data;
      };
      const failed = (reason: string) => () => {
        throw new ReasoningFailedError(`think job ${jobId} gave no decision: ${reason}`, reason);
      };
      const onCompleted = (args: { returnvalue: unknown }) => settle(decided(args.returnvalue));
      const onFailed = (args: { failedReason: string }) => settle(failed(args.failedReason));
      const timer = setTimeout(
        () =>
          settle(() => {
            throw new ReasoningTimeoutError(`no decision from think job ${jobId} within ${timeoutMs} ms; is the reasoner running?`);
          }),
        timeoutMs,
      );
      events.on(completedEvent, onCompleted);
      events.on(failedEvent, onFailed);
      this.finishedAlready(jobId).then(
        (finished) => {
          if (finished?.state === "completed") settle(decided(finished.returnvalue));
          else if (finished?.state === "failed") settle(failed(finished.failedReason));
        },
        (error: unknown) =>
          settle(() => {
            throw new ReasoningUnavailableError(`cannot wait for think job ${jobId}: Redis does not answer (${(error as Error).message})`);
          }),
      );
    });
  }

  /** The job's outcome if it finished before the wait began (the events of that are gone). */
  private async finishedAlready(jobId: string): Promise<{ state: "completed"; returnvalue: unknown } | { state: "failed"; failedReason: string } | undefined> {
    await this.events.waitUntilReady();
    const state = await this.queue.getJobState(jobId);
    if (state !== "completed" && state !== "failed") return undefined;
    const job = await this.queue.getJob(jobId);
    if (!job) return undefined;
    return state === "completed" ? { state, returnvalue: job.returnvalue } : { state, failedReason: job.failedReason };
  }
}
