import { WaitingError, type Job } from "bullmq";
import {
  JobRejectedError,
  thinkJobIdProblem,
  type CheckpointClient,
  type Logger,
  type ThinkPayload,
  type ThinkResult,
} from "@savepoint/shared";
import { RunInterruptedError, type ChainOfThought } from "../engine/chain-of-thought.js";
import { emptyThinkingState, foldSteps, type ThinkingState } from "../engine/thinking-state.js";
import type { ReasonerMetrics } from "../metrics.js";
import { ModelRequestError } from "../model/reasoning-model.js";
import { planResume, type ResumePlan } from "../session/resume-plan.js";
import { SessionCheckpoints, SessionLostError } from "../session/session-checkpoints.js";
import type { MarketDataSource, MarketSnapshot } from "../tools/market-data.js";

/** Abort reason: the process is shutting down; the run is checkpointed and its job requeued. */
export class ShutdownRequested extends Error {
  override name = "ShutdownRequested";
}
/** Abort reason: BullMQ could not renew the job's lock; another worker may own the job already. */
export class LockLost extends Error {
  override name = "LockLost";
}

export interface ThinkRunnerOptions {
  checkpoints: CheckpointClient;
  engine: ChainOfThought;
  market: MarketDataSource;
  metrics: ReasonerMetrics;
  logger: Logger;
  defaultMaxIterations: number;
  checkpointTtlMs: number;
  checkpointTimeoutMs: number;
  /** Budget for the interrupt snapshot on shutdown, so the job is requeued within the shutdown deadline. */
  interruptTimeoutMs: number;
  /** host:pid, recorded in every snapshot. */
  worker: string;
}

/** An attempt that has claimed its session and knows where its run stands. */
interface Attempt {
  sessionId: string;
  maxIterations: number;
  market: MarketSnapshot;
  session: SessionCheckpoints;
  log: Logger;
  /** The epoch at which the chain being continued (or started) began. */
  chain: number;
  restored: ThinkingState;
}

/**
 * One attempt of a `think` job: claim the session (fencing older owners), resume from its checkpoints or
 * start fresh, think with a checkpoint after every iteration, and finish with a confirmed final snapshot.
 * The session id is the job id; the epoch is BullMQ's attemptsStarted, which grows each time the job
 * becomes active (after a requeue, a retry or a stall).
 */
export class ThinkRunner {
  constructor(private readonly options: ThinkRunnerOptions) {}

  async run(payload: ThinkPayload, job: Job, signal: AbortSignal): Promise<ThinkResult> {
    const idProblem = thinkJobIdProblem(job.id);
    if (idProblem) {
      throw new JobRejectedError("invalid", `think job refused: ${idProblem}; give each think job an id such as think.<agentId>.<n> (thinkJobId)`);
    }
    // Shut down between fetching the job and starting it: hand it straight back.
    if (signal.aborted) return this.requeue(job);
    const start = await this.begin(payload, job);
    if ("result" in start) return start.result;
    return this.think(start, payload, job, signal);
  }

