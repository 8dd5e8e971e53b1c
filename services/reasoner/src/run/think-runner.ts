import { WaitingError, type Job } from "bullmq";
import {
  JobRejectedError,
  namedError,
  SessionTakenOverError,
  thinkJobIdProblem,
  thinkPayloadSchema,
  type CheckpointClient,
  type Logger,
  type ThinkPayload,
  type ThinkResult,
} from "@savepoint/shared";
import { RunInterruptedError, type ChainOfThought } from "../engine/chain-of-thought.js";
import { emptyThinkingState, foldSteps, type ThinkingState } from "../engine/thinking-state.js";
import type { ReasonerMetrics } from "../metrics.js";
import { ModelRequestError } from "../model/reasoning-model.js";
import type { DeadLetterCause, RunInfo } from "../session/checkpoint-state.js";
import type { ThoughtStep } from "../engine/thought-step.js";
import { currentChainSteps, planResume, type ResumePlan } from "../session/resume-plan.js";
import { readHistory, saveUnclaimedDeadLetter, SessionCheckpoints } from "../session/session-checkpoints.js";
import type { MarketDataSource, MarketSnapshot } from "../tools/market-data.js";
import { describeMarket, RunReport } from "./run-report.js";

/** How a person re-drives a dead-lettered run (see the README, "Dead letters"). */
export const REDRIVE_COMMAND = "npm run redrive -w @savepoint/reasoner --";

/** Abort reason: the process is shutting down; the run is checkpointed and its job requeued. */
export class ShutdownRequested extends namedError("ShutdownRequested") {}
/** Abort reason: BullMQ could not renew the job's lock; another worker may own the job already. */
export class LockLost extends namedError("LockLost") {}

/** `stop` ends the run after the iteration under way; `call` cancels the model call in flight. */
export interface RunSignals {
  stop: AbortSignal;
  call: AbortSignal;
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
  /**
   * Budget for each save after a shutdown began (the iteration answered during the call grace, then the
   * interrupt), so the job is requeued within the shutdown deadline.
   */
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
  report: RunReport;
  /** The epoch at which the chain being continued (or started) began. */
  chain: number;
  restored: ThinkingState;
}

/** What a snapshot records of the market an attempt reasons on: the figures, not the bars behind them. */
function marketRecord(market: MarketSnapshot): NonNullable<RunInfo["market"]> {
  return {
    source: market.source,
    price: market.price,
    ...(market.previousClose === undefined ? {} : { previousClose: market.previousClose }),
    ...(market.quotedAt === undefined ? {} : { quotedAt: market.quotedAt }),
    position: market.position,
  };
}

/**
 * One attempt of a `think` job: claim the session (fencing older owners), resume from its checkpoints or
 * start fresh, think with a checkpoint after every iteration, and finish with a confirmed final snapshot.
 * The session id is the job id; the epoch is BullMQ's attemptsStarted, which grows each time the job
 * becomes active (after a requeue, a retry or a stall).
 */
export class ThinkRunner {
  constructor(private readonly options: ThinkRunnerOptions) {}

  async run(payload: ThinkPayload, job: Job, signals: RunSignals): Promise<ThinkResult> {
    const idProblem = thinkJobIdProblem(job.id);
    if (idProblem) {
      throw new JobRejectedError("invalid", `think job refused: ${idProblem}; give each think job an id such as think.<agentId>.<n> (thinkJobId)`);
    }
    // Shut down between fetching the job and starting it: hand it straight back.
    if (signals.stop.aborted) return this.requeue(job);
    const start = await this.begin(payload, job);
    if ("result" in start) return start.result;
    return this.think(start, payload, job, signals);
  }

  /**
   * Records a run BullMQ failed because its worker crashed too often (see ThinkWorker): dead-lettered under the
   * attempt that found it, its checkpoints kept, visible in the job's log and progress and in the metrics.
   */
  async deadLetterStalled(job: Job, reason: string): Promise<void> {
    const payload = thinkPayloadSchema.safeParse(job.data);
    if (!payload.success || thinkJobIdProblem(job.id)) {
      this.options.logger.error({ sessionId: job.id, reason }, "think job failed after too many crashes");
      return;
    }
    await this.deadLetterUnclaimed(job, payload.data, "stalled", reason);
  }

  /** Dead-letters a run at an attempt that failed before claiming its session (seq 0 of that attempt's epoch is free). */
  private async deadLetterUnclaimed(job: Job, payload: ThinkPayload, cause: DeadLetterCause, reason: string): Promise<void> {
    const { metrics, logger } = this.options;
    const sessionId = job.id!;
    const log = logger.child({ sessionId, agentId: payload.agentId, epoch: job.attemptsStarted });
    metrics.deadLetters.inc({ cause });
    log.error({ cause, reason }, "run dead-lettered; its checkpoints are kept for a re-drive");
    try {
      await saveUnclaimedDeadLetter(this.options.checkpoints, {
        sessionId,
        agentId: payload.agentId,
        attempt: job.attemptsStarted,
        worker: this.options.worker,
        cause,
        reason,
        timeoutMs: this.options.checkpointTimeoutMs,
        logger: log,
      });
    } catch (error) {
      log.warn({ err: error }, "could not record the dead-lettered run");
    }
    const progress = typeof job.progress === "object" && job.progress !== null ? job.progress : {};
    const report = new RunReport(job, log, { of: payload.maxIterations ?? this.options.defaultMaxIterations, attempt: job.attemptsStarted }, progress);
    await report.write([deadLetterLine(cause, reason, sessionId)], { phase: "dead-lettered" });
  }

