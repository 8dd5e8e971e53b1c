import {
  ReasoningClient,
  ReasoningFailedError,
  ReasoningUnavailableError,
  thinkJobId,
  type JobInput,
  type Logger,
  type PendingDecision,
  type RedisTarget,
  type ThinkResult,
} from "@savepoint/shared";
import { RedisUnavailableError } from "../redis.js";
import { hold, type HeldPosition, type MarketSnapshot, type Signal, type Strategy } from "./strategy.js";

export interface ReasonerStrategyOptions {
  redis: RedisTarget;
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
 * Asks the reasoner for decisions through the shared ReasoningClient. A run takes longer than a tick, so each
 * symbol has at most one run in flight: the tick that starts it holds, and the first tick after it finishes
 * acts on its decision.
 */
export class ReasonerStrategy implements Strategy {
  readonly kind = "reasoner";
  private readonly runs = new Map<string, Run>();

  private constructor(
    private readonly options: ReasonerStrategyOptions,
    private readonly client: ReasoningClient,
  ) {}

  static async connect(options: ReasonerStrategyOptions): Promise<ReasonerStrategy> {
    const client = await ReasoningClient.connect({
      redis: options.redis,
      queuePrefix: options.queuePrefix,
      connectionName: "trader-reasoning",
      // Connection errors during an outage are reported by the ticks they fail (one line each), not as dumps.
      onRedisError: (error) => options.logger.debug({ problem: error.message }, "reasoning queue: Redis error"),
    });
    return new ReasonerStrategy(options, client);
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

  close(): Promise<void> {
    return this.client.close();
  }

  /** Queues the think job; a Redis that does not answer means this tick cannot be served. */
  private async request(jobId: string, payload: JobInput<"reasoning", "think">): Promise<PendingDecision> {
    try {
      return await this.client.request(jobId, payload);
    } catch (error) {
      if (error instanceof ReasoningUnavailableError) throw new RedisUnavailableError(`cannot ask the reasoner: ${error.message}`);
      throw error;
    }
  }

  private async startRun(market: MarketSnapshot, position: HeldPosition | null): Promise<void> {
    const jobId = thinkJobId(this.options.agentId, this.options.nextRun(market.symbol));
    const closes = market.bars.map((bar) => bar.c).slice(-MAX_CLOSES);
    const pending = await this.request(jobId, {
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
    pending.decision(this.options.timeoutMs).then(
      (result) => {
        run.outcome = { result };
      },
      (error: Error) => {
        const problem = error instanceof ReasoningFailedError ? error.reason : error.message;
        run.outcome = { error: problem };
        this.options.logger.warn({ jobId, symbol: market.symbol, problem }, "reasoning run failed; holding");
      },
    );
  }
}
