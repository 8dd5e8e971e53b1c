import { createLogger } from "@savepoint/shared";
import { createTestEnvironment, ServiceProcess, type TestEnvironment } from "@savepoint/shared/testing";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsoleStore } from "../src/store.js";
import {
  basicAuth,
  otherSnapshots,
  PASSWORD,
  reasoningSnapshots,
  REASONING_AGENT,
  REASONING_SESSION,
  seedSnapshots,
  startConsole,
  TRADING_ACCOUNT,
  TRADING_SESSION,
  TRADING_RESUME,
  tradingSnapshots,
  USER,
  type RunningConsole,
} from "./support.js";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const OTHERS = 7;

// The answers are what these tests check, field by field; typing them up front would restate the code under test.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Answer = Record<string, any>;

describe("the console's JSON API, over a database the real checkpointer wrote", () => {
  let env: TestEnvironment;
  let service: RunningConsole;
  const started: ServiceProcess[] = [];
  const get = async (path: string) => {
    const response = await fetch(`${service.url}${path}`, { headers: basicAuth(USER, PASSWORD) });
    return { status: response.status, body: (await response.json()) as Answer };
  };

  beforeAll(async () => {
    env = await createTestEnvironment("console_api");
    await seedSnapshots(env, [...tradingSnapshots(), ...reasoningSnapshots(), ...otherSnapshots(OTHERS)]);
    service = await startConsole(env);
    started.push(service.process);
  });

  afterAll(async () => {
    await Promise.all(started.map((process) => process.kill("SIGTERM")));
    await env?.dispose();
  });

  it("lists every session, most recently written first, with its position, counts and resumes", async () => {
    const { status, body } = await get("/api/sessions");

    expect(status).toBe(200);
    expect(body.sessions.map((session: { sessionId: string }) => session.sessionId)).toEqual([
      ...Array.from({ length: OTHERS }, (_, index) => `other-${OTHERS - 1 - index}`),
      REASONING_SESSION,
      TRADING_SESSION,
    ]);
    const trading = body.sessions.find((session: { sessionId: string }) => session.sessionId === TRADING_SESSION);
    expect(trading).toMatchObject({
      service: "trader", ownerId: TRADING_ACCOUNT, status: "active", latest: { epoch: 2, seq: 2 }, checkpoints: 9, resumes: 1,
    });
    expect(trading.bytes).toBeGreaterThan(0);
    expect(body.next).toBeNull();
  });

  it("filters by service, status and owner, and pages by keyset without repeating or skipping a session", async () => {
    const reasoner = await get(`/api/sessions?service=reasoner&status=completed&owner=${REASONING_AGENT}`);
    expect(reasoner.body.sessions.map((session: { sessionId: string }) => session.sessionId)).toEqual([REASONING_SESSION]);
    expect((await get("/api/sessions?service=reasoner&status=interrupted")).body.sessions).toEqual([]);
    const owned = await get("/api/sessions?service=batch&owner=owner-0");
    expect(owned.body.sessions.map((session: { sessionId: string }) => session.sessionId)).toEqual(["other-6", "other-4", "other-2", "other-0"]);

    const seen: string[] = [];
    let path = "/api/sessions?service=batch&limit=3";
    for (;;) {
      const { body } = await get(path);
      seen.push(...body.sessions.map((session: { sessionId: string }) => session.sessionId));
      if (!body.next) break;
      path = `/api/sessions?service=batch&limit=3&after=${body.next}`;
    }
    expect(seen).toEqual(Array.from({ length: OTHERS }, (_, index) => `other-${OTHERS - 1 - index}`));
  });

  it("refuses a bad query parameter with 400, naming it and what it must be", async () => {
    for (const [path, message] of [
      ["/api/sessions?limit=0", "query: limit: must be at least 1"],
      ["/api/sessions?status=sleeping", "query: status: "],
      ["/api/sessions?after=abc", "query: after: must be the cursor of the previous page"],
      ["/api/sessions?colour=blue", "query: "],
      ["/api/sessions/trader/a%20b", "path: sessionId: must be 1-128 characters"],
      [`/api/sessions/trader/${TRADING_SESSION}?after=2`, "query: after: must be a checkpoint position epoch.seq"],
    ] as const) {
      const { status, body } = await get(path);
      expect(status, path).toBe(400);
      expect(body.error.code, path).toBe("invalid_request");
      expect(body.error.message, path).toContain(message);
    }
  });

  it("answers a session with its timeline in (epoch, seq) order, paged after a position", async () => {
    const { status, body } = await get(`/api/sessions/trader/${TRADING_SESSION}`);
    expect(status).toBe(200);
    expect(body.session.sessionId).toBe(TRADING_SESSION);
    expect(body.timeline.map((entry: { epoch: number; seq: number }) => `${entry.epoch}.${entry.seq}`)).toEqual([
      "1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "2.0", "2.1", "2.2",
    ]);
    expect(body.timeline[5]).toMatchObject({ kind: "shutdown", status: "interrupted", takenAt: "2026-01-05T14:35:00.000Z" });

    const page = await get(`/api/sessions/trader/${TRADING_SESSION}?after=1.4&limit=2`);
    expect(page.body.timeline.map((entry: { epoch: number; seq: number }) => `${entry.epoch}.${entry.seq}`)).toEqual(["1.5", "2.0"]);
    expect(page.body.next).toBe("2.0");

    const missing = await get("/api/sessions/trader/no-such-session");
    expect(missing.status).toBe(404);
    expect(missing.body.error).toEqual({ code: "not_found", message: "no trader session no-such-session is stored" });
  });

  it("answers the trading view: equity curve, positions, closed trades and the resume with its reconciliation", async () => {
    const { status, body } = await get(`/api/trading/${TRADING_SESSION}`);

    expect(status).toBe(200);
    expect(body.equity.map((point: { portfolioValue: number }) => point.portfolioValue)).toEqual([
      100_000, 100_010, 100_060, 100_100, 100_120, 100_120, 100_150, 100_180, 100_140,
    ]);
    expect(body.equity[1]).toMatchObject({ epoch: 1, seq: 1, openPositions: 1, realizedPl: 0 });
    expect(body.positions.map((position: { symbol: string; origin: string }) => [position.symbol, position.origin])).toEqual([["MSFT", "adopted"]]);
    expect(body).toMatchObject({ symbols: ["AAPL", "MSFT"], strategy: "rule", closedTrades: 2, realizedPl: 150, truncated: false, unreadable: [] });
    expect(body.closings).toEqual([
      expect.objectContaining({ epoch: 1, seq: 4, trades: 1, realizedPl: 120, positions: [expect.objectContaining({ symbol: "AAPL", tradeNo: 1 })] }),
      expect.objectContaining({ epoch: 2, seq: 0, trades: 1, realizedPl: 30, positions: [] }),
    ]);
    expect(body.resumes).toEqual([
      {
        fromEpoch: 1, toEpoch: 2, downtimeMs: 10 * 60_000,
        lastBefore: { epoch: 1, seq: 5, kind: "shutdown", status: "interrupted", takenAt: "2026-01-05T14:35:00.000Z" },
        firstAfter: { epoch: 2, seq: 0, kind: "event", status: "active", takenAt: "2026-01-05T14:45:00.000Z" },
        report: TRADING_RESUME,
        positionsOpened: ["MSFT#1"], positionsClosed: [], closedTradesAdded: 1, realizedPlAdded: 30,
      },
    ]);
  });

  it("answers the reasoning view: each iteration with the worker and epoch that wrote it, the interruption and the resume", async () => {
    const { status, body } = await get(`/api/reasoning/${REASONING_SESSION}`);

    expect(status).toBe(200);
    expect(body).toMatchObject({ agentId: REASONING_AGENT, symbol: "AAPL", maxIterations: 4, modelCalls: 4, unreadable: [] });
    expect(body.iterations.map((step: { iteration: number; type: string; epoch: number; worker: string }) => [step.iteration, step.type, step.epoch, step.worker])).toEqual([
      [1, "question", 1, "host-a:101"],
      [2, "options", 1, "host-a:101"],
      [3, "evaluation", 2, "host-b:202"],
      [4, "decision", 2, "host-b:202"],
    ]);
    expect(body.iterations[3].decision).toMatchObject({ action: "OPEN_LONG", confidence: 0.8 });
    expect(body.attempts.map((attempt: { epoch: number; worker: string; market: { price: number } }) => [attempt.epoch, attempt.worker, attempt.market.price])).toEqual([
      [1, "host-a:101", 187.2],
      [2, "host-b:202", 188.1],
    ]);
    expect(body.events.map((event: { type: string }) => event.type)).toEqual(["interrupted", "completed"]);
    expect(body.events[0]).toMatchObject({ atIteration: 3, reason: "SIGTERM", worker: "host-a:101" });
    expect(body.resumes).toEqual([
      expect.objectContaining({ fromEpoch: 1, toEpoch: 2, worker: "host-b:202", resumedAtIteration: 3, modelCallsSaved: 2, downtimeMs: 7 * 60_000 }),
    ]);
  });

  it("refuses actions while read-only, with a code", async () => {
    const response = await fetch(`${service.url}/api/actions/fork`, { method: "POST", headers: basicAuth(USER, PASSWORD) });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("read_only");
  });

  it("answers 401 with a Basic challenge without credentials and with wrong ones, on the API and the pages", async () => {
    for (const headers of [{}, basicAuth(USER, "wrong password"), basicAuth("someone-else", PASSWORD)]) {
      for (const path of ["/api/sessions", `/api/trading/${TRADING_SESSION}`, "/sessions", "/assets/live.js"]) {
        const response = await fetch(`${service.url}${path}`, { headers });
        expect(response.status, `${path} with ${JSON.stringify(headers)}`).toBe(401);
        expect(response.headers.get("www-authenticate")).toMatch(/^Basic realm="Savepoint console"/);
      }
    }
  });

  it("serves /healthz, /readyz (Postgres answers) and /metrics without credentials", async () => {
    const [health, ready, metrics] = await Promise.all(["/healthz", "/readyz", "/metrics"].map((path) => fetch(`${service.url}${path}`)));
    expect(health!.status).toBe(200);
    expect(ready!.status).toBe(200);
    expect(await ready!.json()).toEqual({ status: "ready", checks: { console: "ok" } });
    expect(await metrics!.text()).toMatch(/process_cpu_seconds_total\{service="console"\}/);
  });

  it("reads on connections that refuse to write, whatever the role", async () => {
    const store = new ConsoleStore({ databaseUrl: env.databaseUrl, poolSize: 1, statementTimeoutMs: 5_000, logger: createLogger({ service: "console-test", level: "silent" }) });
    try {
      const pool = (store as unknown as { pool: pg.Pool }).pool;
      await expect(pool.query("DELETE FROM checkpoints")).rejects.toThrow(/read-only transaction/);
      expect((await store.listSessions({ limit: 500 })).length).toBe(OTHERS + 2);
    } finally {
      await store.close();
    }
  });

  it("refuses to start without CONSOLE_PASSWORD, or with a short one, naming the variable but not the value", async () => {
    for (const [password, message] of [
      ["", "CONSOLE_PASSWORD: is required: the console has no default password"],
      ["hunter2-abc", "CONSOLE_PASSWORD: must be at least 12 characters"],
    ] as const) {
      const process = ServiceProcess.start(MAIN, { ...env.env, HTTP_PORT: "0", CONSOLE_PASSWORD: password });
      started.push(process);
      const exit = await process.exited;
      expect(exit.code).toBe(1);
      const output = process.output.join("\n");
      expect(output).toContain(message);
      if (password) expect(output).not.toContain(password);
    }
  });
});
