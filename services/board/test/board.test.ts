import { QUEUE_NAMES, createRedisConnection, waitForRedis } from "@savepoint/shared";
import { createTestEnvironment, ServiceProcess, type TestEnvironment } from "@savepoint/shared/testing";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basicAuth, PASSWORD, SEEDED_AGENTS, SEEDED_JOBS, seedJobs, startBoard, USER, type RunningBoard } from "./support.js";

interface QueuesResponse {
  queues: Array<{ name: string; readOnlyMode: boolean; counts: Record<string, number>; jobs: Array<{ name: string; data: { agentId?: string } }> }>;
}

describe("Bull Board", () => {
  let env: TestEnvironment;
  let board: RunningBoard;
  let connection: Redis;
  const started: ServiceProcess[] = [];

  const waitingJobs = async (queue: string) => {
    const handle = new Queue(queue, { connection, prefix: env.queuePrefix });
    try {
      return { waiting: await handle.getWaitingCount(), paused: await handle.isPaused() };
    } finally {
      await handle.close();
    }
  };

  beforeAll(async () => {
    env = await createTestEnvironment("board");
    await seedJobs(env);
    connection = createRedisConnection(env.redisUrl, "producer", "board-test");
    await waitForRedis(connection);
    board = await startBoard(env);
    started.push(board.process);
  });

  afterAll(async () => {
    await Promise.all(started.map((process) => process.kill("SIGTERM")));
    connection?.disconnect();
    await env?.dispose();
  });

  it("refuses to start without BULL_BOARD_PASSWORD and names the variable", async () => {
    const main = fileURLToPath(new URL("../dist/main.js", import.meta.url));
    const process = ServiceProcess.start(main, { ...env.env, HTTP_PORT: "0", BULL_BOARD_PASSWORD: "" });
    started.push(process);

    const exit = await process.exited;

    expect(exit.code).toBe(1);
    expect(process.output.join("\n")).toMatch(/BULL_BOARD_PASSWORD: is required: Bull Board has no default password/);
  });

  it("answers 401 with a Basic challenge without credentials and with wrong ones", async () => {
    const attempts = [
      {},
      basicAuth(USER, "wrong password"),
      basicAuth("someone-else", PASSWORD),
    ];
    for (const headers of attempts) {
      for (const path of ["/", "/api/queues"]) {
        const response = await fetch(`${board.url}${path}`, { headers });
        expect(response.status, `${path} with ${JSON.stringify(headers)}`).toBe(401);
        expect(response.headers.get("www-authenticate")).toMatch(/^Basic realm="Savepoint Bull Board"/);
      }
    }
  });

  it("lists the four queues with their jobs through its API", async () => {
    const response = await fetch(`${board.url}/api/queues?activeQueue=reasoning&status=waiting`, { headers: basicAuth(USER, PASSWORD) });
    expect(response.status).toBe(200);
    const { queues } = (await response.json()) as QueuesResponse;

    expect(queues.map((queue) => queue.name).sort()).toEqual([...QUEUE_NAMES].sort());
    for (const queue of queues) expect(queue.counts.waiting, queue.name).toBe(SEEDED_JOBS[queue.name as keyof typeof SEEDED_JOBS]);
    const reasoning = queues.find((queue) => queue.name === "reasoning")!;
    expect(reasoning.jobs.map((job) => job.data.agentId).sort()).toEqual([...SEEDED_AGENTS].sort());
  });

  it("is read-only by default: changes are refused with 405 and nothing changes", async () => {
    const headers = basicAuth(USER, PASSWORD);
    const before = await waitingJobs("reasoning");
    const job = { name: "think", data: { agentId: "agent-3", symbol: "NVDA", marketContext: { price: 120 } }, options: {} };

    const changes = [
      fetch(`${board.url}/api/queues/reasoning/pause`, { method: "PUT", headers }),
      fetch(`${board.url}/api/queues/reasoning/empty`, { method: "PUT", headers }),
      fetch(`${board.url}/api/queues/reasoning/add`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify(job),
      }),
    ];
    for (const response of await Promise.all(changes)) {
      expect(response.status).toBe(405);
      expect(await response.json()).toEqual({ error: { key: "ERRORS.QUEUE_READ_ONLY" } });
    }

    expect(await waitingJobs("reasoning")).toEqual(before);
    expect(before).toEqual({ waiting: SEEDED_JOBS.reasoning, paused: false });
  });

  it("allows changes when BULL_BOARD_READ_ONLY=false", async () => {
    const writable = await startBoard(env, { BULL_BOARD_READ_ONLY: "false" });
    started.push(writable.process);
    const headers = basicAuth(USER, PASSWORD);

    const pause = await fetch(`${writable.url}/api/queues/checkpoint-maintenance/pause`, { method: "PUT", headers });
    expect(pause.status).toBe(200);
    expect((await waitingJobs("checkpoint-maintenance")).paused).toBe(true);

    const resume = await fetch(`${writable.url}/api/queues/checkpoint-maintenance/resume`, { method: "PUT", headers });
    expect(resume.status).toBe(200);
    expect((await waitingJobs("checkpoint-maintenance")).paused).toBe(false);
  });

  it("serves /healthz, /readyz (Redis answers) and /metrics without credentials", async () => {
    const [health, ready, metrics] = await Promise.all([
      fetch(`${board.url}/healthz`),
      fetch(`${board.url}/readyz`),
      fetch(`${board.url}/metrics`),
    ]);

    expect(health.status).toBe(200);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { "bull-board": "ok" } });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/process_cpu_seconds_total\{service="bull-board"\}/);
  });
});
