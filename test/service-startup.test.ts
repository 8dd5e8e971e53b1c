import { createTestEnvironment, checkpointerMain, ServiceProcess, type TestEnvironment } from "@savepoint/shared/testing";
import { createModelServer, type ModelServer } from "@savepoint/model-server";
import { once } from "node:events";
import { createRequire } from "node:module";
import { createServer, type Server } from "node:net";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Start-up mistakes a person at a terminal makes, met through the real entry points as separate processes.
const BOARD_MAIN = createRequire(import.meta.url).resolve("@savepoint/board");
const TRADER_MAIN = createRequire(import.meta.url).resolve("@savepoint/trader");
const CONSOLE_MAIN = createRequire(import.meta.url).resolve("@savepoint/console");
const REASONER_MAIN = createRequire(import.meta.url).resolve("@savepoint/reasoner");
// The simulator's package exports its library; its entry point sits beside it.
const SIMULATOR_MAIN = join(dirname(createRequire(import.meta.url).resolve("@savepoint/alpaca-simulator")), "main.js");

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  server.listen(0, "0.0.0.0");
  await once(server, "listening");
  return { server, port: (server.address() as { port: number }).port };
}

/** A port nothing listens on: taken from the OS, then let go. */
async function closedPort(): Promise<number> {
  const { server, port } = await listening();
  server.close();
  await once(server, "close");
  return port;
}

