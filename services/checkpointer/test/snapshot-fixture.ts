import type { SnapshotEnvelope } from "@savepoint/shared";

let counter = 0;
/** A valid snapshot; override any field. */
export function snapshot(overrides: Partial<SnapshotEnvelope> = {}): SnapshotEnvelope {
  counter += 1;
  return {
    v: 1,
    service: "trader",
    sessionId: "session-1",
    epoch: 0,
    seq: counter,
    kind: "periodic",
    status: "active",
    schemaVersion: 1,
    takenAt: new Date().toISOString(),
    state: { positions: [], closedTrades: 0 },
    ...overrides,
  };
}
