import {
  agentIdSchema,
  marketPositionSchema,
  MAX_ITERATIONS,
  thinkResultSchema,
  tradingSymbolSchema,
  type SnapshotKind,
  type StoredSnapshot,
} from "@savepoint/shared";
import { z } from "zod";
import { thoughtStepSchema } from "../engine/thought-step.js";

export const REASONER_SERVICE = "reasoner";
/** Version of the `state` below. A checkpoint of another version is not resumed (fresh start, with a warning). */
export const STATE_SCHEMA_VERSION = 1;

/** Small facts about the attempt that wrote a snapshot, repeated in each so any one of them can be read alone. */
export const runInfoSchema = z.strictObject({
  agentId: agentIdSchema,
  symbol: tradingSymbolSchema,
  maxIterations: z.number().int().min(1).max(MAX_ITERATIONS),
  /** The epoch: BullMQ's attemptsStarted when the attempt began. */
  attempt: z.number().int().min(0),
  /** host:pid of the worker process. */
  worker: z.string().max(300),
  /** When the attempt read the market: each attempt reasons on a fresh read, never on a checkpointed one. */
  marketAsOf: z.iso.datetime({ offset: true }),
  /** The market the attempt reasoned on, so a resumed run's trace shows where prices moved between attempts. */
  market: z
    .strictObject({
      /** broker: read from the broker at the attempt's start; job: the job's marketContext (no market data configured). */
      source: z.enum(["broker", "job"]),
      price: z.number().positive(),
      previousClose: z.number().positive().optional(),
      /** When the source observed the price, if it says. */
      quotedAt: z.iso.datetime({ offset: true }).optional(),
      position: marketPositionSchema.nullable(),
    })
    .optional(),
  /** The run is a fork: it started from the first `iteration` steps of run `sessionId`, copied into its own checkpoints. */
  forkOf: z.strictObject({ sessionId: z.string().max(128), iteration: z.number().int().min(0).max(MAX_ITERATIONS) }).optional(),
});
export type RunInfo = z.infer<typeof runInfoSchema>;

/**
 * The epoch at which the session's current chain of thought started from scratch. Steps of another chain
 * (abandoned after a corrupted or expired checkpoint) are never folded into this one.
 */
const chain = z.number().int().min(0);

/** Why a run was dead-lettered: its worker crashed too often, its attempts ran out, or the model refused it. */
export const DEAD_LETTER_CAUSES = ["stalled", "attempts_exhausted", "refused"] as const;
export type DeadLetterCause = (typeof DEAD_LETTER_CAUSES)[number];

// One state per snapshot kind. Only `iteration` snapshots carry a step, so bytes grow linearly with iterations.
const stateSchemas = {
  event: z.union([
    /** Written first by every attempt: fences off older owners at once. */
    z.strictObject({ event: z.literal("claimed"), run: runInfoSchema }),
    /**
     * The run failed for good and waits for a person (status `interrupted`, so retention spares its
     * checkpoints). An event, not a step: resuming after a re-drive continues from the steps before it.
     */
    z.strictObject({
      event: z.literal("dead_lettered"),
      cause: z.enum(DEAD_LETTER_CAUSES),
      reason: z.string(),
      attempt: z.number().int().min(0),
      worker: z.string().max(300),
    }),
  ]),
  iteration: z.strictObject({ chain, run: runInfoSchema, step: thoughtStepSchema }),
  interrupt: z.strictObject({
    event: z.literal("interrupted"),
    chain,
    run: runInfoSchema,
    /** The iteration that was under way and will be done again by whoever resumes. */
    atIteration: z.number().int().min(1),
    reason: z.string(),
  }),
  final: z.strictObject({ event: z.literal("completed"), chain, run: runInfoSchema, result: thinkResultSchema }),
} satisfies Partial<Record<SnapshotKind, z.ZodType>>;

export type ReasonerKind = keyof typeof stateSchemas;
export type CheckpointState<K extends ReasonerKind = ReasonerKind> = z.infer<(typeof stateSchemas)[K]>;

export type ParsedCheckpoint =
  | { ok: true; kind: "event"; state: CheckpointState<"event"> }
  | { ok: true; kind: "iteration"; state: CheckpointState<"iteration"> }
  | { ok: true; kind: "interrupt"; state: CheckpointState<"interrupt"> }
  | { ok: true; kind: "final"; state: CheckpointState<"final"> }
  | { ok: false; problem: string };

/** Reads a stored snapshot's state with this reasoner's schema; `problem` says why it cannot be used. */
export function parseCheckpoint(snapshot: Pick<StoredSnapshot, "kind" | "schemaVersion" | "state" | "epoch" | "seq">): ParsedCheckpoint {
  const where = `checkpoint ${snapshot.epoch}:${snapshot.seq}`;
  if (snapshot.schemaVersion !== STATE_SCHEMA_VERSION) {
    return { ok: false, problem: `${where} has schemaVersion ${snapshot.schemaVersion}; this reasoner reads ${STATE_SCHEMA_VERSION}` };
  }
  if (!(snapshot.kind in stateSchemas)) return { ok: false, problem: `${where} is of kind "${snapshot.kind}", which the reasoner never writes` };
  const kind = snapshot.kind as ReasonerKind;
  const parsed = stateSchemas[kind].safeParse(snapshot.state);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((issue) => `${issue.path.join(".") || "(state)"}: ${issue.message}`);
    return { ok: false, problem: `${where} (${kind}) does not match the state schema: ${issues.join("; ")}` };
  }
  return { ok: true, kind, state: parsed.data } as ParsedCheckpoint;
}
