import type { StoredSnapshot } from "@savepoint/shared";
import { thinkResult } from "@savepoint/shared/testing";
import { describe, expect, it } from "vitest";
import { foldSteps } from "../src/engine/thinking-state.js";
import type { ThoughtStep } from "../src/engine/thought-step.js";
import { STATE_SCHEMA_VERSION, type RunInfo } from "../src/session/checkpoint-state.js";
import { currentChainSteps, planResume } from "../src/session/resume-plan.js";

const NOW = Date.parse("2026-11-21T12:00:00.000Z");
const TTL = 3_600_000;
const run = (attempt: number): RunInfo => ({ agentId: "agent-1", symbol: "AAPL", maxIterations: 12, attempt, worker: "host:1", marketAsOf: "2026-11-21T11:58:00.000Z" });

function step(iteration: number, overrides: Partial<ThoughtStep> = {}): ThoughtStep {
  return {
    iteration,
    type: "tool",
    toolCalls: [
      {
        id: `toolu_${iteration}`,
        name: "recall_memories",
        input: { query: "trend" },
        result: { memories: [{ id: `m-${iteration}`, lesson: "a lesson", tags: ["trend"] }] },
        isError: false,
      },
    ],
    model: { model: "m", stopReason: "tool_use", calls: 1, retries: [], inputTokens: 10, outputTokens: 5, ms: 3 },
    finishedAt: "2026-11-21T11:59:00.000Z",
    ...overrides,
  };
}

const at = (secondsAgo: number) => new Date(NOW - secondsAgo * 1000).toISOString();

function snapshot(epoch: number, seq: number, kind: StoredSnapshot["kind"], state: Record<string, unknown>, overrides: Partial<StoredSnapshot> = {}): StoredSnapshot {
  return {
    v: 1,
    service: "reasoner",
    sessionId: "think.agent-1.1",
    ownerId: "agent-1",
    epoch,
    seq,
    kind,
    status: kind === "interrupt" ? "interrupted" : kind === "final" ? "completed" : "active",
    schemaVersion: STATE_SCHEMA_VERSION,
    takenAt: at(60),
    persistedAt: at(60),
    state,
    ...overrides,
  };
}
const claimed = (epoch: number) => snapshot(epoch, 0, "event", { event: "claimed", run: run(epoch) });
const iteration = (epoch: number, chain: number, s: ThoughtStep) => snapshot(epoch, s.iteration, "iteration", { chain, run: run(epoch), step: s });
const interrupted = (epoch: number, chain: number, atIteration: number) =>
  snapshot(epoch, atIteration, "interrupt", { event: "interrupted", chain, run: run(epoch), atIteration, reason: "shutdown" });
/** Newest first, as `history` answers. */
const newestFirst = (snapshots: StoredSnapshot[]) => [...snapshots].sort((a, b) => b.epoch - a.epoch || b.seq - a.seq);

