import { getPriority } from "node:os";
import { Queue } from "bullmq";
import { CheckpointTimeoutError } from "@savepoint/shared";
import { createTestEnvironment, spawnCheckpointer, type ServiceProcess, type TestEnvironment } from "@savepoint/shared/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { snapshot, useRunningCheckpointer } from "./support.js";

async function storedSessions(env: TestEnvironment): Promise<string[]> {
  const { rows } = await env.query<{ session_id: string }>("SELECT session_id FROM checkpoints ORDER BY 1");
  return rows.map((row) => row.session_id);
}

function useQueue(stack: { env: TestEnvironment }, name: string): { queue: Queue } {
  const handle = {} as { queue: Queue };
  beforeAll(() => {
    handle.queue = new Queue(name, { connection: { url: stack.env.redisUrl }, prefix: stack.env.queuePrefix });
  });
  afterAll(async () => {
    await handle.queue?.close();
  });
  return handle;
}

// SNAPSHOT_LANES lets confirmed saves have a checkpointer process of their own, beside one for the backlog.
describe("SNAPSHOT_LANES", () => {
  describe("confirmed", () => {
    const stack = useRunningCheckpointer("lanes-confirmed", { overrides: { SNAPSHOT_LANES: "confirmed" } });
    const fireAndForget = useQueue(stack, "checkpoints");

    it("stores and confirms confirmed saves and leaves fire-and-forget ones queued for a checkpointer that takes them", async () => {
      await stack.client.save(snapshot({ sessionId: "fire-and-forget" }));
      const receipt = await stack.client.saveAndConfirm(snapshot({ sessionId: "confirmed" }));

      expect(receipt.outcome).toBe("stored");
      expect(await storedSessions(stack.env)).toEqual(["confirmed"]);
      expect(await fireAndForget.queue.getJobCounts("wait", "active")).toEqual({ wait: 1, active: 0 });
    });
  });

  describe("fire-and-forget", () => {
    const stack = useRunningCheckpointer("lanes-fire-and-forget", { overrides: { SNAPSHOT_LANES: "fire-and-forget" } });
    const confirmed = useQueue(stack, "checkpoints-confirmed");

    it("stores fire-and-forget saves and leaves confirmed ones queued for a checkpointer that takes them", async () => {
      await expect(stack.client.saveAndConfirm(snapshot({ sessionId: "confirmed" }), { timeoutMs: 500 })).rejects.toBeInstanceOf(CheckpointTimeoutError);
      await stack.client.save(snapshot({ sessionId: "fire-and-forget" }));

      await vi.waitFor(async () => expect(await storedSessions(stack.env)).toEqual(["fire-and-forget"]), { timeout: 10_000, interval: 50 });
      expect(await confirmed.queue.getJobCounts("wait", "active")).toEqual({ wait: 1, active: 0 });
    });
  });

  // The backlog's checkpointer gives the cores to the confirmed one: PROCESS_NICENESS, applied by the entry point.
  describe("fire-and-forget at PROCESS_NICENESS=19", () => {
    let env: TestEnvironment;
    let checkpointer: ServiceProcess;
    beforeAll(async () => {
      env = await createTestEnvironment("lanes-niceness");
      checkpointer = await spawnCheckpointer(env, { SNAPSHOT_LANES: "fire-and-forget", PROCESS_NICENESS: "19" });
    });
    afterAll(async () => {
      await checkpointer?.kill("SIGTERM");
      await env?.dispose();
    });

    it("runs its event loop at nice 19 and says so", async () => {
      expect(getPriority(checkpointer.child.pid)).toBe(19);
      expect(checkpointer.logs.some((line) => line.msg === "running at nice 19")).toBe(true);
    });
  });
});
