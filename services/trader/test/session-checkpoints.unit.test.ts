import { SessionTakenOverError } from "@savepoint/shared";
import { InMemoryCheckpoints, recordingLogger } from "@savepoint/shared/testing";
import { describe, expect, it } from "vitest";
import { RestoreError, SessionCheckpoints, TRADER_SERVICE } from "../src/session/checkpoints.js";
import { TRADER_STATE_VERSION, TradingState } from "../src/session/state.js";

/** The trader's checkpoints on the in-memory CheckpointPort; checkpointing.test.ts runs them on the real checkpointer. */

const SESSION = "trader-1";
const identity = {
  sessionStartedAt: "2026-01-05T15:30:00.000Z",
  brokerSessionStartedAt: "2026-01-05T15:30:00.000Z",
  symbols: ["AAPL"],
  strategy: { kind: "rule" as const, stopLossPct: 2, takeProfitPct: 4, positionSize: 1_000, lookbackBars: 5, entryThresholdPct: 0 },
};

function setUp(epoch = 0, store = new InMemoryCheckpoints()) {
  const { logger, lines } = recordingLogger<{ msg: string; [field: string]: unknown }>();
  const takeOvers: SessionTakenOverError[] = [];
  const checkpoints = new SessionCheckpoints(store, { sessionId: SESSION, ownerId: "account-1", epoch }, logger, (error) => takeOvers.push(error));
  return { store, checkpoints, lines, takeOvers };
}

const stored = (store: InMemoryCheckpoints) => store.history({ service: TRADER_SERVICE, sessionId: SESSION, limit: 100 });

describe("trader checkpoints", () => {
  it("writes the trader's envelope: its service, owner, epoch, a seq from 0, kind, status and state", async () => {
    const { store, checkpoints } = setUp(3);
    const state = new TradingState(identity);
    await checkpoints.createCheckpoint(state);
    await checkpoints.createCheckpoint(state, "event");
    await checkpoints.createConfirmedCheckpoint(state, "shutdown", "stopped");
    await checkpoints.settle();

    const rows = await stored(store);
    expect(rows.map((row) => [row.epoch, row.seq, row.kind, row.status])).toEqual([
      [3, 2, "shutdown", "stopped"],
      [3, 1, "event", "active"],
      [3, 0, "periodic", "active"],
    ]);
    expect(rows[0]).toMatchObject({ service: TRADER_SERVICE, sessionId: SESSION, schemaVersion: TRADER_STATE_VERSION, state: { symbols: ["AAPL"], positions: [] } });
    expect(checkpoints.created).toBe(3);
  });

  it("logs every tenth checkpoint, as the seed shows it", async () => {
    const { checkpoints, lines } = setUp();
    const state = new TradingState(identity);
    for (let n = 0; n < 20; n += 1) await checkpoints.createCheckpoint(state);
    expect(lines.map((line) => line.msg)).toEqual(["💾 Checkpoint #10 created", "💾 Checkpoint #20 created"]);
  });

  it("reports a stale-epoch refusal of a background confirmation once, then refuses every further checkpoint", async () => {
    const { store, checkpoints, takeOvers } = setUp(0);
    const newer = setUp(1, store).checkpoints;
    const state = new TradingState(identity);
    await newer.createConfirmedCheckpoint(state, "periodic", "active");

    // Queued, then refused out of the caller's sight, as the checkpointer refuses it.
    await checkpoints.createCheckpoint(state);
    await checkpoints.settle();
    expect(takeOvers).toHaveLength(1);
    expect(takeOvers[0]!.message).toMatch(/^another trader has taken over session trader-1 \(this one holds epoch 0, and the checkpointer has stored a higher one\)/);
    await expect(checkpoints.createCheckpoint(state)).rejects.toBe(takeOvers[0]);
    await expect(checkpoints.createConfirmedCheckpoint(state, "shutdown", "stopped")).rejects.toBe(takeOvers[0]);
    expect(takeOvers).toHaveLength(1);
  });

  it("throws the take-over from a confirmed checkpoint refused for a stale epoch", async () => {
    const { store, checkpoints } = setUp(0);
    await setUp(2, store).checkpoints.createConfirmedCheckpoint(new TradingState(identity), "periodic", "active");
    await expect(checkpoints.createConfirmedCheckpoint(new TradingState(identity), "shutdown", "stopped")).rejects.toBeInstanceOf(SessionTakenOverError);
  });

  it("restores the newest checkpoint of a session, or of the account's latest unfinished one", async () => {
    const { store, checkpoints } = setUp(0);
    const state = new TradingState(identity);
    await checkpoints.createConfirmedCheckpoint(state, "periodic", "active");
    state.realizedPl = 12.5;
    await checkpoints.createConfirmedCheckpoint(state, "interrupt", "interrupted");

    const bySession = await SessionCheckpoints.restoreFromLatestCheckpoint(store, { sessionId: SESSION });
    expect(bySession?.snapshot).toMatchObject({ seq: 1, kind: "interrupt" });
    expect(bySession?.state.realizedPl).toBe(12.5);
    expect((await SessionCheckpoints.restoreFromLatestCheckpoint(store, { ownerId: "account-1" }))?.snapshot.seq).toBe(1);
    expect(await SessionCheckpoints.restoreFromLatestCheckpoint(store, { sessionId: "trader-2" })).toBeNull();
  });

  it("does not pick a finished session of the account to resume", async () => {
    const { store, checkpoints } = setUp(0);
    await checkpoints.createConfirmedCheckpoint(new TradingState(identity), "final", "completed");
    expect(await SessionCheckpoints.restoreFromLatestCheckpoint(store, { ownerId: "account-1" })).toBeNull();
  });

  it.each([
    { name: "another state schema version", envelope: { schemaVersion: TRADER_STATE_VERSION + 1, state: {} }, message: /has state schemaVersion 2; this trader reads version 1\. Resume it with a matching trader version, or start a new session\.$/ },
    { name: "a state that is not a trader's", envelope: { schemaVersion: TRADER_STATE_VERSION, state: { positions: "none" } }, message: /does not hold a valid trader state \(.*\); start a new session, or resume another with --resume-session$/ },
  ])("refuses to restore $name, naming the checkpoint and what to do", async ({ envelope, message }) => {
    const store = new InMemoryCheckpoints();
    await store.saveAndConfirm({ v: 1, service: TRADER_SERVICE, sessionId: SESSION, epoch: 0, seq: 0, kind: "periodic", status: "active", takenAt: new Date().toISOString(), ...envelope });
    const refused = SessionCheckpoints.restoreFromLatestCheckpoint(store, { sessionId: SESSION });
    await expect(refused).rejects.toBeInstanceOf(RestoreError);
    await expect(refused).rejects.toThrow(/^checkpoint of session trader-1 \(epoch 0, seq 0\) /);
    await expect(refused).rejects.toThrow(message);
  });

  it("counts and cleans up the session's checkpoints", async () => {
    const { checkpoints } = setUp();
    const state = new TradingState(identity);
    for (let n = 0; n < 5; n += 1) await checkpoints.createConfirmedCheckpoint(state, "periodic", "active");
    expect((await checkpoints.getCheckpointStats()).totalCheckpoints).toBe(5);
    expect(await checkpoints.cleanupOldCheckpoints({ keepCount: 2 })).toBe(3);
    expect((await checkpoints.getCheckpointStats()).totalCheckpoints).toBe(2);
  });
});
