import { describe, expect, it } from "vitest";
import { serializeState, snapshotEnvelopeSchema, snapshotJobId } from "../src/schemas/snapshot.js";

const valid = {
  v: 1,
  service: "reasoner",
  sessionId: "adaptive-cot-uuid-1234567890",
  ownerId: "agent-7",
  epoch: 3,
  seq: 12,
  kind: "iteration",
  status: "active",
  schemaVersion: 2,
  takenAt: "2026-11-21T10:00:00.000+01:00",
  state: { iteration: 12 },
};

describe("snapshot envelope", () => {
  it("accepts the envelope of docs/architecture.md", () => {
    expect(snapshotEnvelopeSchema.parse(valid)).toEqual(valid);
  });

  it("refuses unknown top-level fields, so a misspelt field is not silently dropped", () => {
    const result = snapshotEnvelopeSchema.safeParse({ ...valid, sessionID: "x" });
    expect(result.success).toBe(false);
  });

  it("gives each snapshot a stable job id without ':' that is never all digits", () => {
    expect(snapshotJobId(valid)).toBe("reasoner.adaptive-cot-uuid-1234567890.3.12");
  });
});

describe("serializeState", () => {
  it("returns the JSON and its size", () => {
    expect(serializeState({ a: "é" }, 100)).toEqual({ json: '{"a":"é"}', bytes: 10 });
  });

  it("refuses a state over the limit, giving both sizes", () => {
    const problem = serializeState({ blob: "x".repeat(100) }, 50);
    expect(problem).toMatchObject({ field: "state", reason: "too_large" });
    expect((problem as { message: string }).message).toMatch(/state is 111 bytes serialized, over the 50-byte limit/);
  });

  it("refuses NUL characters and lone surrogates, which Postgres jsonb cannot hold", () => {
    expect(serializeState({ a: "x\u0000y" }, 1000)).toMatchObject({ reason: "unstorable" });
    expect(serializeState({ ["k\u0000"]: 1 }, 1000)).toMatchObject({ reason: "unstorable" });
    expect(serializeState({ a: "\ud800" }, 1000)).toMatchObject({ reason: "unstorable" });
  });

  it("accepts text that merely looks like an escape, and real surrogate pairs", () => {
    expect(serializeState({ a: "\\u0000 and \\ud800" }, 1000)).toHaveProperty("json");
    expect(serializeState({ a: "😀" }, 1000)).toHaveProperty("json");
  });
});
