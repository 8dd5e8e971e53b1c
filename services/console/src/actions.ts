import { randomBytes } from "node:crypto";
import { Queue } from "bullmq";
import {
  createRedisConnection,
  DecisionRequestError,
  redriveRun,
  RedriveRefusedError,
  requestDecision,
  requestStop,
  StopRefusedError,
  thinkJobId,
  thinkJobIdProblem,
  type Logger,
  type RedisConnection,
  type RedisTarget,
  type StopResult,
} from "@savepoint/shared";
import { z } from "zod";
import { MAX_VIEW_SNAPSHOTS } from "./api-schemas.js";
import type { ConsoleStore } from "./store.js";
import { reasoningView } from "./views/reasoning.js";

/**
 * Why an action was not done, as the API answers it (services/console/README.md lists them). The codes of the
 * shared re-drive and stop (no_job, not_dead_lettered, not_running, no_answer, not_confirmed, failed) pass through.
 */
export const ACTION_REFUSALS = [
  "read_only",
  "forbidden_origin",
  "unknown_action",
  "invalid_request",
  "not_found",
  "not_forkable",
  "not_stoppable",
  "no_job",
  "not_dead_lettered",
  "not_running",
  "no_answer",
  "not_confirmed",
  "failed",
  "unavailable",
] as const;
export type ActionRefusal = (typeof ACTION_REFUSALS)[number];

/** An action refused or not done: the HTTP status and code to answer, with a one-line message. */
export class ActionRefusedError extends Error {
  override name = "ActionRefusedError";
  constructor(
    readonly status: 400 | 403 | 404 | 409 | 503 | 504,
    readonly code: ActionRefusal,
    message: string,
  ) {
    super(message);
  }
}

export const forkInputSchema = z.strictObject({
  sessionId: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, "must be a reasoning session id"),
  iteration: z.number({ error: "must be a number" }).int("must be a whole number").min(0, "must be ≥ 0"),
});
export const redriveInputSchema = z.strictObject({ sessionId: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, "must be a reasoning session id") });
export const stopInputSchema = z.strictObject({
  sessionId: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, "must be a trading session id"),
  reason: z.string().max(500).optional(),
});

export interface Forked {
  action: "fork";
  sessionId: string;
  forkOf: { sessionId: string; iteration: number };
}
export interface Redriven {
  action: "redrive";
  sessionId: string;
  nextAttempt: number;
}
export interface Stopped extends StopResult {
  action: "stop";
}

/**
 * The console's actions. None writes Postgres: each goes through BullMQ to the service that owns it, a fork
 * and a re-drive to the reasoner (a new think job; the failed one moved back to wait, by the shared
 * redriveRun), a stop to the trader of the session (its control queue). The reads that decide whether an
 * action makes sense are the console's own, so most refusals come back at once with a code.
 */
export class ConsoleActions {
  private readonly connection: RedisConnection;
  private readonly reasoning: Queue;

  constructor(
    private readonly options: { redis: RedisTarget; queuePrefix: string; stopTimeoutMs: number; store: ConsoleStore; logger: Logger },
  ) {
    this.connection = createRedisConnection(options.redis, "producer", "console-actions");
    // Reported by the action that meets it (unavailable); the connection reconnects by itself.
    this.connection.on("error", (error: Error) => options.logger.debug({ problem: error.message }, "actions connection: Redis error"));
    this.reasoning = new Queue("reasoning", { connection: this.connection, prefix: options.queuePrefix });
    this.reasoning.on("error", () => undefined);
  }

  async close(): Promise<void> {
    await this.reasoning.close().catch(() => undefined);
    this.connection.disconnect();
  }