describe("service start-up", () => {
  let env: TestEnvironment;
  let taken: { server: Server; port: number };
  let model: ModelServer;
  let modelUrl: string;
  const started: ServiceProcess[] = [];

  beforeAll(async () => {
    env = await createTestEnvironment("startup");
    taken = await listening();
    model = createModelServer({ latencyMs: 0, apiKey: "the-model-server-key" });
    modelUrl = `http://127.0.0.1:${await model.listen(0)}`;
  });

  afterAll(async () => {
    await Promise.all(started.map((service) => service.kill("SIGKILL")));
    taken?.server.close();
    await model?.close();
    await env?.dispose();
  });

  it.each([
    ["bull-board", BOARD_MAIN, { BULL_BOARD_PASSWORD: "correct horse battery staple" }],
    ["checkpointer", checkpointerMain(), {}],
    ["trader", TRADER_MAIN, {}],
    ["console", CONSOLE_MAIN, { CONSOLE_PASSWORD: "correct horse battery staple" }],
  ])("%s on an HTTP_PORT in use exits 1 with one line naming the setting, no stack trace", async (name, main, settings) => {
    const service = ServiceProcess.start(main, { ...env.env, ...settings, HTTP_PORT: String(taken.port) });
    started.push(service);

    const exit = await service.exited;

    expect(exit.code).toBe(1);
    expect(service.output).toEqual([
      `${name}: HTTP_PORT=${taken.port} is in use: another process listens on it; stop that process or set HTTP_PORT to a free port`,
    ]);
  });

  it("reasoner with an unreachable REDIS_URL logs the outage once, then exits 1 with one line naming the setting, no stack trace", async () => {
    const redisUrl = `redis://127.0.0.1:${await closedPort()}`;
    const service = ServiceProcess.start(REASONER_MAIN, { ...env.env, HTTP_PORT: "0", REDIS_URL: redisUrl });
    started.push(service);

    const exit = await service.exited;

    expect(exit.code).toBe(1);
    expect(service.logs.filter((line) => line.msg === "Redis unreachable; reconnecting")).toHaveLength(1);
    expect(service.output.filter((line) => !line.startsWith("{"))).toEqual([
      "reasoner: Redis did not become ready within 10000 ms (status reconnecting); check REDIS_URL or REDIS_CLUSTER_NODES",
    ]);
  });

  it("alpaca-simulator on a SIM_PORT in use exits 1 with one line naming the setting, no stack trace", async () => {
    const service = ServiceProcess.start(SIMULATOR_MAIN, { ...env.env, SIM_PORT: String(taken.port) });
    started.push(service);

    const exit = await service.exited;

    expect(exit.code).toBe(1);
    expect(service.output.filter((line) => !line.startsWith("{"))).toEqual([
      `alpaca-simulator: SIM_PORT=${taken.port} is in use: another process listens on it; stop that process or set SIM_PORT to a free port`,
    ]);
  });

  it.each([
    [
      "a key the model API refuses",
      () => ({ ANTHROPIC_API_KEY: "not-the-key" }),
      () => `reasoner: the model API at ${modelUrl} refused ANTHROPIC_API_KEY (status 401: invalid x-api-key); set ANTHROPIC_API_KEY to a key it accepts`,
    ],
    [
      "an ANTHROPIC_MODEL the model API does not know",
      () => ({ ANTHROPIC_API_KEY: "the-model-server-key", ANTHROPIC_MODEL: "claude-sonet-5-5" }),
      () => `reasoner: ANTHROPIC_MODEL=claude-sonet-5-5 is not a model the API at ${modelUrl} knows (status 404); set ANTHROPIC_MODEL to one it lists at GET /v1/models`,
    ],
  ])("reasoner with %s exits 1 with one line naming the setting, no stack trace", async (_case, settings, line) => {
    const service = ServiceProcess.start(REASONER_MAIN, { ...env.env, HTTP_PORT: "0", ANTHROPIC_BASE_URL: modelUrl, ...settings() });
    started.push(service);

    const exit = await service.exited;

    expect(exit.code).toBe(1);
    expect(service.output.filter((line) => !line.startsWith("{"))).toEqual([line()]);
  });

  it("reasoner with an ANTHROPIC_BASE_URL nobody answers at exits 1 with one line naming the setting, no stack trace", async () => {
    const baseUrl = `http://127.0.0.1:${await closedPort()}`;
    const service = ServiceProcess.start(REASONER_MAIN, { ...env.env, HTTP_PORT: "0", ANTHROPIC_BASE_URL: baseUrl, ANTHROPIC_API_KEY: "any-key" });
    started.push(service);

    const exit = await service.exited;

    expect(exit.code).toBe(1);
    expect(service.output.filter((line) => !line.startsWith("{"))).toEqual([
      `reasoner: the model API at ${baseUrl} is unreachable (Connection error.); check ANTHROPIC_BASE_URL, or start the local model server (npm run model-server)`,
    ]);
  });

  it("trader with REDIS_CLUSTER_NODES set and a QUEUE_PREFIX that is no hash tag exits 1 with one line naming the fix", async () => {
    const service = ServiceProcess.start(TRADER_MAIN, { ...env.env, HTTP_PORT: "0", REDIS_CLUSTER_NODES: "127.0.0.1:7000", QUEUE_PREFIX: "savepoint" });
    started.push(service);

    const exit = await service.exited;

    expect(exit.code).toBe(1);
    expect(service.output).toEqual(['trader: QUEUE_PREFIX "savepoint" must be a hash tag such as {savepoint} when REDIS_CLUSTER_NODES is set; set QUEUE_PREFIX={savepoint}']);
  });

  it("trader with REDIS_CLUSTER_NODES nobody answers at exits 1 with one line naming the setting, no stack trace", async () => {
    const port = await closedPort();
    const service = ServiceProcess.start(TRADER_MAIN, { ...env.env, HTTP_PORT: "0", REDIS_CLUSTER_NODES: `127.0.0.1:${port}`, QUEUE_PREFIX: "{savepoint}" });
    started.push(service);

    const exit = await service.exited;

    expect(exit.code).toBe(1);
    const fatal = service.logs.filter((line) => line.level === 60).map((line) => line.msg);
    expect(fatal).toEqual([expect.stringMatching(new RegExp(`^cannot reach the Redis Cluster at 127\\.0\\.0\\.1:${port} within 5000 ms \\(.*\\); check REDIS_CLUSTER_NODES and that Redis is running$`))]);
    expect(service.output.join("\n")).not.toMatch(/\n\s+at /);
  });

  it("logs JSON when stdout is no terminal and LOG_FORMAT is unset, lines for people with LOG_FORMAT=pretty", async () => {
    const board = (format: string) =>
      ServiceProcess.start(BOARD_MAIN, { ...env.env, HTTP_PORT: "0", BULL_BOARD_PASSWORD: "correct horse battery staple", LOG_FORMAT: format });
    const auto = board("");
    const pretty = board("pretty");
    started.push(auto, pretty);

    await auto.waitForLog("bull-board starting");
    expect(auto.logs[0]).toMatchObject({ level: 30, service: "bull-board", msg: "bull-board starting" });
    await expect.poll(() => pretty.output.find((line) => line.includes("bull-board starting"))).toMatch(
      /^\d{2}:\d{2}:\d{2} INFO {2}bull-board starting {2}httpPort=\d+ redis=redis:\/\/\S+$/,
    );
    expect(pretty.logs).toEqual([]);

    for (const service of [auto, pretty]) expect(await service.kill("SIGTERM")).toEqual({ code: 0, signal: null });
  });

  it("checkpointer with an unreachable DATABASE_URL says at a steady interval that it waits for Postgres, naming the URL without its secrets", async () => {
    const databaseUrl = `postgres://postgres:Le@k3dPart9@127.0.0.1:${await closedPort()}/savepoint?sslmode=disable&password=hunter2`;
    const shown = databaseUrl.replace(":Le@k3dPart9@", ":***@").replace("password=hunter2", "password=***");
    const service = ServiceProcess.start(checkpointerMain(), { ...env.env, HTTP_PORT: "0", DATABASE_URL: databaseUrl });
    started.push(service);

    const starting = await service.waitForLog("checkpointer starting");
    expect(starting.database).toBe(shown);
    const waiting = (line: { msg?: string }) => line.msg?.startsWith(`waiting for Postgres at ${shown}:`) ?? false;
    const first = await service.waitForLog(waiting);
    const second = await service.waitForLog((line) => waiting(line) && line !== first);
    expect(Number(second.waitedMs) - Number(first.waitedMs)).toBeGreaterThanOrEqual(4_000);
    const ready = await fetch(`http://127.0.0.1:${String(starting.httpPort)}/readyz`);
    expect(ready.status).toBe(503);

    expect(await service.kill("SIGTERM")).toEqual({ code: 0, signal: null });
    const output = service.output.join("\n");
    expect(output).not.toContain("k3dPart9");
    expect(output).not.toContain("hunter2");
  }, 30_000);
});