  /** Claims the session, then reads it: the stored result of a finished run, or where to start thinking. */
  private async begin(payload: ThinkPayload, job: Job): Promise<Attempt | { result: ThinkResult }> {
    const { metrics, logger } = this.options;
    const sessionId = job.id!;
    const epoch = job.attemptsStarted;
    const maxIterations = payload.maxIterations ?? this.options.defaultMaxIterations;
    const log = logger.child({ sessionId, agentId: payload.agentId, epoch });
    const market = await this.options.market.refresh(payload.symbol, payload.marketContext);
    const session = new SessionCheckpoints(this.options.checkpoints, {
      sessionId,
      run: { agentId: payload.agentId, symbol: payload.symbol, maxIterations, attempt: epoch, worker: this.options.worker, marketAsOf: market.asOf },
      confirmTimeoutMs: this.options.checkpointTimeoutMs,
      logger: log,
      onSaved: (kind, seconds) => metrics.checkpointSeconds.observe({ kind }, seconds),
    });

    const reused = `think job ${sessionId} (attempt ${epoch}) found its session already claimed by this or a later attempt: the job id was used for an earlier run. Give each run a new id (thinkJobId(agentId, n) with a new n)`;
    try {
      if ((await session.claim()) === "duplicate") throw new JobRejectedError("reused_job_id", reused);
    } catch (error) {
      if (error instanceof SessionLostError) throw new JobRejectedError("reused_job_id", `${reused}; ${error.message}`);
      throw error;
    }
    const history = await session.history();
    if (history.conflict) throw new JobRejectedError("reused_job_id", `${reused}: ${history.conflict}`);

    const plan: ResumePlan = planResume(history.earlier, { now: Date.now(), ttlMs: this.options.checkpointTtlMs });
    if (plan.kind === "completed") {
      metrics.runs.inc({ start: "already_completed" });
      log.info({ action: plan.result.action }, "run had already completed; returning its decision");
      // The claim made the session active again; the final snapshot is stored anew under this epoch.
      await session.saveCompleted(plan.chain, plan.result);
      return { result: plan.result };
    }
    if (plan.kind === "fresh" && plan.reason !== "new") {
      metrics.checkpointsDiscarded.inc({ reason: plan.reason });
      log.warn({ reason: plan.reason, problem: plan.problem }, "checkpoint not resumed; starting fresh");
    }
    const restored = plan.kind === "resume" ? foldSteps(plan.steps) : emptyThinkingState();
    const resumed = restored.steps.length > 0;
    metrics.runs.inc({ start: resumed ? "resumed" : "fresh" });
    metrics.modelCallsSaved.inc(restored.modelCalls);
    log.info(
      { resumedAtIteration: restored.steps.length, modelCallsSaved: restored.modelCalls, maxIterations },
      resumed ? "resuming run from checkpoint" : "starting run",
    );
    return { sessionId, maxIterations, market, session, log, chain: plan.kind === "resume" ? plan.chain : epoch, restored };
  }

  /** Runs the chain of thought to a decision, checkpointing each iteration; handles being stopped or failing. */
  private async think(attempt: Attempt, payload: ThinkPayload, job: Job, signal: AbortSignal): Promise<ThinkResult> {
    const { metrics } = this.options;
    const { session, log, chain, restored } = attempt;
    let completedIterations = restored.steps.length;
    try {
      const outcome = await this.options.engine.run(
        {
          sessionId: attempt.sessionId,
          agentId: payload.agentId,
          symbol: payload.symbol,
          maxIterations: attempt.maxIterations,
          market: attempt.market,
          restored,
        },
        {
          signal,
          onStep: async (step) => {
            await session.saveStep(chain, step);
            completedIterations = step.iteration;
            metrics.iterations.inc();
          },
        },
      );
      const result: ThinkResult = {
        ...outcome.decision,
        sessionId: attempt.sessionId,
        iterations: outcome.state.steps.length,
        resumed: restored.steps.length > 0,
        resumedAtIteration: restored.steps.length,
        modelCalls: outcome.modelCalls,
        modelCallsSaved: restored.modelCalls,
        limitReached: outcome.limitReached,
      };
      await session.saveCompleted(chain, result);
      metrics.decisions.inc({ action: result.action });
      log.info({ action: result.action, confidence: result.confidence, iterations: result.iterations, modelCalls: result.modelCalls }, "run completed");
      return result;
    } catch (error) {
      if (error instanceof RunInterruptedError && error.reason instanceof ShutdownRequested) {
        metrics.interruptions.inc({ cause: "shutdown" });
        await session.saveInterrupt(chain, error.atIteration, "shutdown", this.options.interruptTimeoutMs);
        log.info({ atIteration: error.atIteration }, "run interrupted by shutdown; checkpointed and requeued");
        return this.requeue(job);
      }
      if (error instanceof RunInterruptedError || error instanceof SessionLostError) {
        metrics.interruptions.inc({ cause: error instanceof SessionLostError ? "fenced" : "lock_lost" });
        log.warn({ err: error }, "lost the run to another worker; stopping without writing");
        throw error;
      }
      const refused = error instanceof ModelRequestError;
      if (refused || job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) {
        await session.saveFailed(chain, completedIterations, (error as Error).message).catch((saveError: unknown) => {
          log.warn({ err: saveError }, "could not record the failed run");
        });
      }
      if (refused) throw new JobRejectedError("model_refused", (error as Error).message);
      throw error;
    }
  }

  /** Puts the job back in the queue (at the front) without spending an attempt; BullMQ then leaves it alone. */
  private async requeue(job: Job): Promise<never> {
    await job.moveToWait(job.token);
    throw new WaitingError();
  }
}
