import { z } from "zod";
import { SESSION_ID_PATTERN } from "./snapshot.js";

/**
 * The `reasoning` queue's `think` job (docs/architecture.md, "Reasoner"): one chain-of-thought run for one agent and
 * one symbol, whose return value is the decision. The producer (the trader, or any client) describes the
 * market as it sees it; the reasoner refreshes it when it starts or resumes the run.
 */

export const DECISION_ACTIONS = ["OPEN_LONG", "OPEN_SHORT", "CLOSE", "HOLD"] as const;
export const decisionActionSchema = z.enum(DECISION_ACTIONS);
export type DecisionAction = z.infer<typeof decisionActionSchema>;

export const agentIdSchema = z
  .string()
  .regex(SESSION_ID_PATTERN, "must be 1-128 characters from A-Z, a-z, 0-9, '_', '.', '-'");
export const tradingSymbolSchema = z
  .string()
  .regex(/^[A-Z][A-Z0-9.-]{0,11}$/, "must be an upper-case ticker such as AAPL or BRK.B");

const price = z.number().positive("must be a price > 0");

/** An open position in the symbol, as the producer's broker reports it. */
export const marketPositionSchema = z.strictObject({
  side: z.enum(["long", "short"]),
  qty: z.number().positive("must be > 0"),
  entryPrice: price,
});
export type MarketPosition = z.infer<typeof marketPositionSchema>;

/** What the producer knows about the symbol right now. Only `price` is required. */
export const marketContextSchema = z.strictObject({
  /** Last trade price. */
  price,
  /** Previous session's close, for the day's change. */
  previousClose: price.optional(),
  /** Shares traded today so far, and on an average day: their ratio tells whether volume is unusual. */
  volume: z.number().min(0, "must be ≥ 0").optional(),
  averageVolume: z.number().positive("must be > 0").optional(),
  /** Recent closing prices, oldest first (for trend and volatility). */
  recentCloses: z.array(price).max(250, "must hold at most 250 closes").optional(),
  /** The agent's open position in the symbol; null or absent when flat. */
  position: marketPositionSchema.nullable().optional(),
  asOf: z.iso.datetime({ offset: true, error: "must be an ISO-8601 timestamp" }).optional(),
});
export type MarketContext = z.infer<typeof marketContextSchema>;

export const MIN_ITERATIONS = 3;
/**
 * A sanity bound, not a storage one: retention spares unfinished sessions, so however long a run is, every
 * iteration a resume replays is kept. Each request carries the whole conversation so far, so a run far beyond
 * this would mostly pay to resend its own history.
 */
export const MAX_ITERATIONS = 500;

/** Data of a `think` job. */
export const thinkPayloadSchema = z.strictObject({
  agentId: agentIdSchema,
  symbol: tradingSymbolSchema,
  marketContext: marketContextSchema,
  /** Upper bound on model round trips before a decision is forced; the reasoner's default when absent. */
  maxIterations: z
    .number()
    .int("must be an integer")
    .min(MIN_ITERATIONS, `must be ≥ ${MIN_ITERATIONS} (gather, weigh, decide)`)
    .max(MAX_ITERATIONS, `must be ≤ ${MAX_ITERATIONS}`)
    .optional(),
  /**
   * A fork: the run starts from the first `iteration` steps of reasoning run `sessionId` (its current chain),
   * which the reasoner copies into this run's own checkpoints before thinking on; that run is left untouched.
   * 0 starts afresh on the same question. The steps copied must hold no decision, and `iteration` must leave
   * room below maxIterations to think on; otherwise the job is refused (`fork_unavailable`).
   */
  forkOf: z
    .strictObject({
      sessionId: z.string().regex(SESSION_ID_PATTERN, "must be 1-128 characters from A-Z, a-z, 0-9, '_', '.', '-'"),
      iteration: z.number().int("must be an integer").min(0, "must be ≥ 0").max(MAX_ITERATIONS, `must be ≤ ${MAX_ITERATIONS}`),
    })
    .optional(),
});
export type ThinkPayload = z.infer<typeof thinkPayloadSchema>;

export const decisionSchema = z.strictObject({
  action: decisionActionSchema,
  confidence: z.number().min(0, "must be between 0 and 1").max(1, "must be between 0 and 1"),
  rationale: z.string().trim().min(1, "must not be empty").max(4_000, "must be at most 4000 characters"),
});
export type Decision = z.infer<typeof decisionSchema>;

const count = z.number().int().min(0);

/** Return value of a `think` job: the decision, plus facts about how the run got there. */
export const thinkResultSchema = decisionSchema.extend({
  sessionId: z.string(),
  /** Iterations the whole run took, across every worker that worked on it. */
  iterations: count,
  /** True when this attempt continued from a checkpoint instead of starting over. */
  resumed: z.boolean(),
  /** Iterations restored from the checkpoint (0 on a fresh start). */
  resumedAtIteration: count,
  /** Model calls made by the attempt that finished the run (retries included). */
  modelCalls: count,
  /** Model calls the restored iterations had cost, not paid again thanks to the checkpoint. */
  modelCallsSaved: count,
  /** True when no valid decision came within maxIterations and the safe default (HOLD) was returned. */
  limitReached: z.boolean(),
});
export type ThinkResult = z.infer<typeof thinkResultSchema>;

/**
 * Job ids of `think` jobs double as session ids: `think.<agentId>.<n>`, unique per run. BullMQ refuses ':'
 * and all-digit custom ids; both are excluded here.
 */
export function thinkJobId(agentId: string, run: string | number): string {
  return `think.${agentId}.${run}`;
}

/** Why `jobId` cannot name a reasoning session, or undefined when it can. */
export function thinkJobIdProblem(jobId: string | undefined): string | undefined {
  if (jobId === undefined) return "the job has no id";
  if (!SESSION_ID_PATTERN.test(jobId)) return `job id "${jobId}" must be 1-128 characters from A-Z, a-z, 0-9, '_', '.', '-'`;
  if (/^\d+$/.test(jobId)) return `job id "${jobId}" is BullMQ's automatic id, which is not unique across queue resets`;
  return undefined;
}