  /** A new reasoning run from the first `iteration` steps of `sessionId`; the source run is untouched. */
  async fork(input: z.infer<typeof forkInputSchema>): Promise<Forked> {
    const { sessionId, iteration } = input;
    const session = await this.options.store.session("reasoner", sessionId);
    if (!session) throw new ActionRefusedError(404, "not_found", `no reasoner session ${sessionId} is stored`);
    const view = reasoningView(await this.options.store.snapshots("reasoner", sessionId, MAX_VIEW_SNAPSHOTS));
    const refuse = (problem: string) => new ActionRefusedError(409, "not_forkable", `cannot fork ${sessionId} at iteration ${iteration}: ${problem}`);
    const attempt = view.attempts.at(-1);
    if (!view.agentId || !view.symbol || view.maxIterations === null || !attempt?.market) throw refuse("its checkpoints name no agent, symbol or market to start from");
    if (iteration > view.iterations.length) throw refuse(`it has ${view.iterations.length} iteration(s) stored`);
    const decided = view.iterations.slice(0, iteration).find((step) => step.decision);
    if (decided) throw refuse(`iteration ${decided.iteration} is its decision; fork from an iteration before it`);
    if (iteration >= view.maxIterations) throw refuse(`it allows ${view.maxIterations} iterations, which leaves none to think on`);
    const forkId = thinkJobId(view.agentId, `fork-${randomBytes(4).toString("hex")}`);
    const idProblem = thinkJobIdProblem(forkId);
    if (idProblem) throw refuse(`the fork's id would be invalid (${idProblem})`);
    const { market } = attempt;
    const forkOf = { sessionId, iteration };
    try {
      await requestDecision(this.reasoning, forkId, {
        agentId: view.agentId,
        symbol: view.symbol,
        maxIterations: view.maxIterations,
        // The reasoner reads the market afresh at the start of every attempt; this is what it falls back to.
        marketContext: { price: market.price, ...(market.previousClose === undefined ? {} : { previousClose: market.previousClose }) },
        forkOf,
      });
    } catch (error) {
      if (error instanceof DecisionRequestError) throw refuse(error.message);
      throw unavailable(error);
    }
    return { action: "fork", sessionId: forkId, forkOf };
  }

  async redrive(input: z.infer<typeof redriveInputSchema>): Promise<Redriven> {
    try {
      const redriven = await redriveRun(this.reasoning, input.sessionId);
      return { action: "redrive", ...redriven };
    } catch (error) {
      if (error instanceof RedriveRefusedError) throw new ActionRefusedError(error.code === "no_job" ? 404 : 409, error.code, error.message);
      throw unavailable(error);
    }
  }

  /** Asks the trader of the session to stop; resolves once its final checkpoint is written. */
  async stop(input: z.infer<typeof stopInputSchema>, requestedBy: string): Promise<Stopped> {
    const session = await this.options.store.session("trader", input.sessionId);
    if (!session) throw new ActionRefusedError(404, "not_found", `no trader session ${input.sessionId} is stored`);
    if (session.status !== "active") {
      throw new ActionRefusedError(409, "not_stoppable", `trader session ${input.sessionId} is ${session.status}, not active: nothing is trading it`);
    }
    const events = createRedisConnection(this.options.redis, "worker", "console-stop-events");
    events.on("error", () => undefined);
    try {
      const result = await requestStop(
        { connection: this.connection, eventsConnection: events, prefix: this.options.queuePrefix, timeoutMs: this.options.stopTimeoutMs },
        { sessionId: input.sessionId, requestedBy, ...(input.reason ? { reason: input.reason } : {}) },
      );
      return { action: "stop", ...result };
    } catch (error) {
      if (error instanceof StopRefusedError) {
        const status = error.code === "not_running" ? 409 : error.code === "failed" ? 409 : 504;
        throw new ActionRefusedError(status, error.code, error.message);
      }
      throw unavailable(error);
    } finally {
      events.disconnect();
    }
  }
}

const unavailable = (error: unknown) =>
  new ActionRefusedError(503, "unavailable", `Redis did not answer (${(error as Error).message}); nothing was done, try again once it does`);
