import type { SnapshotEnvelope } from "@savepoint/shared";

/** A snapshot envelope's members other than its state. */
export type SnapshotHead = Omit<SnapshotEnvelope, "state">;

/** A validated snapshot: its envelope's other members, and its state's JSON text as it will be stored. */
export interface PendingSnapshot {
  head: SnapshotHead;
  stateJson: string;
}

export type PersistOutcome =
  | { outcome: "stored" }
  | { outcome: "duplicate" }
  | { outcome: "stale"; highestEpoch: number };

export const snapshotKey = (s: Pick<SnapshotEnvelope, "service" | "sessionId" | "epoch" | "seq">): string =>
  `${s.service}\u0000${s.sessionId}\u0000${s.epoch}\u0000${s.seq}`;

/**
 * The distinct snapshots of a batch, sorted by session then position (so every writer locks session rows in
 * the same order and concurrent batches cannot deadlock), and for each input the index of its distinct copy.
 * A snapshot delivered twice in one batch is written once; the first copy wins.
 */
export function dedupeBatch(batch: PendingSnapshot[]): { unique: PendingSnapshot[]; indexOf: number[] } {
  const firstByKey = new Map<string, PendingSnapshot>();
  for (const snapshot of batch) {
    const key = snapshotKey(snapshot.head);
    if (!firstByKey.has(key)) firstByKey.set(key, snapshot);
  }
  const unique = [...firstByKey.values()].sort((a, b) => compareSnapshots(a.head, b.head));
  const position = new Map(unique.map((snapshot, index) => [snapshotKey(snapshot.head), index]));
  return { unique, indexOf: batch.map((snapshot) => position.get(snapshotKey(snapshot.head)) ?? -1) };
}

function compareSnapshots(a: SnapshotHead, b: SnapshotHead): number {
  return (
    compareText(a.service, b.service) || compareText(a.sessionId, b.sessionId) || a.epoch - b.epoch || a.seq - b.seq
  );
}

// Byte order, like Postgres' "C" collation comparisons on the arrays we send; any fixed order avoids deadlocks.
const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
