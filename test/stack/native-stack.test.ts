import { DECISION_ACTIONS, requestDecision, thinkJobId, type ThinkResult } from "@savepoint/shared";
import { createTestEnvironment, type TestEnvironment } from "@savepoint/shared/testing";
import { Queue, QueueEvents } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nativePlan } from "../../scripts/stack/compose.mjs";
import { isRunning, NativeStack, pollUntil } from "./support.js";

const services = nativePlan({}).filter((service) => service.kind === "service");

describe("npm run stack (native, no Docker)", () => {
  let env: TestEnvironment;
  let stack: NativeStack;
  let reasoning: { queue: Queue; events: QueueEvents };

  /** Asks the stack's reasoners for one decision and waits for it. */
  const think = async (agentId: string, maxIterations: number): Promise<ThinkResult> => {
    const job = await requestDecision(reasoning.queue, thinkJobId(agentId, Date.now()), {
      agentId,
      symbol: "AAPL",
      marketContext: { price: 187.4, previousClose: 184.1 },
      maxIterations,
    });
    return (await job.waitUntilFinished(reasoning.events, 40_000)) as ThinkResult;
  };

  /** The id in the trader's newest log line "✓ <event>: <session id>" (New session, Resumed session), once written. */
  const traderSession = async (event: string): Promise<string> => {
    const logged = (line: { source: string; text: string }) => line.source === "trader" && line.text.includes(`"msg":"✓ ${event}: `);
    await stack.waitForLine(logged, 30_000, `the trader's "${event}"`);
    const text = stack.lines.findLast(logged)!.text;
    return String((JSON.parse(text) as { sessionId: string }).sessionId);
  };

  beforeAll(async () => {
    env = await createTestEnvironment("native_stack");
    stack = await NativeStack.start(env, {
      // From the .env file, as docker compose would take them: a model server quick enough for a short test,
      // slow enough that a run can be interrupted mid-thought, and the board's password.
      MODEL_SERVER_LATENCY_MS: "150",
      BULL_BOARD_PASSWORD: "stack-test-password",
      // A trader that ticks twice a second on a market moving a one-minute bar every 100 ms, and decisions
      // short enough that its first trades come within seconds.
      TRADER_INTERVAL_SECONDS: "0.5",
      SIM_TICK_MS: "100",
      // The trader still assumes an instant broker in an always-open market, and ticking twice a second it would
      // pass Alpaca's 200 requests a minute: the simulator's named shortcuts, as the trader's own tests use them.
      SIM_INSTANT_ORDERS: "true",
      SIM_MARKET_HOURS: "always_open",
      SIM_REQUESTS_PER_MINUTE: "0",
      REASONER_MAX_ITERATIONS: "5",
    });
    await stack.waitForLine((line) => line.source === "stack" && line.text.startsWith("stack is up"), 60_000, "the stack coming up");
    const connection = { url: env.redisUrl, maxRetriesPerRequest: null };
    reasoning = {
      queue: new Queue("reasoning", { connection, prefix: env.queuePrefix }),
      events: new QueueEvents("reasoning", { connection, prefix: env.queuePrefix }),
    };
    await reasoning.events.waitUntilReady();
  });

  afterAll(async () => {
    await reasoning?.events.close();
    await reasoning?.queue.close();
    await stack?.destroy();
    await env?.dispose();
  });

  it("migrates first, then starts each service once what it depends on is healthy, as compose orders them", async () => {
    const ready = (name: string) =>
      stack.lines.findIndex((line) => line.source === "stack" && (line.text === `${name} done` || line.text.startsWith(`${name} healthy`) || line.text === `${name} answers`));
    const started = (name: string) => stack.lines.findIndex((line) => line.source === name && line.text.startsWith("started: "));

    expect(ready("migrate")).toBeGreaterThan(ready("postgres"));
    for (const service of services) {
      expect(started(service.name), `${service.name} started`).toBeGreaterThanOrEqual(0);
      for (const dependency of Object.keys(service.dependsOn ?? {})) {
        expect(ready(dependency), `${dependency} ready before ${service.name} starts`).toBeGreaterThanOrEqual(0);
        expect(ready(dependency), `${dependency} ready before ${service.name} starts`).toBeLessThan(started(service.name));
      }
    }
  });

  it("serves /healthz and, where a service has it, /readyz on every service", async () => {
    for (const service of services) {
      const paths = service.health?.endsWith("/readyz") ? ["/healthz", "/readyz"] : ["/healthz"];
      for (const path of paths) {
        const response = await fetch(stack.url(service.name, path));
        expect(response.status, `${service.name} ${path}: ${await response.text()}`).toBe(200);
      }
    }
  });

  it("answers a think job through the reasoner and the model server", async () => {
    const result = await think("stack-smoke", 4);

    expect(DECISION_ACTIONS).toContain(result.action);
    expect(result.modelCalls).toBeGreaterThan(0);
  });

  it("resumes a run mid-thought on the reasoner restarted after it was stopped, as compose's restart policy would", async () => {
    const agentId = "stack-restart";
    const decision = think(agentId, 12);
    const iterations = async () =>
      Number((await env.query("SELECT count(*) AS n FROM checkpoints WHERE service = 'reasoner' AND owner_id = $1 AND kind = 'iteration'", [agentId])).rows[0].n);
    await pollUntil(iterations, (count) => count >= 2, 15_000, "two iterations checkpointed");
    const [reasoner] = stack.pids().get("reasoner")!;

    process.kill(reasoner!, "SIGTERM");
    const result = await decision;

    expect(stack.pids().get("reasoner")!.length, "the runner started a second reasoner").toBe(2);
    expect(result.resumed).toBe(true);
    expect(result.resumedAtIteration).toBeGreaterThanOrEqual(2);
    expect(result.modelCallsSaved).toBeGreaterThan(0);
  });

  it("runs a trader session that trades through the simulator on the reasoners' decisions", async () => {
    const sessionId = await traderSession("New session");
    const decided = async () => (await reasoning.queue.getJobs(["completed"])).filter((job) => job.data.agentId === sessionId).length;
    const placed = async () => {
      const state = (await (await fetch(stack.url("alpaca-simulator", "/_sim/state"))).json()) as { orders: Array<{ client_order_id: string }> };
      return state.orders.filter((order) => order.client_order_id.startsWith(`${sessionId}:`)).length;
    };

    expect(await pollUntil(decided, (count) => count >= 1, 20_000, "a reasoner decision for the trader")).toBeGreaterThanOrEqual(1);
    expect(await pollUntil(placed, (count) => count >= 1, 30_000, "an order of the session at the simulator")).toBeGreaterThanOrEqual(1);
  });

  it("resumes the same trader session when the trader is stopped mid-session and the runner restarts it", async () => {
    const sessionId = await traderSession("New session");
    const [trader] = stack.pids().get("trader")!;

    process.kill(trader!, "SIGTERM");
    expect(await traderSession("Resumed session")).toBe(sessionId);

    expect(stack.pids().get("trader")!.length, "the runner started a second trader").toBe(2);
    const sessions = await pollUntil(
      async () => (await env.query("SELECT session_id, epoch::int AS epoch FROM trading_sessions")).rows,
      (rows) => rows.length === 1 && rows[0]?.epoch === 1,
      10_000,
      "the session under the resumed trader's epoch",
    );
    expect(sessions).toEqual([{ session_id: sessionId, epoch: 1 }]);
  });

  it("stops every service on Ctrl+C, dependents first, and exits 0", async () => {
    const pids = [...stack.pids().values()].flat();
    const signalledAt = stack.lines.length;
    const firstAfterSignal = (name: string, message: string) => {
      const index = stack.lines.findIndex((line, at) => at >= signalledAt && line.source === name && line.text.includes(`"msg":"${message}"`));
      return index < 0 ? Number.POSITIVE_INFINITY : index;
    };
    const shuttingDown = (name: string) => firstAfterSignal(name, "shutting down");
    const shutDown = (name: string) => firstAfterSignal(name, "shut down");

    stack.signal("SIGINT");
    const code = await stack.exited;

    expect(code).toBe(0);
    expect(pids.filter(isRunning)).toEqual([]);
    for (const service of services) {
      const said = stack.lines.slice(signalledAt).filter((line) => line.source === service.name || line.text.includes(service.name)).map((line) => line.text);
      expect(shutDown(service.name), `${service.name} shut down gracefully; after the signal it said:\n${said.join("\n")}`).toBeLessThan(Number.POSITIVE_INFINITY);
      for (const dependency of Object.keys(service.dependsOn ?? {})) {
        if (!services.some((candidate) => candidate.name === dependency)) continue; // redis, postgres: not the runner's to stop
        expect(shutDown(service.name), `${service.name} stopped before ${dependency}`).toBeLessThan(shuttingDown(dependency));
      }
    }
  });
});