  /** Claims the session, then reads it: the stored result of a finished run, or where to start thinking. */
  private async begin(payload: ThinkPayload, job: Job): Promise<Attempt | { result: ThinkResult }> {
    const { metrics, logger } = this.options;
    const sessionId = job.id!;
    const epoch = job.attemptsStarted;
    const maxIterations = payload.maxIterations ?? this.options.defaultMaxIterations;
    const log = logger.child({ sessionId, agentId: payload.agentId, epoch });
    const report = new RunReport(job, log, { of: maxIterations, attempt: epoch });
    await report.write([`attempt ${epoch} by ${this.options.worker}: reading the market`]);
    let market: MarketSnapshot;
    try {
      market = await this.options.market.refresh(payload.symbol, payload.marketContext);
    } catch (error) {
      const message = (error as Error).message;
      if (isLastAttempt(job)) {
        await this.deadLetterUnclaimed(job, payload, "attempts_exhausted", `could not read the market: ${message}`);
      } else {
        await report.write([`attempt ${epoch}: could not read the market (${message}); the attempt fails and is retried`]);
      }
      throw error;
    }
    log.info({ market: market.source, price: market.price, quotedAt: market.quotedAt, position: market.position }, "market read");
    await report.write([describeMarket(market)]);
    // Read before the claim, so a fork that cannot start is refused without leaving a claimed, empty session.
    const forkSteps = payload.forkOf ? await this.forkSource(payload.forkOf, maxIterations) : undefined;
    const session = new SessionCheckpoints(this.options.checkpoints, {
      sessionId,
      run: {
        agentId: payload.agentId,
        symbol: payload.symbol,
        maxIterations,
        attempt: epoch,
        worker: this.options.worker,
        marketAsOf: market.asOf,
        market: marketRecord(market),
        ...(payload.forkOf ? { forkOf: payload.forkOf } : {}),
      },
      confirmTimeoutMs: this.options.checkpointTimeoutMs,
      logger: log,
      onSaved: (kind, seconds) => metrics.checkpointSeconds.observe({ kind }, seconds),
    });

    const reused = `think job ${sessionId} (attempt ${epoch}) found its session already claimed by this or a later attempt: the job id was used for an earlier run. Give each run a new id (thinkJobId(agentId, n) with a new n)`;
    try {
      if ((await session.claim()) === "duplicate") throw new JobRejectedError("reused_job_id", reused);
    } catch (error) {
      if (error instanceof SessionTakenOverError) throw new JobRejectedError("reused_job_id", `${reused}; ${error.message}`);
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
      await report.write([`the run had already completed: ${plan.result.action}; its decision is returned again`], { phase: "completed" });
      return { result: plan.result };
    }
    if (plan.kind === "fresh" && plan.reason !== "new") {
      metrics.checkpointsDiscarded.inc({ reason: plan.reason });
      log.warn({ reason: plan.reason, problem: plan.problem }, "checkpoint not resumed; starting fresh");
      await report.write([`checkpoint not resumed (${plan.reason}: ${plan.problem}); starting fresh`]);
    }
    let restored = plan.kind === "resume" ? foldSteps(plan.steps) : emptyThinkingState();
    const chain = plan.kind === "resume" ? plan.chain : epoch;
    // A fork's first attempt (or one that crashed while copying) copies the source's steps into its own chain.
    const forked = forkSteps !== undefined && restored.steps.length < forkSteps.length;
    if (forked) {
      for (const step of forkSteps.slice(restored.steps.length)) await session.saveStep(chain, step);
      restored = foldSteps(forkSteps);
      log.info({ forkOf: payload.forkOf }, `forked from ${payload.forkOf!.sessionId} at iteration ${forkSteps.length}: its steps copied into this run`);
      await report.write([`forked from run ${payload.forkOf!.sessionId}: its first ${forkSteps.length} iterations copied into this run's checkpoints`]);
    }
    const resumed = restored.steps.length > 0;
    metrics.runs.inc({ start: forked ? "forked" : resumed ? "resumed" : "fresh" });
    metrics.modelCallsSaved.inc(restored.modelCalls);
    log.info(
      { resumedAtIteration: restored.steps.length, modelCallsSaved: restored.modelCalls, maxIterations },
      resumed ? "resuming run from checkpoint" : "starting run",
    );
    await report.write(
      [
        resumed
          ? `resumed at iteration ${restored.steps.length} of ${maxIterations} from its checkpoints (${restored.modelCalls} model calls not paid again)`
          : `started at iteration 1 of ${maxIterations}`,
      ],
      { phase: "thinking", iteration: restored.steps.length, resumedAt: restored.steps.length, modelCalls: { made: 0, saved: restored.modelCalls } },
    );
    return { sessionId, maxIterations, market, session, log, report, chain, restored };
  }

