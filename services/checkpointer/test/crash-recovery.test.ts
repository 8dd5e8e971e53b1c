import { Queue } from "bullmq";
import type { CheckpointClient } from "@savepoint/shared";
import { createTestEnvironment, type ServiceProcess, type TestEnvironment } from "@savepoint/shared/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { countStored, keysOf, SnapshotStream, storedKeys } from "./fault-support.js";
import { connectClient, spawnCheckpointer } from "./support.js";

const SHUTDOWN_TIMEOUT_MS = 5_000;
// Jobs held by a killed checkpointer come back once their lock lapses: short here, so the test is quick.
const OVERRIDES = { JOB_LOCK_DURATION_MS: "2000", SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) };

describe("checkpointer process stopped mid-stream", () => {
  let env: TestEnvironment;
  let client: CheckpointClient;
  let snapshots: Queue;
  const running = new Set<ServiceProcess>();
  const started: ServiceProcess[] = [];

  const start = async () => {
    const checkpointer = await spawnCheckpointer(env, OVERRIDES);
    running.add(checkpointer);
    started.push(checkpointer);
    void checkpointer.exited.then(() => running.delete(checkpointer));
    return checkpointer;
  };
  /** Resolves once the stream has `more` rows stored beyond what was stored when called. */
  const storedGrowsBy = async (more: number) => {
    const target = (await countStored(env)) + more;
    await vi.waitFor(async () => expect(await countStored(env)).toBeGreaterThanOrEqual(target), { timeout: 20_000, interval: 20 });
  };
  /** Stops the stream and checks that every snapshot it sent is stored exactly once and every confirmation came. */
  const expectAllStoredOnce = async (stream: SnapshotStream) => {
    await stream.stop();
    const receipts = await stream.confirmations();
    expect(receipts.filter((receipt) => receipt instanceof Error)).toEqual([]);
    expect(receipts).toHaveLength(stream.sent.length);
    const sessions = new Set(stream.sent.map((s) => s.sessionId));
    const stored = (await storedKeys(env)).filter((key) => sessions.has(key.split("/")[1]!));
    expect(stored).toEqual(keysOf(stream.sent));
    expect(await snapshots.getJobCounts("failed")).toEqual({ failed: 0 });
  };
  /** The jobs of a stream's sessions that a stopped checkpointer left behind and another one took up, from their logs. */
  const redelivered = (stream: SnapshotStream): string[] => {
    const sessions = [...new Set(stream.sent.map((s) => s.sessionId))];
    return started
      .flatMap((checkpointer) => checkpointer.logs)
      .filter((line) => line.msg === "snapshot job redelivered: the checkpointer holding it stopped")
      .map((line) => String(line.jobId))
      .filter((jobId) => sessions.some((sessionId) => jobId.includes(`.trader.${sessionId}.`)));
  };

  beforeAll(async () => {
    env = await createTestEnvironment("crash-recovery");
    client = await connectClient(env, { confirmTimeoutMs: 40_000 });
    snapshots = new Queue("checkpoints", { connection: { url: env.redisUrl }, prefix: env.queuePrefix });
  });
  afterEach(async () => {
    await Promise.all([...running].map((checkpointer) => checkpointer.kill("SIGKILL")));
  });
  afterAll(async () => {
    await snapshots?.close();
    await client?.close();
    await env?.dispose();
  });

  it("SIGKILL at three different moments loses nothing, duplicates nothing, and answers every confirmation", async () => {
    const stream = new SnapshotStream(client, { sessions: ["k1", "k2", "k3", "k4"], everyMs: 25, confirm: true });
    let checkpointer = await start();
    stream.start();

    // 1. In steady streaming, with batches being written.
    await storedGrowsBy(60);
    await checkpointer.kill("SIGKILL");
    checkpointer = await start();

    // 2. The moment it starts consuming again, with the backlog built up while it was down being fetched.
    await checkpointer.kill("SIGKILL");
    checkpointer = await start();

    // 3. Part-way through draining that backlog and the snapshots stranded by the two kills.
    await storedGrowsBy(20);
    await checkpointer.kill("SIGKILL");
    checkpointer = await start();

    await storedGrowsBy(60);
    await expectAllStoredOnce(stream);
    // The kills did strand snapshots in hand (else this test would prove nothing), and they all came back.
    expect(redelivered(stream).length).toBeGreaterThan(0);
    expect(checkpointer.logs.filter((line) => (line.level ?? 0) >= 50)).toEqual([]);
  });

  it("SIGTERM mid-stream exits 0 within SHUTDOWN_TIMEOUT_MS, and after a restart nothing is lost", async () => {
    const stream = new SnapshotStream(client, { sessions: ["t1", "t2", "t3", "t4"], everyMs: 25, confirm: true });
    let checkpointer = await start();
    stream.start();

    await storedGrowsBy(60);
    const signalled = Date.now();
    const exit = await checkpointer.kill("SIGTERM");
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalled).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    expect(checkpointer.logs.some((line) => line.msg === "shut down")).toBe(true);

    checkpointer = await start();
    await storedGrowsBy(60);
    await expectAllStoredOnce(stream);
    // Graceful: it finished the snapshots it held instead of leaving them to stall.
    expect(redelivered(stream)).toEqual([]);
    expect(checkpointer.logs.filter((line) => (line.level ?? 0) >= 50)).toEqual([]);
  });
});
