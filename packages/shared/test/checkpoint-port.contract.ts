import { randomUUID } from "node:crypto";
import { beforeAll, expect, it } from "vitest";
import { CheckpointInputError, CheckpointStaleEpochError, type CheckpointPort, type SnapshotEnvelope } from "../src/index.js";

/**
 * The guarantees every CheckpointPort keeps (docs/architecture.md, "Guarantees"), as one suite run against
 * the real checkpointer through CheckpointClient and against InMemoryCheckpoints: what a domain test learns
 * from the stand-in holds for the real thing. Each test uses sessions of its own, so one port serves all.
 */
/** The answers to saving a snapshot that is already stored: either says it is there, once. */
const STORED_ONCE = [{ outcome: "stored" }, { outcome: "duplicate" }];

export function checkpointPortContract(open: () => Promise<CheckpointPort>): void {
  let port: CheckpointPort;
  beforeAll(async () => {
    port = await open();
  });

  const session = () => `contract-${randomUUID()}`;
  const snapshot = (sessionId: string, epoch: number, seq: number, extra: Partial<SnapshotEnvelope> = {}): SnapshotEnvelope => ({
    v: 1,
    service: "contract",
    sessionId,
    epoch,
    seq,
    kind: "periodic",
    status: "active",
    schemaVersion: 1,
    takenAt: "2026-01-05T15:00:00.000Z",
    state: { seq, positions: [{ symbol: "AAPL", qty: 10 }], note: "ünïcode ✓" },
    ...extra,
  });
  const latestSeq = async (sessionId: string) => {
    const latest = await port.latest({ service: "contract", sessionId });
    return latest && { epoch: latest.epoch, seq: latest.seq };
  };

  it("stores a snapshot once however often it is saved, and gives it back as saved", async () => {
    const id = session();
    const envelope = snapshot(id, 0, 1, { ownerId: "account-1", takenAt: "2026-01-05T16:00:00.000+01:00" });

    expect(await port.saveAndConfirm(envelope)).toEqual({ outcome: "stored" });
    // Saved again, it is confirmed again; the client may answer from the first save's job while Redis keeps it.
    expect(STORED_ONCE).toContainEqual(await port.saveAndConfirm(envelope));

    const history = await port.history({ service: "contract", sessionId: id, limit: 10 });
    expect(history).toHaveLength(1);
    expect(history[0]).toEqual({ ...envelope, takenAt: "2026-01-05T15:00:00.000Z", persistedAt: expect.any(String) });
    expect(await port.latest({ service: "contract", sessionId: id })).toEqual(history[0]);
  });

  it("keeps latest at the greatest (epoch, seq): a late older snapshot is history, never the latest", async () => {
    const id = session();
    await port.saveAndConfirm(snapshot(id, 0, 2));
    expect(await port.saveAndConfirm(snapshot(id, 0, 1))).toEqual({ outcome: "stored" });
    expect(await latestSeq(id)).toEqual({ epoch: 0, seq: 2 });

    await port.saveAndConfirm(snapshot(id, 1, 0));
    expect(await latestSeq(id)).toEqual({ epoch: 1, seq: 0 });
    const history = await port.history({ service: "contract", sessionId: id, limit: 10 });
    expect(history.map(({ epoch, seq }) => [epoch, seq])).toEqual([[1, 0], [0, 2], [0, 1]]);
  });

  it("refuses a snapshot from an epoch below the session's highest, and keeps that fence after cleanup", async () => {
    const id = session();
    await port.saveAndConfirm(snapshot(id, 0, 1));
    await port.saveAndConfirm(snapshot(id, 2, 0));

    await expect(port.saveAndConfirm(snapshot(id, 1, 7))).rejects.toThrow(CheckpointStaleEpochError);
    await expect(port.saveAndConfirm(snapshot(id, 1, 7))).rejects.toThrow(/stale epoch/);
    // The same snapshot stored before the takeover is confirmed again, not refused.
    expect(STORED_ONCE).toContainEqual(await port.saveAndConfirm(snapshot(id, 0, 1)));
    expect(await port.history({ service: "contract", sessionId: id, limit: 10 })).toHaveLength(2);

    expect(await port.cleanup({ keepCount: 1, service: "contract", sessionId: id })).toEqual({ deleted: 1 });
    await expect(port.saveAndConfirm(snapshot(id, 0, 9))).rejects.toThrow(CheckpointStaleEpochError);
    expect(await latestSeq(id)).toEqual({ epoch: 2, seq: 0 });
  });

  it("stores a fire-and-forget save, and drops a stale one without the caller seeing it", async () => {
    const id = session();
    await port.save(snapshot(id, 1, 1));
    await expect.poll(() => latestSeq(id)).toEqual({ epoch: 1, seq: 1 });

    await port.save(snapshot(id, 0, 5));
    await port.saveAndConfirm(snapshot(id, 1, 2));
    const history = await port.history({ service: "contract", sessionId: id, limit: 10 });
    expect(history.map(({ epoch, seq }) => [epoch, seq])).toEqual([[1, 2], [1, 1]]);
  });

  it("calls onQueued before a confirmed save resolves", async () => {
    const id = session();
    let queued = false;
    const receipt = port.saveAndConfirm(snapshot(id, 0, 1), { onQueued: () => (queued = true) });
    expect(await receipt).toEqual({ outcome: "stored" });
    expect(queued).toBe(true);
  });

  it.each([
    ["a negative epoch", { epoch: -1 }, /invalid snapshot: epoch: must be ≥ 0/],
    ["an unknown kind", { kind: "sometimes" }, /invalid snapshot: kind:/],
    ["a state that is no object", { state: [] as unknown as Record<string, unknown> }, /invalid snapshot: state: must be a JSON object/],
    ["a state over the size limit", { state: { blob: "x".repeat(1024 * 1024) } }, /invalid snapshot: state:/],
    ["a NUL character in the state", { state: { text: "a\u0000b" } }, /invalid snapshot: state:/],
    ["a state nested too deeply", { state: nested(150) }, /invalid snapshot: state:/],
  ] as Array<[string, Partial<SnapshotEnvelope>, RegExp]>)("refuses %s before storing anything", async (_case, change, message) => {
    const id = session();
    await expect(port.saveAndConfirm(snapshot(id, 0, 1, change))).rejects.toThrow(CheckpointInputError);
    await expect(port.save(snapshot(id, 0, 1, change))).rejects.toThrow(message);
    expect(await port.latest({ service: "contract", sessionId: id })).toBeNull();
  });

  it("refuses malformed requests with CheckpointInputError naming the field", async () => {
    await expect(port.latest({ service: "contract", sessionId: "a", ownerId: "b" })).rejects.toThrow(/invalid latest request: sessionId:/);
    await expect(port.history({ service: "contract", sessionId: "a", limit: 0 })).rejects.toThrow(CheckpointInputError);
    await expect(port.stats({ service: "Not A Service" })).rejects.toThrow(/invalid stats request: service:/);
    await expect(port.cleanup({ keepCount: -1 })).rejects.toThrow(/invalid cleanup request: keepCount:/);
    await expect(port.claimEpoch("contract", "has spaces")).rejects.toThrow(/invalid epoch claim: sessionId/);
  });

  it("answers latest for an owner's most recently written session, filtered by status", async () => {
    const owner = `owner-${randomUUID()}`;
    const [older, newer] = [session(), session()];
    await port.saveAndConfirm(snapshot(older, 0, 1, { ownerId: owner, status: "interrupted" }));
    await port.saveAndConfirm(snapshot(newer, 0, 1, { ownerId: owner, status: "completed" }));

    expect((await port.latest({ service: "contract", ownerId: owner }))?.sessionId).toBe(newer);
    expect((await port.latest({ service: "contract", ownerId: owner, status: ["active", "interrupted"] }))?.sessionId).toBe(older);
    expect(await port.latest({ service: "contract", ownerId: owner, status: "stopped" })).toBeNull();
    expect(await port.latest({ service: "contract", ownerId: `nobody-${randomUUID()}` })).toBeNull();
  });

  it("pages history newest first from before a position", async () => {
    const id = session();
    for (let seq = 1; seq <= 5; seq++) await port.saveAndConfirm(snapshot(id, 0, seq));

    const first = await port.history({ service: "contract", sessionId: id, limit: 2 });
    const second = await port.history({ service: "contract", sessionId: id, limit: 2, before: { epoch: 0, seq: first.at(-1)!.seq } });
    expect([...first, ...second].map((stored) => stored.seq)).toEqual([5, 4, 3, 2]);
    expect(await port.history({ service: "contract", sessionId: session(), limit: 5 })).toEqual([]);
  });

  it("counts a session's snapshots, and cleanup keeps the newest keepCount of them", async () => {
    const id = session();
    for (let seq = 1; seq <= 4; seq++) await port.saveAndConfirm(snapshot(id, 0, seq));

    const stats = await port.stats({ service: "contract", sessionId: id });
    expect(stats).toMatchObject({ totalCheckpoints: 4, sessions: 1 });
    expect(stats.bytes).toBeGreaterThan(0);
    expect(Date.parse(stats.oldestAt!)).toBeLessThanOrEqual(Date.parse(stats.newestAt!));

    expect(await port.cleanup({ keepCount: 2, service: "contract", sessionId: id })).toEqual({ deleted: 2 });
    const kept = await port.history({ service: "contract", sessionId: id, limit: 10 });
    expect(kept.map((stored) => stored.seq)).toEqual([4, 3]);
    expect(await port.stats({ service: "contract", sessionId: session() })).toEqual({ totalCheckpoints: 0, sessions: 0, oldestAt: null, newestAt: null, bytes: 0 });
  });

  it("trims only finished sessions when no sessionId is given, and refuses keepCount 0 across every session", async () => {
    const service = `c${randomUUID().slice(0, 8)}`;
    const [running, finished] = [session(), session()];
    for (let seq = 1; seq <= 3; seq++) {
      await port.saveAndConfirm(snapshot(running, 0, seq, { service }));
      await port.saveAndConfirm(snapshot(finished, 0, seq, { service, status: seq === 3 ? "completed" : "active" }));
    }

    expect(await port.cleanup({ keepCount: 1, service })).toEqual({ deleted: 2 });
    expect(await port.history({ service, sessionId: running, limit: 10 })).toHaveLength(3);
    expect(await port.history({ service, sessionId: finished, limit: 10 })).toHaveLength(1);
    await expect(port.cleanup({ keepCount: 0 })).rejects.toThrow(/invalid cleanup request: keepCount:/);
  });

  it("claims a new epoch every time, never below atLeast, and two claims at once get different ones", async () => {
    const id = session();
    expect(await port.claimEpoch("contract", id)).toBe(0);
    expect(await port.claimEpoch("contract", id)).toBe(1);
    expect(await port.claimEpoch("contract", id, 7)).toBe(7);
    const both = await Promise.all([port.claimEpoch("contract", id), port.claimEpoch("contract", id)]);
    expect(both.sort()).toEqual([8, 9]);
  });
}

/** An object nested `depth` levels deep, the outermost counted as one. */
function nested(depth: number): Record<string, unknown> {
  let state: Record<string, unknown> = {};
  for (let level = 1; level < depth; level++) state = { inner: state };
  return state;
}