  /**
   * The steps a fork starts from: the first `iteration` of the source run's current chain, read through the
   * checkpointer. Refused (fork_unavailable, no retry) when the source has fewer, when they hold its decision
   * (the fork would only repeat it), or when they leave no iteration to think on.
   */
  private async forkSource(forkOf: NonNullable<ThinkPayload["forkOf"]>, maxIterations: number): Promise<ThoughtStep[]> {
    const refuse = (problem: string) => new JobRejectedError("fork_unavailable", `cannot fork run ${forkOf.sessionId} at iteration ${forkOf.iteration}: ${problem}`);
    if (forkOf.iteration >= maxIterations) throw refuse(`the fork's maxIterations (${maxIterations}) leaves no iteration to think on; fork earlier or raise maxIterations`);
    if (forkOf.iteration === 0) return [];
    const source = currentChainSteps(await readHistory(this.options.checkpoints, forkOf.sessionId));
    if ("problem" in source) throw refuse(source.problem);
    if (source.steps.length < forkOf.iteration) throw refuse(`it has ${source.steps.length} iteration(s) stored; fork from one of them`);
    const steps = source.steps.slice(0, forkOf.iteration);
    const decided = steps.find((step) => step.decision);
    if (decided) throw refuse(`iteration ${decided.iteration} is its decision; fork from an iteration before it`);
    return steps;
  }

  /** Runs the chain of thought to a decision, checkpointing each iteration; handles being stopped or failing. */
  private async think(attempt: Attempt, payload: ThinkPayload, job: Job, signals: RunSignals): Promise<ThinkResult> {
    const { metrics } = this.options;
    const { session, log, report, chain, restored } = attempt;
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
          signal: signals.stop,
          callSignal: signals.call,
          onStep: async (step, state) => {
            // An answer that came in after the shutdown began is saved within the shutdown's budget.
            await session.saveStep(chain, step, signals.stop.aborted ? this.options.interruptTimeoutMs : undefined);
            completedIterations = step.iteration;
            metrics.iterations.inc();
            await report.step(step, state.modelCalls - restored.modelCalls);
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
      await report.write(
        [`completed after ${result.iterations} iterations: ${result.action} at confidence ${result.confidence} (${result.modelCalls} model calls by this attempt, ${result.modelCallsSaved} saved by resuming)`],
        { phase: "completed" },
      );
      return result;
    } catch (error) {
      if (error instanceof RunInterruptedError && error.reason instanceof ShutdownRequested) {
        metrics.interruptions.inc({ cause: "shutdown" });
        await session.saveInterrupt(chain, error.atIteration, "shutdown", this.options.interruptTimeoutMs);
        log.info({ atIteration: error.atIteration }, "run interrupted by shutdown; checkpointed and requeued");
        await report.write([`interrupted by a shutdown before iteration ${error.atIteration}; checkpointed and requeued`], { phase: "interrupted" });
        return this.requeue(job);
      }
      if (error instanceof RunInterruptedError || error instanceof SessionTakenOverError) {
        metrics.interruptions.inc({ cause: error instanceof SessionTakenOverError ? "fenced" : "lock_lost" });
        log.warn({ err: error }, "lost the run to another worker; stopping without writing");
        throw error;
      }
      const message = (error as Error).message;
      const refused = error instanceof ModelRequestError;
      if (refused || isLastAttempt(job)) {
        const cause: DeadLetterCause = refused ? "refused" : "attempts_exhausted";
        metrics.deadLetters.inc({ cause });
        log.error({ cause, reason: message, afterIteration: completedIterations }, "run dead-lettered; its checkpoints are kept for a re-drive");
        await session.saveDeadLettered(completedIterations, cause, message).catch((saveError: unknown) => {
          log.warn({ err: saveError }, "could not record the dead-lettered run");
        });
        await report.write([deadLetterLine(cause, message, attempt.sessionId)], { phase: "dead-lettered" });
      } else {
        await report.write([
          `attempt failed after iteration ${completedIterations}: ${message}; it is retried (${job.attemptsMade + 1} of ${job.opts.attempts ?? 1} attempts spent) and resumes from its checkpoints`,
        ]);
      }
      if (refused) throw new JobRejectedError("model_refused", message);
      throw error;
    }
  }

  /** Puts the job back in the queue (at the front) without spending an attempt; BullMQ then leaves it alone. */
  private async requeue(job: Job): Promise<never> {
    await job.moveToWait(job.token);
    throw new WaitingError();
  }
}

/** True when this attempt failing spends the job's last attempt (BullMQ then fails it for good). */
const isLastAttempt = (job: Job) => job.attemptsMade + 1 >= (job.opts.attempts ?? 1);

function deadLetterLine(cause: DeadLetterCause, reason: string, sessionId: string): string {
  return `dead-lettered (${cause}): ${reason}. Its checkpoints are kept; re-drive it from the last one with: ${REDRIVE_COMMAND} ${sessionId}`;
}
