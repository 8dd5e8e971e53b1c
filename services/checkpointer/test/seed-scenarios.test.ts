import { describe, expect, it } from "vitest";
import { snapshot, useRunningCheckpointer } from "./support.js";

// The four checks of the seed's tests/test_session_checkpointing.py, through the shared client against a
// running checkpointer.
describe("seed scenarios", () => {
  const stack = useRunningCheckpointer("seed");

  it("TEST 1: checkpoint creation persists the snapshot once the save is confirmed", async () => {
    const receipt = await stack.client.saveAndConfirm(
      snapshot({ sessionId: "create", seq: 1, state: { account: { portfolioValue: 100_000 }, strategy: { stopLossPct: 2 } } }),
    );
    expect(receipt).toEqual({ outcome: "stored" });
    const { rows } = await stack.env.query("SELECT state FROM checkpoints WHERE session_id = 'create'");
    expect(rows).toEqual([{ state: { account: { portfolioValue: 100_000 }, strategy: { stopLossPct: 2 } } }]);
  });

  it("TEST 2: checkpoint restoration returns the newest snapshot with its state", async () => {
    for (let seq = 1; seq <= 5; seq++) {
      await stack.client.saveAndConfirm(snapshot({ sessionId: "restore", seq, state: { closedTrades: seq } }));
    }
    const latest = await stack.client.latest({ service: "trader", sessionId: "restore" });
    expect(latest).toMatchObject({ sessionId: "restore", epoch: 0, seq: 5, state: { closedTrades: 5 } });
    expect(await stack.client.latest({ service: "trader", sessionId: "never-saved" })).toBeNull();
  });

  it("TEST 3: checkpoint cleanup keeps the newest keepCount snapshots", async () => {
    await Promise.all(Array.from({ length: 13 }, (_, i) => stack.client.saveAndConfirm(snapshot({ sessionId: "cleanup", seq: i + 1 }))));
    expect((await stack.client.stats({ service: "trader", sessionId: "cleanup" })).totalCheckpoints).toBe(13);

    expect(await stack.client.cleanup({ keepCount: 5, service: "trader", sessionId: "cleanup" })).toEqual({ deleted: 8 });
    const remaining = await stack.client.history({ service: "trader", sessionId: "cleanup", limit: 100 });
    expect(remaining.map((s) => s.seq)).toEqual([13, 12, 11, 10, 9]);
    expect(await stack.client.cleanup({ keepCount: 5, service: "trader", sessionId: "cleanup" })).toEqual({ deleted: 0 });
  });

  it("TEST 4: session resume with checkpoint finds the owner's last active session and continues it", async () => {
    await stack.client.saveAndConfirm(snapshot({ sessionId: "old-day", ownerId: "acct-7", seq: 1, status: "stopped" }));
    await stack.client.saveAndConfirm(
      snapshot({ sessionId: "today", ownerId: "acct-7", seq: 1, state: { positions: ["AAPL", "MSFT", "GOOGL"] } }),
    );
    const resumed = await stack.client.latest({ service: "trader", ownerId: "acct-7", status: ["active", "interrupted"] });
    expect(resumed).toMatchObject({ sessionId: "today", seq: 1, state: { positions: ["AAPL", "MSFT", "GOOGL"] } });

    // The resumed process continues the same session under a new epoch (it is the new owner).
    await stack.client.saveAndConfirm(snapshot({ sessionId: "today", ownerId: "acct-7", epoch: 1, seq: 0, state: { positions: ["AAPL"] } }));
    expect(await stack.client.latest({ service: "trader", sessionId: "today" })).toMatchObject({ epoch: 1, seq: 0 });
    const stats = await stack.client.stats({ service: "trader" });
    expect(stats.sessions).toBeGreaterThanOrEqual(2);
    expect(stats.bytes).toBeGreaterThan(0);
  });
});