describe("planResume", () => {
  it("starts fresh when the session has no snapshot yet", () => {
    expect(planResume([], { now: NOW, ttlMs: TTL })).toEqual({ kind: "fresh", reason: "new" });
  });

  it("resumes the latest chain from all its steps across attempts, after the interrupt", () => {
    const history = newestFirst([
      claimed(1),
      iteration(1, 1, step(1)),
      iteration(1, 1, step(2)),
      interrupted(1, 1, 3),
      claimed(2),
      iteration(2, 1, step(3)),
      iteration(2, 1, step(4)),
      interrupted(2, 1, 5),
      claimed(3),
    ]);
    const plan = planResume(history, { now: NOW, ttlMs: TTL });
    expect(plan).toMatchObject({ kind: "resume", chain: 1 });
    const state = foldSteps((plan as { steps: ThoughtStep[] }).steps);
    expect(state.steps.map((s) => s.iteration)).toEqual([1, 2, 3, 4]);
    expect(state.memories.map((memory) => memory.id)).toEqual(["m-1", "m-2", "m-3", "m-4"]);
  });

  it("keeps the newer owner's copy of an iteration stored twice", () => {
    const stale = step(2, { text: "written by the worker that lost the job" });
    const fresh = step(2, { text: "written by the new owner" });
    const plan = planResume(newestFirst([iteration(1, 1, step(1)), iteration(1, 1, stale), claimed(2), iteration(2, 1, fresh)]), { now: NOW, ttlMs: TTL });
    expect(plan.kind === "resume" && plan.steps.map((s) => s.text)).toEqual([undefined, "written by the new owner"]);
  });

  it("starts fresh, naming the snapshot, when the newest checkpoint is corrupted", () => {
    const plan = planResume(newestFirst([iteration(1, 1, step(1)), snapshot(1, 7, "iteration", { garbage: true })]), { now: NOW, ttlMs: TTL });
    expect(plan).toEqual({ kind: "fresh", reason: "corrupted", problem: expect.stringMatching(/^checkpoint 1:7 \(iteration\) does not match the state schema/) });
  });

  it("starts fresh when a checkpoint of the chain has an unknown schema version", () => {
    const future = { ...iteration(1, 1, step(2)), schemaVersion: STATE_SCHEMA_VERSION + 1 };
    const plan = planResume(newestFirst([iteration(1, 1, step(1)), future]), { now: NOW, ttlMs: TTL });
    expect(plan).toEqual({ kind: "fresh", reason: "corrupted", problem: `checkpoint 1:2 has schemaVersion 2; this reasoner reads 1` });
  });

  it("does not resume a chain whose newest checkpoint is older than the TTL", () => {
    const old = { persistedAt: at(3_601) };
    const plan = planResume(newestFirst([{ ...iteration(1, 1, step(1)), ...old }, { ...interrupted(1, 1, 2), ...old }]), { now: NOW, ttlMs: TTL });
    expect(plan).toMatchObject({ kind: "fresh", reason: "expired" });
  });

  it("starts fresh when an iteration of the chain is missing", () => {
    const plan = planResume(newestFirst([iteration(1, 1, step(1)), iteration(1, 1, step(3))]), { now: NOW, ttlMs: TTL });
    expect(plan).toEqual({ kind: "fresh", reason: "incomplete", problem: "iteration 2 of chain 1 is missing (deleted by retention?)" });
  });

  it("ignores the steps of a chain abandoned by an earlier fresh start", () => {
    const history = newestFirst([iteration(1, 1, step(1)), iteration(1, 1, step(2)), claimed(2), iteration(2, 2, step(1))]);
    const plan = planResume(history, { now: NOW, ttlMs: TTL });
    expect(plan).toMatchObject({ kind: "resume", chain: 2 });
    expect(plan.kind === "resume" && plan.steps).toHaveLength(1);
  });

  it("returns the stored result of a run that completed before its worker could report it", () => {
    const result = thinkResult({ confidence: 0.6 });
    const final = snapshot(1, 2, "final", { event: "completed", chain: 1, run: run(1), result });
    expect(planResume(newestFirst([iteration(1, 1, step(1)), final]), { now: NOW, ttlMs: TTL })).toEqual({ kind: "completed", chain: 1, result });
  });
});

describe("currentChainSteps (what a fork copies)", () => {
  const decision = step(3, { type: "decision", decision: { action: "HOLD", confidence: 0.5, rationale: "wait" } });
  const completed = (epoch: number, chain: number) =>
    snapshot(epoch, 4, "final", {
      event: "completed",
      chain,
      run: run(epoch),
      result: thinkResult({ rationale: "wait", iterations: 3, modelCalls: 3 }),
    });

  it("gives the steps of a completed run, however old, newest owner's copy of each", () => {
    const old = { persistedAt: new Date(NOW - 30 * 24 * 3600_000).toISOString() };
    const snapshots = newestFirst([claimed(1), iteration(1, 1, step(1)), iteration(1, 1, step(2)), { ...iteration(1, 1, decision), ...old }, { ...completed(1, 1), ...old }]);
    expect(currentChainSteps(snapshots)).toEqual({ steps: [step(1), step(2), decision] });
  });

  it("keeps only the current chain, after a fresh start abandoned an earlier one", () => {
    const snapshots = newestFirst([claimed(1), iteration(1, 1, step(1)), iteration(1, 1, step(2)), claimed(2), iteration(2, 2, step(1, { text: "again" }))]);
    expect(currentChainSteps(snapshots)).toEqual({ steps: [step(1, { text: "again" })] });
  });

  it("names what is wrong with a chain missing an iteration, and has no steps for a run that only claimed", () => {
    expect(currentChainSteps(newestFirst([claimed(1), iteration(1, 1, step(1)), iteration(1, 1, step(3))]))).toEqual({
      problem: "iteration 2 of chain 1 is missing (deleted by retention?)",
    });
    expect(currentChainSteps([claimed(1)])).toEqual({ steps: [] });
  });
});
