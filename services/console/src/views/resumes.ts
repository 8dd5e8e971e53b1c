/** What the console needs of a snapshot to see where an owner handed a session to the next. */
export interface SnapshotPoint {
  epoch: number;
  seq: number;
  kind: string;
  status: string;
  takenAt: string;
}

export interface Handover {
  fromEpoch: number;
  toEpoch: number;
  /** The last snapshot the old owner wrote and the first one the new owner wrote. */
  lastBefore: SnapshotPoint;
  firstAfter: SnapshotPoint;
  /** Producer time between the two: how long the session was down (takenAt is informational, so approximate). */
  downtimeMs: number;
}

const point = ({ epoch, seq, kind, status, takenAt }: SnapshotPoint): SnapshotPoint => ({ epoch, seq, kind, status, takenAt });

/** Each change of epoch in snapshots sorted by (epoch, seq): a new owner took over, which is a resume. */
export function handovers(snapshots: readonly SnapshotPoint[]): Handover[] {
  const found: Handover[] = [];
  for (let i = 1; i < snapshots.length; i += 1) {
    const before = snapshots[i - 1]!;
    const after = snapshots[i]!;
    if (after.epoch === before.epoch) continue;
    found.push({
      fromEpoch: before.epoch,
      toEpoch: after.epoch,
      lastBefore: point(before),
      firstAfter: point(after),
      downtimeMs: Math.max(0, Date.parse(after.takenAt) - Date.parse(before.takenAt)),
    });
  }
  return found;
}
