import { z } from "zod";
import type { StoredState } from "../store.js";
import { handovers, type Handover } from "./resumes.js";

/** The reasoner's state version the console reads (services/reasoner/src/session/checkpoint-state.ts). */
export const REASONER_STATE_VERSION = 1;

// What the console shows of the reasoner's states (one shape per snapshot kind), looser than the reasoner's
// own schemas: fields the pages do not show may change without breaking them.
const runSchema = z.looseObject({
  agentId: z.string(),
  symbol: z.string(),
  maxIterations: z.number().int(),
  attempt: z.number().int(),
  worker: z.string(),
  marketAsOf: z.string(),
  market: z.looseObject({ source: z.string(), price: z.number(), previousClose: z.number().optional() }).optional(),
  forkOf: z.looseObject({ sessionId: z.string(), iteration: z.number().int() }).optional(),
});
const stepSchema = z.looseObject({
  iteration: z.number().int().min(1),
  type: z.string(),
  text: z.string().optional(),
  toolCalls: z.array(z.looseObject({ name: z.string(), input: z.unknown(), result: z.unknown(), isError: z.boolean() })),
  question: z.looseObject({ question: z.string(), answer: z.string() }).optional(),
  options: z.array(z.looseObject({ id: z.string(), action: z.string(), thesis: z.string() })).optional(),
  evaluation: z.looseObject({ optionId: z.string(), score: z.number(), pros: z.array(z.string()).optional(), cons: z.array(z.string()).optional() }).optional(),
  decision: z.looseObject({ action: z.string(), confidence: z.number(), rationale: z.string() }).optional(),
  model: z.looseObject({ model: z.string(), calls: z.number().int(), inputTokens: z.number().int(), outputTokens: z.number().int(), ms: z.number() }),
  finishedAt: z.string(),
});
const stateSchemas = {
  event: z.union([
    z.looseObject({ event: z.literal("claimed"), run: runSchema }),
    z.looseObject({ event: z.literal("dead_lettered"), cause: z.string(), reason: z.string(), attempt: z.number().int(), worker: z.string() }),
  ]),
  iteration: z.looseObject({ chain: z.number().int(), run: runSchema, step: stepSchema }),
  interrupt: z.looseObject({ event: z.literal("interrupted"), chain: z.number().int(), run: runSchema, atIteration: z.number().int(), reason: z.string() }),
  final: z.looseObject({ event: z.literal("completed"), chain: z.number().int(), run: runSchema, result: z.looseObject({ action: z.string() }) }),
};
type Run = z.infer<typeof runSchema>;
export type Step = z.infer<typeof stepSchema>;

export interface Iteration extends Step {
  /** Which owner wrote it: the epoch (the job's attempt), the snapshot's seq and the worker (host:pid). */
  epoch: number;
  seq: number;
  worker: string;
}

export interface Attempt {
  epoch: number;
  worker: string;
  claimedAt: string;
  marketAsOf: string;
  market: Run["market"] | null;
}

export type RunEvent =
  | { type: "interrupted"; epoch: number; seq: number; takenAt: string; atIteration: number; reason: string; worker: string }
  | { type: "dead_lettered"; epoch: number; seq: number; takenAt: string; cause: string; reason: string; worker: string }
  | { type: "completed"; epoch: number; seq: number; takenAt: string; result: Record<string, unknown> };

export interface ReasoningResume extends Handover {
  worker: string | null;
  /** The first iteration the new owner thought itself; the ones before it came from checkpoints. */
  resumedAtIteration: number | null;
  /** Model calls the steps taken from checkpoints had cost, which the new owner did not make again. */
  modelCallsSaved: number;
}

export interface ReasoningView {
  agentId: string | null;
  /** The run is a fork: its first `iteration` steps were copied from run `sessionId`. */
  forkOf: { sessionId: string; iteration: number } | null;
  /** Its newest snapshot is a dead letter: the run failed for good and waits for a re-drive. */
  deadLettered: boolean;
  symbol: string | null;
  maxIterations: number | null;
  attempts: Attempt[];
  /** The current chain of thought, one entry per iteration (the newest owner's copy when one was written twice). */
  iterations: Iteration[];
  events: RunEvent[];
  resumes: ReasoningResume[];
  modelCalls: number;
  unreadable: Array<{ epoch: number; seq: number; problem: string }>;
}

type Parsed =
  | { snapshot: StoredState; kind: "event"; state: z.infer<(typeof stateSchemas)["event"]> }
  | { snapshot: StoredState; kind: "iteration"; state: z.infer<(typeof stateSchemas)["iteration"]> }
  | { snapshot: StoredState; kind: "interrupt"; state: z.infer<(typeof stateSchemas)["interrupt"]> }
  | { snapshot: StoredState; kind: "final"; state: z.infer<(typeof stateSchemas)["final"]> };

