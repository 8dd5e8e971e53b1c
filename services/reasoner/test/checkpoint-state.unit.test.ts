import { thinkResult } from "@savepoint/shared/testing";
import { describe, expect, it } from "vitest";
import type { ThoughtStep } from "../src/engine/thought-step.js";
import { parseCheckpoint, STATE_SCHEMA_VERSION, type RunInfo } from "../src/session/checkpoint-state.js";

const run: RunInfo = { agentId: "agent-1", symbol: "AAPL", maxIterations: 12, attempt: 1, worker: "host:1", marketAsOf: "2026-11-21T11:58:00.000Z" };
const step: ThoughtStep = {
  iteration: 1,
  type: "note",
  toolCalls: [],
  model: { model: "m", stopReason: "end_turn", calls: 1, retries: [], inputTokens: 0, outputTokens: 0, ms: 0 },
  finishedAt: "2026-11-21T11:59:00.000Z",
};
const result = thinkResult();
const stored = (kind: string, state: unknown, schemaVersion = STATE_SCHEMA_VERSION) => ({ kind, state, schemaVersion, epoch: 2, seq: 7 }) as Parameters<typeof parseCheckpoint>[0];

describe("reasoner checkpoint states", () => {
  it.each([
    { kind: "event", state: { event: "claimed", run } },
    { kind: "event", state: { event: "dead_lettered", cause: "stalled", reason: "stalled 3 times", attempt: 3, worker: "host:1" } },
    { kind: "iteration", state: { chain: 1, run, step } },
    { kind: "interrupt", state: { event: "interrupted", chain: 1, run, atIteration: 2, reason: "SIGTERM" } },
    { kind: "final", state: { event: "completed", chain: 1, run, result } },
  ])("reads a $kind snapshot of state $state.event", ({ kind, state }) => {
    const parsed = parseCheckpoint(stored(kind, state));
    if (!parsed.ok) throw new Error(parsed.problem);
    expect(parsed.kind).toBe(kind);
  });

  it.each([
    { name: "another schema version", snapshot: stored("iteration", { chain: 1, run, step }, STATE_SCHEMA_VERSION + 1), problem: `checkpoint 2:7 has schemaVersion ${STATE_SCHEMA_VERSION + 1}; this reasoner reads ${STATE_SCHEMA_VERSION}` },
    { name: "a kind the reasoner never writes", snapshot: stored("periodic", {}), problem: 'checkpoint 2:7 is of kind "periodic", which the reasoner never writes' },
    { name: "a step missing", snapshot: stored("iteration", { chain: 1, run }), problem: /^checkpoint 2:7 \(iteration\) does not match the state schema: step: / },
    { name: "an unknown field", snapshot: stored("interrupt", { event: "interrupted", chain: 1, run, atIteration: 2, reason: "x", extra: 1 }), problem: /^checkpoint 2:7 \(interrupt\) does not match the state schema: \(state\): / },
    { name: "an unknown dead-letter cause", snapshot: stored("event", { event: "dead_lettered", cause: "bored", reason: "x", attempt: 1, worker: "w" }), problem: /^checkpoint 2:7 \(event\) does not match the state schema/ },
    { name: "a state that is not an object", snapshot: stored("final", "done"), problem: /^checkpoint 2:7 \(final\) does not match the state schema: \(state\): / },
  ])("refuses $name, saying which checkpoint and why", ({ snapshot, problem }) => {
    const parsed = parseCheckpoint(snapshot);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? "" : parsed.problem).toMatch(problem);
  });

  it("names at most three problems", () => {
    const parsed = parseCheckpoint(stored("iteration", {}));
    expect(parsed.ok ? "" : parsed.problem.split("; ")).toHaveLength(3);
  });
});
