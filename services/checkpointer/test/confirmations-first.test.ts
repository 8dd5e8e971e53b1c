import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkpointerEnvSchema } from "../src/config.js";
import { snapshot, useRunningCheckpointer } from "./support.js";

// Issue 12, item 8: a checkpointer that drains fire-and-forget snapshots one per transaction, two at a time,
// so that a backlog of BACKLOG takes it seconds and is certainly still waiting when the confirmation comes.
const BACKLOG = 3_000;

describe("confirmations first", () => {
  const stack = useRunningCheckpointer("confirmations-first", { overrides: { SNAPSHOT_CONCURRENCY: "2", BATCH_MAX_SIZE: "1" } });

  it("stores and confirms a saveAndConfirm while a large fire-and-forget backlog is still waiting", async () => {
    for (let sent = 0; sent < BACKLOG; sent += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, index) => stack.client.save(snapshot({ sessionId: `backlog-${index % 50}` }))));
    }

    const receipt = await stack.client.saveAndConfirm(snapshot({ sessionId: "confirmed-under-backlog", seq: 1 }));

    const { rows } = await stack.env.query<{ confirmed: number; backlog: number }>(
      `SELECT count(*) FILTER (WHERE session_id = 'confirmed-under-backlog')::int AS confirmed,
              count(*) FILTER (WHERE session_id LIKE 'backlog-%')::int AS backlog
         FROM checkpoints`,
    );
    expect(receipt.outcome).toBe("stored");
    expect(rows[0]!.confirmed).toBe(1);
    expect(rows[0]!.backlog, "fire-and-forget snapshots stored when the confirmation came").toBeLessThan(BACKLOG);
  });
});

// Confirmations first (ConfirmationsFirst, BACKLOG_YIELD_*): while confirmed saves flow, the backlog's worker holds
// at most the yielded concurrency (the default one); it still drains, under confirmations that never pause, and
// nothing is lost. BACKLOG_YIELD_MS outlasts the test, so the yield that the first confirmation starts holds throughout.
const YIELDED = checkpointerEnvSchema.shape.BACKLOG_YIELD_CONCURRENCY.parse(undefined);
const YIELD_BACKLOG = 600;

describe("confirmations first: the backlog yields while confirmed saves flow", () => {
  const stack = useRunningCheckpointer("backlog-yield", { overrides: { BACKLOG_YIELD_MS: "600000" } });
  let backlogQueue: Queue;
  beforeAll(() => {
    backlogQueue = new Queue("checkpoints", { connection: { url: stack.env.redisUrl }, prefix: stack.env.queuePrefix });
  });
  afterAll(async () => {
    await backlogQueue?.close();
  });

  const stored = async (like: string) =>
    (await stack.env.query<{ n: number }>("SELECT count(*)::int AS n FROM checkpoints WHERE session_id LIKE $1", [like])).rows[0]!.n;

  it("holds the backlog's active jobs to the yielded concurrency while confirmations are in flight, and drains it all", async () => {
    await stack.client.saveAndConfirm(snapshot({ sessionId: "confirmed-yield", seq: 1 }));
    await Promise.all(Array.from({ length: YIELD_BACKLOG }, (_, index) => stack.client.save(snapshot({ sessionId: `yield-backlog-${index % 50}`, seq: index + 1 }))));

    const activeWhileConfirming: number[] = [];
    let seq = 1;
    while ((await stored("yield-backlog-%")) < YIELD_BACKLOG) {
      const [receipt, active] = await Promise.all([
        stack.client.saveAndConfirm(snapshot({ sessionId: "confirmed-yield", seq: ++seq })),
        backlogQueue.getActiveCount(),
      ]);
      expect(receipt.outcome).toBe("stored");
      activeWhileConfirming.push(active);
    }

    expect(Math.max(...activeWhileConfirming), "backlog jobs active while a confirmation was in flight").toBeLessThanOrEqual(YIELDED);
    expect(await stored("yield-backlog-%")).toBe(YIELD_BACKLOG);
    expect(await stored("confirmed-yield")).toBe(seq);
  });
});
