import { Queue } from "bullmq";
import type { CheckpointClient } from "@savepoint/shared";
import { createTestEnvironment, TcpProxy, type ServiceProcess, type TestEnvironment } from "@savepoint/shared/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { countStored, keysOf, metricValue, opsUrl, readiness, SnapshotStream, storedKeys } from "./fault-support.js";
import { connectClient, spawnCheckpointer } from "./support.js";

/** How long Postgres stays cut off while snapshots keep arriving. */
const OUTAGE_MS = 3_000;

/** The ids of the queue's active jobs (the ones some worker holds), sorted. */
const activeJobIds = async (queue: Queue): Promise<string[]> =>
  (await queue.getJobs(["active"])).map((job) => job.id ?? "").sort();

describe("Postgres unreachable mid-stream", () => {
  let env: TestEnvironment;
  let proxy: TcpProxy;
  let checkpointer: ServiceProcess;
  let client: CheckpointClient;
  let snapshots: Queue;

  beforeAll(async () => {
    env = await createTestEnvironment("pg-outage");
    proxy = await TcpProxy.start("127.0.0.1", Number(new URL(env.databaseUrl).port || 5432));
    checkpointer = await spawnCheckpointer(env, { DATABASE_URL: proxy.rewrite(env.databaseUrl) });
    client = await connectClient(env);
    snapshots = new Queue("checkpoints", { connection: { url: env.redisUrl }, prefix: env.queuePrefix });
  });
  afterAll(async () => {
    await checkpointer?.kill("SIGKILL");
    await snapshots?.close();
    await client?.close();
    await proxy?.close();
    await env?.dispose();
  });

  it("pauses intake, reports not ready, and once Postgres returns stores every snapshot without spending a retry", async () => {
    const ops = await opsUrl(checkpointer);
    const stream = new SnapshotStream(client, { sessions: ["s1", "s2", "s3", "s4"], everyMs: 20, confirm: false }).start();
    await vi.waitFor(async () => expect(await countStored(env)).toBeGreaterThanOrEqual(40), { timeout: 10_000, interval: 50 });
    expect(await readiness(ops)).toMatchObject({ status: 200 });
    expect(await metricValue(ops, "savepoint_database_up")).toBe(1);

    proxy.cut();
    await checkpointer.waitForLog("Postgres unreachable; pausing snapshot intake until it answers again");
    const duringCut = await readiness(ops);
    expect(duringCut.status).toBe(503);
    expect(duringCut.body.checks.checkpointer).toMatch(/unreachable/);
    expect(await metricValue(ops, "savepoint_database_up")).toBe(0);
    // Intake is paused: the jobs in hand wait for Postgres, and everything sent meanwhile stays queued. Paused
    // means no fetch or completion that could still take a job is in flight, so from here no job becomes active.
    await checkpointer.waitForLog("snapshot intake paused: no job is taken until Postgres answers");
    const activeWhenCut = await activeJobIds(snapshots);
    const { wait: waitingWhenCut = 0 } = await snapshots.getJobCounts("wait");
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    const { wait: waitingAfterOutage = 0 } = await snapshots.getJobCounts("wait");
    expect(await activeJobIds(snapshots)).toEqual(activeWhenCut);
    expect(waitingAfterOutage).toBeGreaterThan(waitingWhenCut + 100);
    expect(checkpointer.logs.filter((line) => line.msg === "Postgres unreachable; pausing snapshot intake until it answers again")).toHaveLength(1);

    proxy.restore();
    await checkpointer.waitForLog("Postgres reachable again; resuming snapshot intake");
    await vi.waitFor(async () => expect(await readiness(ops)).toMatchObject({ status: 200, body: { status: "ready" } }), {
      timeout: 5_000,
      interval: 50,
    });
    expect(await metricValue(ops, "savepoint_database_up")).toBe(1);

    // Keep streaming a little after the outage, then let the backlog drain.
    const sentWhenRestored = stream.sent.length;
    await vi.waitFor(() => expect(stream.sent.length).toBeGreaterThanOrEqual(sentWhenRestored + 40), { timeout: 5_000, interval: 20 });
    await stream.stop();
    const sent = keysOf(stream.sent);
    await vi.waitFor(async () => expect(await countStored(env)).toBe(sent.length), { timeout: 20_000, interval: 100 });
    expect(await storedKeys(env)).toEqual(sent);

    // A job is marked completed just after its row commits, so the counts settle a moment after the rows.
    await vi.waitFor(
      async () =>
        expect(await snapshots.getJobCounts("completed", "failed", "wait", "active", "delayed")).toEqual({
          completed: sent.length,
          failed: 0,
          wait: 0,
          active: 0,
          delayed: 0,
        }),
      { timeout: 10_000, interval: 100 },
    );
    const completed = await snapshots.getJobs(["completed"]);
    expect(completed).toHaveLength(sent.length);
    // attemptsMade counts finished attempts: 1 means the first attempt completed, no retry was spent.
    const retried = completed.filter((job) => job.attemptsMade !== 1 || job.attemptsStarted !== 1);
    expect(retried.map((job) => ({ id: job.id, attemptsMade: job.attemptsMade, attemptsStarted: job.attemptsStarted }))).toEqual([]);
    expect(checkpointer.logs.filter((line) => line.msg === "snapshot failed; it will be retried")).toEqual([]);
  });
});
