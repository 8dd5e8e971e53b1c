import { catalogQueues, CheckpointClient, createRedisConnection, SNAPSHOT_QUEUE_SHARDS, sessionShard, waitForRedis, type RedisConnection } from "@savepoint/shared";
import { basicAuth, createTestEnvironment, RedisCluster, ServiceProcess, type RunningWebService, type TestEnvironment } from "@savepoint/shared/testing";
import { Queue } from "bullmq";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOARD_QUEUES, PASSWORD, SEEDED_AGENTS, SEEDED_JOBS, seedJobs, SNAPSHOT, startBoard, USER } from "./support.js";

const BOARD_MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

interface FailedListResponse {
  queues: Array<{ name: string; jobs: Array<{ id: string; data: unknown; failedReason?: string }> }>;
}

interface QueuesResponse {
  queues: Array<{ name: string; readOnlyMode: boolean; counts: Record<string, number>; jobs: Array<{ name: string; data: { agentId?: string } }> }>;
}

describe("Bull Board", () => {
  let env: TestEnvironment;
  let board: RunningWebService;
  let connection: RedisConnection;
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
    const process = ServiceProcess.start(BOARD_MAIN, { ...env.env, HTTP_PORT: "0", BULL_BOARD_PASSWORD: "" });
    started.push(process);

    const exit = await process.exited;

    expect(exit.code).toBe(1);
    expect(process.output.join("\n")).toMatch(/BULL_BOARD_PASSWORD: is required: Bull Board has no default password/);
  });

  it("refuses a BULL_BOARD_PASSWORD shorter than 12 characters, naming the variable but not the value", async () => {
    const process = ServiceProcess.start(BOARD_MAIN, { ...env.env, HTTP_PORT: "0", BULL_BOARD_PASSWORD: "hunter2-abc" });
    started.push(process);

    const exit = await process.exited;

    expect(exit.code).toBe(1);
    const output = process.output.join("\n");
    expect(output).toContain("BULL_BOARD_PASSWORD: must be at least 12 characters");
    expect(output).toContain("(set (value hidden))");
    expect(output).not.toContain("hunter2-abc");
  });

  it("shows a job whose stored data is not valid JSON as stored, and the failed list that holds it, with 200", async () => {
    const key = (id: string) => `${env.queuePrefix}:checkpoint-maintenance:${id}`;
    const finishedOn = Date.now();
    for (const [id, data] of [["readable-1", '{"keepCount":5}'], ["garbled-1", '{"keepCount": 5,,']] as const) {
      await connection.hset(key(id), {
        name: "cleanup", data, opts: "{}", timestamp: String(finishedOn - 1_000), finishedOn: String(finishedOn), atm: "1", failedReason: "seeded as failed",
      });
      await connection.zadd(`${env.queuePrefix}:checkpoint-maintenance:failed`, finishedOn, id);
    }
    const headers = basicAuth(USER, PASSWORD);

    const list = await fetch(`${board.url}/api/queues?activeQueue=checkpoint-maintenance&status=failed`, { headers });
    expect(list.status).toBe(200);
    const { queues } = (await list.json()) as FailedListResponse;
    const jobs = queues.find((queue) => queue.name === "checkpoint-maintenance")!.jobs;
    expect(Object.fromEntries(jobs.map((job) => [job.id, job.data]))).toEqual({
      "readable-1": { keepCount: 5 },
      "garbled-1": {
        unparseable: expect.stringMatching(/^this job's stored fields are not valid JSON \(.+\); shown as stored$/),
        stored: { data: '{"keepCount": 5,,', opts: "{}" },
      },
    });
    expect(jobs.find((job) => job.id === "garbled-1")!.failedReason).toBe("seeded as failed");

    const single = await fetch(`${board.url}/api/queues/checkpoint-maintenance/garbled-1`, { headers });
    expect(single.status).toBe(200);
    const { job, status } = (await single.json()) as { job: { data: { stored: { data: string } } }; status: string };
    expect(status).toBe("failed");
    expect(job.data.stored.data).toBe('{"keepCount": 5,,');
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

  it("lists every queue of the catalog, checkpoints-confirmed included, with their jobs through its API", async () => {
    const response = await fetch(`${board.url}/api/queues?activeQueue=reasoning&status=waiting`, { headers: basicAuth(USER, PASSWORD) });
    expect(response.status).toBe(200);
    const { queues } = (await response.json()) as QueuesResponse;

    expect(queues.map((queue) => queue.name).sort()).toEqual([...BOARD_QUEUES].sort());
    expect(BOARD_QUEUES).toContain("checkpoints-confirmed");
    for (const queue of queues) expect(queue.counts.waiting, queue.name).toBe(SEEDED_JOBS[queue.name]);
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

  it("says where it serves: the port the OS chose for HTTP_PORT=0", () => {
    expect(board.process.logs.map((line) => line.msg)).toContain(`Bull Board on ${board.url}/ (read-only)`);
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

describe("Bull Board on a 3-master Redis Cluster", () => {
  let env: TestEnvironment;
  let cluster: RedisCluster;
  let board: RunningWebService | undefined;
  let client: CheckpointClient | undefined;
  let prefix: string;

  beforeAll(async () => {
    env = await createTestEnvironment("board-cluster");
    cluster = await RedisCluster.start(3);
    prefix = `{${env.queuePrefix}}`;
    board = await startBoard({ ...env, env: { ...env.env, QUEUE_PREFIX: prefix, REDIS_CLUSTER_NODES: cluster.nodesEnv } });
    client = await CheckpointClient.connect({ redis: { clusterNodes: cluster.clusterNodes }, queuePrefix: prefix });
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await board?.process.kill("SIGTERM");
    await cluster?.stop();
    await env?.dispose();
  });

  it("lists every snapshot shard beside the other queues, and the jobs waiting on a shard", async () => {
    await client!.save(SNAPSHOT);
    const shard = `checkpoints-${sessionShard(SNAPSHOT.service, SNAPSHOT.sessionId, SNAPSHOT_QUEUE_SHARDS)}`;
    const response = await fetch(`${board!.url}/api/queues?activeQueue=${shard}&status=waiting`, { headers: basicAuth(USER, PASSWORD) });
    expect(response.status).toBe(200);
    const { queues } = (await response.json()) as QueuesResponse;

    const expected = catalogQueues(prefix, true).map(({ name }) => name);
    expect(expected).toEqual(expect.arrayContaining(["checkpoints", "checkpoints-0", "checkpoints-7", "checkpoints-confirmed-0", "checkpoints-confirmed-7", "checkpoint-requests", "reasoning"]));
    expect(queues.map((queue) => queue.name).sort()).toEqual([...expected].sort());
    const waiting = Object.fromEntries(queues.map((queue) => [queue.name, queue.counts.waiting]));
    expect(waiting).toEqual(Object.fromEntries(expected.map((name) => [name, name === shard ? 1 : 0])));
    expect(board!.process.logs.find((line) => String(line.msg).startsWith("Bull Board on"))?.queues).toEqual(expected);
  });
});
