import { describe, expect, it } from "vitest";
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
