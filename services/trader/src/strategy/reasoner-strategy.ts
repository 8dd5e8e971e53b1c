import { Job, Queue, QueueEvents } from "bullmq";
import {
  createRedisConnection,
  DecisionRequestError,
  describeIssues,
  requestDecision,
  thinkJobId,
  thinkResultSchema,
  waitForRedis,
  type Logger,
  type ThinkResult,
} from "@savepoint/shared";
import { RedisUnavailableError } from "../redis.js";
import { hold, type HeldPosition, type MarketSnapshot, type Signal, type Strategy } from "./strategy.js";

export interface ReasonerStrategyOptions {
  redisUrl: string;
  queuePrefix: string;
  /** The reasoning agent's id: its runs are `think.<agentId>.<run>`. */
  agentId: string;
  /** How long to wait for one run's decision before giving up on it. */
  timeoutMs: number;
  /** A run name never used before for this agent, e.g. "<SYMBOL>.<n>" with n counted in the session state. */
  nextRun(symbol: string): string;
  logger: Logger;
}

/** Keep the market context within the think job's limits. */
const MAX_CLOSES = 250;

interface Run {
  jobId: string;
  outcome?: { result: ThinkResult } | { error: string };
}

/**
 * Asks the `reasoning` queue for decisions. A run takes longer than a tick, so each symbol has at most one
 * run in flight: the tick that starts it holds, and the first tick after it finishes acts on its decision.
 */
export class ReasonerStrategy implements Strategy {
  readonly kind = "reasoner";
  private readonly runs = new Map<string, Run>();

  private constructor(
    private readonly options: ReasonerStrategyOptions,
    private readonly connection: ReturnType<typeof createRedisConnection>,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
  ) {}

  static async connect(options: ReasonerStrategyOptions): Promise<ReasonerStrategy> {
    const connection = createRedisConnection(options.redisUrl, "producer", "trader-reasoning");
    await waitForRedis(connection);
    const queue = new Queue("reasoning", { connection, prefix: options.queuePrefix });
    const events = new QueueEvents("reasoning", { connection: { url: options.redisUrl, maxRetriesPerRequest: null }, prefix: options.queuePrefix });
    events.setMaxListeners(0);
    // Connection errors during an outage are reported by the ticks they fail (one line each), not as dumps.
    const reportError = (error: Error) => options.logger.debug({ problem: error.message }, "reasoning queue: Redis error");
    connection.on("error", reportError);
    queue.on("error", reportError);
    events.on("error", reportError);
    await events.waitUntilReady();
    return new ReasonerStrategy(options, connection, queue, events);
  }

  async decide(market: MarketSnapshot, position: HeldPosition | null): Promise<Signal> {
    const run = this.runs.get(market.symbol);
    if (run && !run.outcome) return hold(`waiting for reasoning run ${run.jobId}`);
    if (run?.outcome) {
      this.runs.delete(market.symbol);
      if ("error" in run.outcome) return hold(`reasoning run ${run.jobId} gave no decision: ${run.outcome.error}`);
      const { action, confidence, rationale } = run.outcome.result;
      return { action, reason: `reasoner (${run.jobId}, confidence ${confidence}): ${rationale}` };
    }
    await this.startRun(market, position);
    return hold(`asked the reasoner about ${market.symbol}`);
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.events.close(), this.queue.close()]);
    this.connection.disconnect();
  }

  /** Queues the think job; a Redis that does not answer means this tick cannot be served. */
  private async request(jobId: string, payload: Parameters<typeof requestDecision>[2]) {
    try {
      return await requestDecision(this.queue, jobId, payload);
    } catch (error) {
      if (error instanceof DecisionRequestError) throw error;
      throw new RedisUnavailableError(`cannot ask the reasoner (job ${jobId}): Redis does not answer (${(error as Error).message})`);
    }
  }

  private async startRun(market: MarketSnapshot, position: HeldPosition | null): Promise<void> {
    const jobId = thinkJobId(this.options.agentId, this.options.nextRun(market.symbol));
    const closes = market.bars.map((bar) => bar.c).slice(-MAX_CLOSES);
    const job = await this.request(jobId, {
      agentId: this.options.agentId,
      symbol: market.symbol,
      marketContext: {
        price: market.price,
        recentCloses: closes,
        volume: market.bars.at(-1)?.v,
        position: position ? { side: position.side, qty: position.qty, entryPrice: position.entryPrice } : null,
        asOf: market.asOf.toISOString(),
      },
    });
    const run: Run = { jobId };
    this.runs.set(market.symbol, run);
    this.finished(job, this.options.timeoutMs).then(
      (value: unknown) => {
        const parsed = thinkResultSchema.safeParse(value);
        run.outcome = parsed.success ? { result: parsed.data } : { error: `unexpected result: ${describeIssues(parsed.error)}` };
      },
      (error: Error) => {
        run.outcome = { error: error.message };
        this.options.logger.warn({ jobId, symbol: market.symbol, problem: error.message }, "reasoning run failed; holding");
      },
    );
  }

  /**
   * The job's return value, or its failure. Not BullMQ's `job.waitUntilFinished`: that reads the job's state
   * inside a promise executor, so Redis failing at that moment is an unhandled rejection, which ends the
   * process. Here that read is handled, and the job's events or the timeout settle the wait instead.
   */
  private finished(job: Job, timeoutMs: number): Promise<unknown> {
    const { queue } = this;
    // QueueEvents also emits each job's own events ("completed:<id>"), which its typings do not list.
    const events = this.events as unknown as NodeJS.EventEmitter;
    const id = job.id!;
    return new Promise((resolve, reject) => {
      const completed = `completed:${id}`;
      const failed = `failed:${id}`;
      let settled = false;
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        events.off(completed, onCompleted);
        events.off(failed, onFailed);
        outcome();
      };
      const onCompleted = ({ returnvalue }: { returnvalue: unknown }) => settle(() => resolve(returnvalue));
      const onFailed = ({ failedReason }: { failedReason: string }) => settle(() => reject(new Error(failedReason)));
      const timer = setTimeout(() => settle(() => reject(new Error(`no decision within ${timeoutMs} ms (job ${id})`))), timeoutMs);
      events.on(completed, onCompleted);
      events.on(failed, onFailed);
      // The job may have finished before the listeners were attached.
      Job.fromId(queue, id).then(
        async (stored) => {
          const state = await stored?.getState();
          if (state === "completed") onCompleted({ returnvalue: stored!.returnvalue });
          else if (state === "failed") onFailed({ failedReason: stored!.failedReason });
        },
        () => undefined,
      ).catch(() => undefined);
    });
  }
}
