import type { StoredSnapshot, ThinkResult } from "@savepoint/shared";
import type { ThoughtStep } from "../engine/thought-step.js";
import { parseCheckpoint, type ParsedCheckpoint } from "./checkpoint-state.js";

export type FreshReason = "new" | "corrupted" | "expired" | "incomplete";

export type ResumePlan =
  /** Nothing usable: start a new chain. `problem` says what was wrong with what was found. */
  | { kind: "fresh"; reason: FreshReason; problem?: string }
  /** Continue the chain that started at epoch `chain`, from its stored steps (1..n, possibly none). */
  | { kind: "resume"; chain: number; steps: ThoughtStep[] }
  /** The run already finished (its worker died before BullMQ heard): its result, without thinking again. */
  | { kind: "completed"; chain: number; result: ThinkResult };

export interface ResumeSettings {
  now: number;
  /** A chain whose newest snapshot is older than this is not resumed. */
  ttlMs: number;
}

/**
 * Decides how an attempt starts from the session's earlier snapshots (every epoch below the attempt's own,
 * newest first). The newest snapshot that is not a claim marker anchors the decision: it must be readable
 * and recent, and every snapshot of its chain must be readable and its steps must run 1..n without a gap;
 * otherwise the run starts over rather than reason from a damaged history.
 */
export function planResume(snapshots: StoredSnapshot[], { now, ttlMs }: ResumeSettings): ResumePlan {
  const parsed = snapshots.map((snapshot) => ({ snapshot, checkpoint: parseCheckpoint(snapshot) }));
  const anchor = anchorOf(parsed);
  if (!anchor) return { kind: "fresh", reason: "new" };
  if (!anchor.checkpoint.ok) return { kind: "fresh", reason: "corrupted", problem: anchor.checkpoint.problem };
  const ageMs = now - Date.parse(anchor.snapshot.persistedAt);
  if (ageMs > ttlMs) {
    return {
      kind: "fresh",
      reason: "expired",
      problem: `the newest checkpoint (${anchor.snapshot.epoch}:${anchor.snapshot.seq}) is ${Math.round(ageMs / 1000)} s old, over the ${Math.round(ttlMs / 1000)} s TTL`,
    };
  }
  const checkpoint = anchor.checkpoint;
  if (checkpoint.kind === "event") return { kind: "fresh", reason: "new" };
  const chain = checkpoint.state.chain;
  if (checkpoint.kind === "final") {
    return { kind: "completed", chain, result: checkpoint.state.result };
  }
  const collected = stepsOfChain(parsed, chain);
  if ("problem" in collected) return { kind: "fresh", ...collected };
  return { kind: "resume", chain, steps: collected.steps };
}

/**
 * The steps of the run's current chain, however the run ended (completed, interrupted, dead-lettered): what a
 * fork copies. No TTL applies: a fork may start from a run finished long ago.
 */
export function currentChainSteps(snapshots: StoredSnapshot[]): { steps: ThoughtStep[] } | { problem: string } {
  const parsed = snapshots.map((snapshot) => ({ snapshot, checkpoint: parseCheckpoint(snapshot) }));
  const anchor = anchorOf(parsed);
  if (!anchor) return { steps: [] };
  if (!anchor.checkpoint.ok) return { problem: anchor.checkpoint.problem };
  if (anchor.checkpoint.kind === "event") return { steps: [] };
  const collected = stepsOfChain(parsed, anchor.checkpoint.state.chain);
  return "problem" in collected ? { problem: collected.problem } : collected;
}

type Parsed = Array<{ snapshot: StoredSnapshot; checkpoint: ParsedCheckpoint }>;

/** The newest snapshot that is not an event (claim, dead letter): the one whose chain is the run's current one. */
const anchorOf = (parsed: Parsed) => parsed.find(({ checkpoint }) => !(checkpoint.ok && checkpoint.kind === "event"));

/** Steps 1..n of `chain`, every snapshot of it readable and no iteration missing. */
function stepsOfChain(parsed: Parsed, chain: number): { steps: ThoughtStep[] } | { reason: "corrupted" | "incomplete"; problem: string } {
  const byIteration = new Map<number, ThoughtStep>();
  for (const { snapshot, checkpoint } of parsed) {
    if (snapshot.epoch < chain) break;
    if (!checkpoint.ok) return { reason: "corrupted", problem: checkpoint.problem };
    if (checkpoint.kind !== "iteration" || checkpoint.state.chain !== chain) continue;
    const { step } = checkpoint.state;
    // Newest first: when an iteration was stored twice (by an owner fenced off just after), the newer owner's wins.
    if (!byIteration.has(step.iteration)) byIteration.set(step.iteration, step);
  }
  const steps = [...byIteration.values()].sort((a, b) => a.iteration - b.iteration);
  const gap = steps.findIndex((step, index) => step.iteration !== index + 1);
  if (gap >= 0) return { reason: "incomplete", problem: `iteration ${gap + 1} of chain ${chain} is missing (deleted by retention?)` };
  return { steps };
}
