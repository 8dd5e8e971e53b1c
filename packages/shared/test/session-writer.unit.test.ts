import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { CheckpointClientClosedError, CheckpointStaleEpochError, CheckpointTimeoutError, SessionTakenOverError, SessionWriter, type CheckpointPort, type SessionWriterOptions, type SnapshotEnvelope } from "../src/index.js";
import { InMemoryCheckpoints } from "../src/testing/in-memory-checkpoints.js";

const TAKEN_AT = new Date("2026-03-02T15:30:00.000Z");

function writer(port: CheckpointPort, overrides: Partial<SessionWriterOptions> = {}): SessionWriter {
  return new SessionWriter(port, {
    service: "trader",
    sessionId: "session-1",
    ownerId: "account-1",
    epoch: 2,
    schemaVersion: 3,
    logger: pino({ level: "silent" }),
    now: () => TAKEN_AT,
    ...overrides,
  });
}

/** Fresh empty-state snapshots of the two kinds most tests save. */
const periodic = () => ({ kind: "periodic", status: "active", state: {} }) as const;
const event = () => ({ kind: "event", status: "active", state: {} }) as const;

async function positions(port: CheckpointPort, sessionId = "session-1") {
  const stored = await port.history({ service: "trader", sessionId, limit: 100 });
  return stored.map((snapshot) => [snapshot.epoch, snapshot.seq, snapshot.kind]);
}

/** A port that never confirms: accepted at once, its confirmation left to `release`. */
class HeldPort extends InMemoryCheckpoints {
  readonly held: Array<{ envelope: SnapshotEnvelope; settle: (error?: Error) => void }> = [];
  override async saveAndConfirm(envelope: SnapshotEnvelope, options: { onQueued?: () => void } = {}) {
    options.onQueued?.();
    await new Promise<void>((resolve, reject) => this.held.push({ envelope, settle: (error) => (error ? reject(error) : resolve()) }));
    return { outcome: "stored" as const };
  }
}

/** A writer at epoch 2 on a port where another owner has already saved the session at epoch 5. */
async function staleWriter(port: CheckpointPort, overrides: Partial<SessionWriterOptions> = {}): Promise<SessionWriter> {
  await writer(port, { epoch: 5 }).saveConfirmed(event());
  return writer(port, overrides);
}

/** A writer on a HeldPort that tells `onTakenOver` and logs to spies, with one background save waiting for its confirmation. */
async function heldWriterWithOneSave() {
  const port = new HeldPort();
  const onTakenOver = vi.fn();
  const logger = pino({ level: "silent" });
  const warn = vi.spyOn(logger, "warn");
  const error = vi.spyOn(logger, "error");
  const session = writer(port, { onTakenOver, logger });
  await session.save(periodic());
  return { port, onTakenOver, warn, error, session };
}

