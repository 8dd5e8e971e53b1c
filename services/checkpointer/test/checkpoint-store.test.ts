import { CHECKPOINT_TABLE_LAYOUTS, createTestEnvironment, type TestEnvironment } from "@savepoint/shared/testing";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PendingSnapshot, PersistOutcome } from "../src/domain/snapshot-batch.js";
import { CheckpointStore, createPool } from "../src/store/checkpoint-store.js";
import { snapshot } from "./support.js";

// A batch of one and a larger batch are written by different statements (see checkpoint-store.ts); both must
// answer every case alike. Each case runs once alone and once beside a snapshot of an unrelated session.
describe.each(CHECKPOINT_TABLE_LAYOUTS)("CheckpointStore.persistBatch on $layout", ({ checkpointPartitions }) => {
  let env: TestEnvironment;
  let pool: pg.Pool;
  let store: CheckpointStore;
  let bystanders = 0;

  beforeAll(async () => {
    env = await createTestEnvironment("checkpoint-store", { checkpointPartitions });
    pool = createPool({ databaseUrl: env.databaseUrl, maxConnections: 2, statementTimeoutMs: 10_000, onConnectionLost: () => undefined });
    store = new CheckpointStore(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await env?.dispose();
  });

  const pending = (sessionId: string, epoch: number, seq: number, stateJson = `{"seq":${seq}}`): PendingSnapshot => {
    const { state: _state, ...head } = snapshot({ sessionId, epoch, seq, status: seq % 2 === 0 ? "active" : "interrupted" });
    return { head, stateJson };
  };

  async function sessionRow(sessionId: string) {
    const { rows } = await env.query(
      "SELECT latest_epoch::int AS epoch, latest_seq::int AS seq, status FROM checkpoint_sessions WHERE session_id = $1",
      [sessionId],
    );
    return rows[0];
  }

  for (const mode of ["alone", "in a batch"] as const) {
    const write = async (item: PendingSnapshot): Promise<PersistOutcome> => {
      if (mode === "alone") return (await store.persistBatch([item]))[0]!;
      bystanders += 1;
      const outcomes = await store.persistBatch([pending(`bystander-${bystanders}`, 0, 1), item]);
      expect(outcomes[0]).toEqual({ outcome: "stored" });
      return outcomes[1]!;
    };
    const session = (name: string) => `${name}-${mode.replace(/ /g, "-")}`;

    describe(mode, () => {
      it("stores a new snapshot with its state text as given, and answers its second write duplicate", async () => {
        const id = session("new");
        const item = pending(id, 0, 1, '{"note": "caf\\u00e9",  "keys": {"b": 1, "a": 2}}');
        expect(await write(item)).toEqual({ outcome: "stored" });
        expect(await write(item)).toEqual({ outcome: "duplicate" });
        const { rows } = await env.query("SELECT state::text AS state FROM checkpoints WHERE session_id = $1", [id]);
        expect(rows).toEqual([{ state: item.stateJson }]);
      });

      it("stores an older seq after a newer one without moving the session's latest or status back", async () => {
        const id = session("late");
        expect(await write(pending(id, 0, 4))).toEqual({ outcome: "stored" });
        expect(await write(pending(id, 0, 3))).toEqual({ outcome: "stored" });
        expect(await sessionRow(id)).toEqual({ epoch: 0, seq: 4, status: "active" });
      });

      it("refuses a lower epoch as stale, naming the highest, unless that snapshot was stored before", async () => {
        const id = session("fenced");
        expect(await write(pending(id, 1, 1))).toEqual({ outcome: "stored" });
        expect(await write(pending(id, 2, 1))).toEqual({ outcome: "stored" });
        expect(await write(pending(id, 1, 2))).toEqual({ outcome: "stale", highestEpoch: 2 });
        expect(await write(pending(id, 1, 1))).toEqual({ outcome: "duplicate" });
        expect(await sessionRow(id)).toEqual({ epoch: 2, seq: 1, status: "interrupted" });
      });

      it("fails with Postgres' own error when the state text is not JSON", async () => {
        await expect(write(pending(session("broken"), 0, 1, '{"positions": [1, 2'))).rejects.toMatchObject({ code: "22P02" });
      });
    });
  }
});