function parse(snapshot: StoredState): Parsed | { problem: string } {
  if (snapshot.schemaVersion !== REASONER_STATE_VERSION) return { problem: `schemaVersion ${snapshot.schemaVersion}; the console reads ${REASONER_STATE_VERSION}` };
  if (!(snapshot.kind in stateSchemas)) return { problem: `kind "${snapshot.kind}", which the reasoner never writes` };
  const kind = snapshot.kind as keyof typeof stateSchemas;
  const parsed = stateSchemas[kind].safeParse(snapshot.state);
  if (!parsed.success) return { problem: z.prettifyError(parsed.error).replaceAll("\n", " ") };
  return { snapshot, kind, state: parsed.data } as Parsed;
}

/** A reasoning run's trace, from its snapshots in (epoch, seq) order. */
export function reasoningView(snapshots: readonly StoredState[]): ReasoningView {
  const parsed: Parsed[] = [];
  const unreadable: ReasoningView["unreadable"] = [];
  for (const snapshot of snapshots) {
    const result = parse(snapshot);
    if ("problem" in result) unreadable.push({ epoch: snapshot.epoch, seq: snapshot.seq, problem: result.problem });
    else parsed.push(result);
  }

  const attempts: Attempt[] = [];
  const events: RunEvent[] = [];
  let run: Run | undefined;
  let chain: number | undefined;
  for (const entry of parsed) {
    const { epoch, seq, takenAt } = entry.snapshot;
    if (entry.kind === "event" && entry.state.event === "claimed") {
      run = entry.state.run;
      attempts.push({ epoch, worker: entry.state.run.worker, claimedAt: takenAt, marketAsOf: entry.state.run.marketAsOf, market: entry.state.run.market ?? null });
    } else if (entry.kind === "event" && entry.state.event === "dead_lettered") {
      events.push({ type: "dead_lettered", epoch, seq, takenAt, cause: entry.state.cause, reason: entry.state.reason, worker: entry.state.worker });
    } else if (entry.kind === "interrupt") {
      run = entry.state.run;
      chain = entry.state.chain;
      events.push({ type: "interrupted", epoch, seq, takenAt, atIteration: entry.state.atIteration, reason: entry.state.reason, worker: entry.state.run.worker });
    } else if (entry.kind === "final") {
      run = entry.state.run;
      chain = entry.state.chain;
      events.push({ type: "completed", epoch, seq, takenAt, result: entry.state.result });
    } else if (entry.kind === "iteration") {
      run = entry.state.run;
      chain = entry.state.chain;
    }
  }

  // As agent_reasoning_sessions: the chain of the newest snapshot that names one, each iteration's newest copy.
  const steps = new Map<number, Iteration>();
  for (const entry of parsed) {
    if (entry.kind !== "iteration" || entry.state.chain !== chain) continue;
    const { step } = entry.state;
    steps.set(step.iteration, { ...step, epoch: entry.snapshot.epoch, seq: entry.snapshot.seq, worker: entry.state.run.worker });
  }
  const iterations = [...steps.values()].sort((a, b) => a.iteration - b.iteration);

  const resumes = handovers(parsed.map((entry) => entry.snapshot)).map((handover): ReasoningResume => {
    const own = iterations.filter((iteration) => iteration.epoch === handover.toEpoch);
    const resumedAtIteration = own[0]?.iteration ?? null;
    const inherited = iterations.filter((iteration) => iteration.epoch < handover.toEpoch && (resumedAtIteration === null || iteration.iteration < resumedAtIteration));
    return {
      ...handover,
      worker: attempts.find((attempt) => attempt.epoch === handover.toEpoch)?.worker ?? null,
      resumedAtIteration,
      modelCallsSaved: inherited.reduce((sum, iteration) => sum + iteration.model.calls, 0),
    };
  });

  const newest = parsed.at(-1);
  return {
    agentId: run?.agentId ?? null,
    forkOf: run?.forkOf ? { sessionId: run.forkOf.sessionId, iteration: run.forkOf.iteration } : null,
    deadLettered: newest?.kind === "event" && newest.state.event === "dead_lettered",
    symbol: run?.symbol ?? null,
    maxIterations: run?.maxIterations ?? null,
    attempts,
    iterations,
    events,
    resumes,
    modelCalls: iterations.reduce((sum, iteration) => sum + iteration.model.calls, 0),
    unreadable,
  };
}