describe("SessionWriter", () => {
  it("builds the envelope: the owner's service, session, owner, epoch and schema version, the kind, status, takenAt and state", async () => {
    const port = new InMemoryCheckpoints();
    await writer(port).saveConfirmed({ kind: "periodic", status: "active", state: { cash: 100 } });
    const latest = await port.latest({ service: "trader", sessionId: "session-1" });
    expect(latest).toMatchObject({
      v: 1,
      service: "trader",
      sessionId: "session-1",
      ownerId: "account-1",
      epoch: 2,
      seq: 0,
      kind: "periodic",
      status: "active",
      schemaVersion: 3,
      takenAt: TAKEN_AT.toISOString(),
      state: { cash: 100 },
    });
  });

  it("builds a state given as a function from the snapshot's own takenAt", async () => {
    const port = new InMemoryCheckpoints();
    await writer(port).saveConfirmed({ kind: "event", status: "active", state: (takenAt) => ({ at: takenAt.toISOString() }) });
    expect((await port.latest({ service: "trader", sessionId: "session-1" }))?.state).toEqual({ at: TAKEN_AT.toISOString() });
  });

  it("numbers snapshots from 0 within its epoch; an explicit seq is kept and the next default follows it", async () => {
    const port = new InMemoryCheckpoints();
    const session = writer(port);
    const snapshot = { kind: "periodic" as const, status: "active" as const, state: {} };
    await session.save(snapshot);
    await session.saveConfirmed(snapshot);
    await session.saveConfirmed({ ...snapshot, seq: 7 });
    await session.save(snapshot);
    await session.settle();
    expect(await positions(port)).toEqual([
      [2, 8, "periodic"],
      [2, 7, "periodic"],
      [2, 1, "periodic"],
      [2, 0, "periodic"],
    ]);
  });

  it("returns the port's receipt from a confirmed save: stored, then duplicate for the same position", async () => {
    const port = new InMemoryCheckpoints();
    const snapshot = { kind: "event" as const, status: "active" as const, state: {}, seq: 0 };
    expect(await writer(port).saveConfirmed(snapshot)).toEqual({ outcome: "stored" });
    expect(await writer(port).saveConfirmed(snapshot)).toEqual({ outcome: "duplicate" });
  });

  it("throws SessionTakenOverError from a confirmed save refused for a stale epoch, in the service's words, and keeps throwing it without writing", async () => {
    const port = new InMemoryCheckpoints();
    const stale = await staleWriter(port, { describeTakeOver: ({ sessionId, epoch }) => `another owner has ${sessionId}, not epoch ${epoch}.` });

    const refusal = await stale.saveConfirmed(event()).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(SessionTakenOverError);
    expect((refusal as Error).message).toMatch(/^another owner has session-1, not epoch 2\. /);
    expect(stale.takenOver).toBe(refusal);

    await expect(stale.save(periodic())).rejects.toBe(refusal);
    await expect(stale.saveConfirmed(periodic())).rejects.toBe(refusal);
    expect(await positions(port)).toEqual([[5, 0, "event"]]);
  });

  it("tells onTakenOver once when background confirmations find the session taken over, and refuses later saves", async () => {
    const { port, onTakenOver, session: stale } = await heldWriterWithOneSave();
    await stale.save(periodic());
    for (const { settle } of port.held) settle(new CheckpointStaleEpochError("stale epoch: 2 < 5"));
    await stale.settle();

    expect(onTakenOver).toHaveBeenCalledTimes(1);
    expect(onTakenOver.mock.calls[0]![0]).toBeInstanceOf(SessionTakenOverError);
    expect(onTakenOver.mock.calls[0]![0]).toBe(stale.takenOver);
    await expect(stale.save(periodic())).rejects.toBe(stale.takenOver);
    expect(port.held).toHaveLength(2);
  });

  it("refuses at once what the in-memory port refuses as stale in the background", async () => {
    const port = new InMemoryCheckpoints();
    const stale = await staleWriter(port);
    await stale.save(periodic());
    await stale.settle();
    await expect(stale.save(periodic())).rejects.toBeInstanceOf(SessionTakenOverError);
    expect(await positions(port)).toEqual([[5, 0, "event"]]);
  });

  it("does not call onTakenOver when a confirmed save has already thrown the take-over", async () => {
    const { port, onTakenOver, session } = await heldWriterWithOneSave();
    vi.spyOn(port, "saveAndConfirm").mockRejectedValueOnce(new CheckpointStaleEpochError("stale epoch: 2 < 5"));
    await expect(session.saveConfirmed({ kind: "final", status: "completed", state: {} })).rejects.toBeInstanceOf(SessionTakenOverError);
    port.held[0]!.settle(new CheckpointStaleEpochError("stale epoch: 2 < 5"));
    await session.settle();
    expect(onTakenOver).not.toHaveBeenCalled();
  });

  it("resolves a background save once accepted, before the confirmation; settle waits for the confirmation", async () => {
    const port = new HeldPort();
    const session = writer(port);
    const envelope = await session.save({ kind: "periodic", status: "active", state: { n: 1 } });
    expect(envelope).toMatchObject({ epoch: 2, seq: 0, state: { n: 1 } });
    let settled = false;
    const settling = session.settle().then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    port.held[0]!.settle();
    await settling;
    expect(settled).toBe(true);
  });

  it("logs a background confirmation that times out as a warning and one refused otherwise as an error, and goes on", async () => {
    const { port, warn, error, session } = await heldWriterWithOneSave();
    await session.save(periodic());
    port.held[0]!.settle(new CheckpointTimeoutError("no answer in 10 ms"));
    port.held[1]!.settle(new Error("invalid snapshot"));
    await session.settle();
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ seq: 0, problem: "no answer in 10 ms" }), expect.stringContaining("not confirmed yet"));
    expect(error).toHaveBeenCalledWith(expect.objectContaining({ seq: 1 }), "checkpoint refused by the checkpointer");
    expect(session.takenOver).toBeUndefined();
    await expect(session.save(periodic())).resolves.toMatchObject({ seq: 2 });
  });

  it("logs a background confirmation cut short by closing the client as a warning, not as a refusal", async () => {
    const { port, warn, error, session } = await heldWriterWithOneSave();
    port.held[0]!.settle(new CheckpointClientClosedError("the client closed before the answer came"));
    await session.settle();
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ seq: 0, problem: "the client closed before the answer came" }), expect.stringContaining("stays queued in Redis"));
    expect(error).not.toHaveBeenCalled();
  });

  it("hands off a snapshot at once: taken now, sent on a later turn after those before it, accepted() once the port has them", async () => {
    const port = new HeldPort();
    const session = writer(port);
    const sent = vi.spyOn(port, "saveAndConfirm");
    let n = 0;
    const first = session.handOff({ kind: "periodic", status: "active", state: () => ({ n: ++n }) });
    const second = session.handOff({ kind: "event", status: "active", state: () => ({ n: ++n }) });
    expect([first.seq, first.state, second.seq, second.state]).toEqual([0, { n: 1 }, 1, { n: 2 }]);
    expect(sent).not.toHaveBeenCalled();

    await session.accepted();
    expect(port.held.map(({ envelope }) => [envelope.seq, envelope.kind])).toEqual([
      [0, "periodic"],
      [1, "event"],
    ]);
    const confirmed = session.saveConfirmed({ kind: "shutdown", status: "interrupted", state: {} });
    await vi.waitFor(() => expect(port.held).toHaveLength(3));
    for (const { settle } of port.held) settle();
    await confirmed;
    await session.settle();
    expect(port.held.map(({ envelope }) => envelope.seq)).toEqual([0, 1, 2]);
  });

  it("logs a handed-off snapshot that cannot be queued as a warning and sends the next one", async () => {
    const port = new InMemoryCheckpoints({ maxStateBytes: 10 });
    const logger = pino({ level: "silent" });
    const warn = vi.spyOn(logger, "warn");
    const session = writer(port, { logger });
    session.handOff({ kind: "periodic", status: "active", state: { big: "x".repeat(100) } });
    session.handOff(periodic());
    await session.settle();
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ seq: 0, problem: expect.stringMatching(/invalid snapshot/) }), "checkpoint could not be queued; the next one will carry the same state");
    expect(await positions(port)).toEqual([[2, 1, "periodic"]]);
  });

  it("refuses to hand off once the session is taken over", async () => {
    const onTakenOver = vi.fn();
    const stale = await staleWriter(new InMemoryCheckpoints(), { onTakenOver });
    stale.handOff(periodic());
    await stale.settle();
    expect(onTakenOver).toHaveBeenCalledTimes(1);
    expect(() => stale.handOff(periodic())).toThrow(SessionTakenOverError);
  });

  it("throws a failure from before the port accepted the snapshot to the caller of save", async () => {
    const port = new InMemoryCheckpoints({ maxStateBytes: 10 });
    await expect(writer(port).save({ kind: "periodic", status: "active", state: { big: "x".repeat(100) } })).rejects.toThrow(/invalid snapshot/);
  });
});
