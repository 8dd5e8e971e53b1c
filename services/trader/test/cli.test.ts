import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCommandLine, UsageError } from "../src/cli/options.js";
import { brokerConnection, traderEnvSchema } from "../src/config.js";
import type { RunningSimulator } from "@savepoint/alpaca-simulator";
import { eventually, spawnTrader, startTestSimulator, tradingStarted, useTraderStack } from "./support.js";
import { parseEnv } from "@savepoint/shared";
import { RedisServer, type ServiceProcess } from "@savepoint/shared/testing";

/** What a person at the terminal reads: no dumps, no stack frames. */
function expectNoDumps(trader: ServiceProcess): void {
  const output = trader.output.join("\n");
  expect(output).not.toContain("Unhandled error event");
  expect(output).not.toMatch(/^\s+at /m);
  expect(output).not.toContain('"stack"');
}

function usageError(args: string[]): string {
  try {
    parseCommandLine(args);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error(`expected ${args.join(" ")} to be refused`);
}

describe("trader command line", () => {
  it("starts a new session with the seed's defaults when no flag is given", () => {
    expect(parseCommandLine([])).toEqual({
      session: {
        kind: "new",
        symbols: ["AAPL", "MSFT", "GOOGL"],
        strategy: { kind: "rule", stopLossPct: 2, takeProfitPct: 4, positionSize: 10_000, lookbackBars: 15, entryThresholdPct: 0.2 },
      },
      sessionFlags: {},
      reconcileOnly: false,
      takeOver: false,
      intervalMs: 60_000,
      checkpointIntervalMs: 30_000,
      durationMs: null,
    });
  });

  it("reads the seed's flags, normalising the symbol list", () => {
    const parsed = parseCommandLine(["--symbols", " aapl,MSFT,,msft ", "--duration", "0.5", "--interval", "0.25", "--checkpoint-interval", "10", "--strategy", "reasoner"]);
    expect(parsed).toMatchObject({ intervalMs: 250, checkpointIntervalMs: 10_000, durationMs: 30_000 });
    expect(parsed.session).toMatchObject({ kind: "new", symbols: ["AAPL", "MSFT"], strategy: { kind: "reasoner" } });
  });

  it("refuses a zero or negative interval, naming the flag", () => {
    expect(usageError(["--interval", "0"])).toContain("--interval: must be a number of seconds greater than 0");
    expect(usageError(["--interval=-5"])).toContain("--interval: must be a number of seconds greater than 0");
    expect(usageError(["--checkpoint-interval", "soon"])).toContain('--checkpoint-interval: must be a number of seconds (got "soon")');
    expect(usageError(["--duration", "-1"])).toContain("--duration: must be a number of minutes greater than 0");
  });

  it("refuses --resume together with --resume-session, saying which to use", () => {
    expect(usageError(["--resume", "--resume-session", "abc"])).toContain("--resume and --resume-session conflict");
  });

  it("refuses run flags with --reconcile-only, and malformed tickers and session ids", () => {
    expect(usageError(["--reconcile-only", "--duration", "5"])).toContain("--duration cannot be combined with --reconcile-only");
    expect(usageError(["--symbols", "AAPL,b@d"])).toContain("--symbols: must be tickers separated by commas, such as AAPL,MSFT (not a ticker: B@D)");
    expect(usageError(["--resume-session", "has space"])).toContain("--resume-session: must be a session id");
    expect(usageError(["--strategy", "magic"])).toContain("--strategy: must be rule or reasoner");
  });

  it("keeps session flags given with --resume so they can be checked against the resumed session", () => {
    const parsed = parseCommandLine(["--resume", "--symbols", "AAPL", "--stop-loss-pct", "1.5", "--interval", "5"]);
    expect(parsed).toMatchObject({ session: { kind: "resume" }, sessionFlags: { symbols: ["AAPL"], strategy: { stopLossPct: 1.5 } }, intervalMs: 5_000 });
    expect(parseCommandLine(["--reconcile-only"]).session).toEqual({ kind: "resume" });
    expect(parseCommandLine(["--reconcile-only", "--resume-session", "s-1"]).session).toEqual({ kind: "resume-session", sessionId: "s-1" });
  });

  it("--resume-or-new carries the new session's symbols and parameters, and keeps the flags given to check a resumed one", () => {
    const parsed = parseCommandLine(["--resume-or-new", "--strategy", "reasoner", "--symbols", "AAPL"]);
    expect(parsed.session).toEqual({
      kind: "resume-or-new",
      symbols: ["AAPL"],
      strategy: { kind: "reasoner", stopLossPct: 2, takeProfitPct: 4, positionSize: 10_000, lookbackBars: 15, entryThresholdPct: 0.2 },
    });
    expect(parsed.sessionFlags).toEqual({ symbols: ["AAPL"], strategy: { kind: "reasoner" } });
  });

  it("refuses --resume-or-new with --resume, --resume-session or --reconcile-only, naming the flags", () => {
    expect(usageError(["--resume-or-new", "--resume"])).toContain("--resume-or-new conflicts with --resume:");
    expect(usageError(["--resume-or-new", "--resume-session", "s-1"])).toContain("--resume-or-new conflicts with --resume-session:");
    expect(usageError(["--resume-or-new", "--reconcile-only"])).toContain("--resume-or-new conflicts with --reconcile-only:");
    expect(usageError(["--resume-or-new", "--resume", "--reconcile-only"])).toContain("--resume-or-new conflicts with --resume, --reconcile-only:");
  });

  it("takes the default interval from TRADER_INTERVAL_SECONDS, which --interval overrides, and names the variable when it is bad", () => {
    expect(parseCommandLine([], { TRADER_INTERVAL_SECONDS: "0.5" }).intervalMs).toBe(500);
    expect(parseCommandLine([], { TRADER_INTERVAL_SECONDS: "" }).intervalMs).toBe(60_000);
    expect(parseCommandLine(["--interval", "2"], { TRADER_INTERVAL_SECONDS: "0.5" }).intervalMs).toBe(2_000);
    expect(parseCommandLine(["--reconcile-only"], { TRADER_INTERVAL_SECONDS: "0.5" }).reconcileOnly).toBe(true);
    try {
      parseCommandLine([], { TRADER_INTERVAL_SECONDS: "-1" });
      expect.unreachable("a negative TRADER_INTERVAL_SECONDS is refused");
    } catch (error) {
      expect((error as Error).message).toContain("TRADER_INTERVAL_SECONDS: must be a number of seconds greater than 0");
    }
  });

  it("refuses an unknown flag", () => {
    expect(usageError(["--symbol", "AAPL"])).toContain("unknown option '--symbol'");
  });

  it("uses the simulator with placeholder keys when no Alpaca keys are set, and Alpaca paper trading when they are", () => {
    expect(brokerConnection(parseEnv(traderEnvSchema, {}))).toMatchObject({ tradingUrl: "http://127.0.0.1:8090", dataUrl: "http://127.0.0.1:8090", simulated: true });
    expect(brokerConnection(parseEnv(traderEnvSchema, { APCA_API_BASE_URL: "http://sim:8090/v2/" }))).toMatchObject({ tradingUrl: "http://sim:8090", dataUrl: "http://sim:8090" });
    expect(brokerConnection(parseEnv(traderEnvSchema, { APCA_API_KEY_ID: "id", APCA_API_SECRET_KEY: "secret" }))).toMatchObject({
      tradingUrl: "https://paper-api.alpaca.markets",
      dataUrl: "https://data.alpaca.markets",
      simulated: false,
    });
    expect(() => parseEnv(traderEnvSchema, { APCA_API_KEY_ID: "id" })).toThrow(/APCA_API_SECRET_KEY: must be set together with the other Alpaca key/);
    expect(parseEnv(traderEnvSchema, {}).HTTP_PORT).toBe(8082);
  });

  it("keeps the SDK's rate limit at Alpaca's 200 a minute unless told otherwise, and off only for the simulator", () => {
    const keys = { APCA_API_KEY_ID: "id", APCA_API_SECRET_KEY: "secret" };
    expect(brokerConnection(parseEnv(traderEnvSchema, keys)).requestsPerMinute).toBe(200);
    expect(brokerConnection(parseEnv(traderEnvSchema, { ...keys, BROKER_REQUESTS_PER_MINUTE: "1000" })).requestsPerMinute).toBe(1_000);
    expect(brokerConnection(parseEnv(traderEnvSchema, { BROKER_REQUESTS_PER_MINUTE: "0" })).requestsPerMinute).toBeNull();
    expect(() => parseEnv(traderEnvSchema, { ...keys, BROKER_REQUESTS_PER_MINUTE: "0" })).toThrow(/BROKER_REQUESTS_PER_MINUTE: must be more than 0 with Alpaca keys/);
  });

  it("refuses an account lease an order request could outlive", () => {
    expect(parseEnv(traderEnvSchema, {}).TRADER_ACCOUNT_LEASE_MS).toBe(15_000);
    expect(parseEnv(traderEnvSchema, { TRADER_ACCOUNT_LEASE_MS: "6000", BROKER_TIMEOUT_MS: "3000" }).TRADER_ACCOUNT_LEASE_MS).toBe(6_000);
    expect(() => parseEnv(traderEnvSchema, { TRADER_ACCOUNT_LEASE_MS: "3000" })).toThrow(
      /TRADER_ACCOUNT_LEASE_MS: must be at least 13000 \(BROKER_TIMEOUT_MS \+ 3000\): every order is sent only while the lease outlives its request/,
    );
  });
});

describe("trader process start-up errors", () => {
  const stack = useTraderStack("trader-cli");
  let sim: RunningSimulator;

  beforeAll(async () => {
    sim = await startTestSimulator();
  });
  afterAll(async () => {
    await sim?.close();
  });

  it("exits 2 on a bad flag before touching the broker", async () => {
    const trader = spawnTrader(stack.env, sim, ["--interval", "0"]);
    expect(await trader.exited).toEqual({ code: 2, signal: null });
    expect(trader.output.join("\n")).toContain("--interval: must be a number of seconds greater than 0");
    expect(sim.control.requests()).toEqual([]);
  });

  it("exits 2 naming a symbol the broker does not list, having placed nothing", async () => {
    const trader = spawnTrader(stack.env, sim, ["--symbols", "AAPL,NOPE,ZZZZ"]);
    expect(await trader.exited).toEqual({ code: 2, signal: null });
    expect(trader.output.join("\n")).toContain("--symbols: unknown symbols NOPE, ZZZZ: the broker has no such asset; check the tickers");
    expect(sim.control.requests({ path: "/v2/assets/NOPE" }).map((request) => request.status)).toEqual([404]);
    expect(sim.control.state().orders).toEqual([]);
  });

  it("exits 1 with a clear message when --resume finds no session for the account", async () => {
    const trader = spawnTrader(stack.env, sim, ["--resume"]);
    expect(await trader.exited).toEqual({ code: 1, signal: null });
    expect(trader.logs.map((line) => line.msg)).toContainEqual(expect.stringMatching(/^no active or interrupted trader session for account [0-9a-f-]+; start a new session \(without --resume\), or use --resume-or-new$/));
  });

  it("exits 1 in one line naming REDIS_URL when Redis is down at start", async () => {
    const redis = await RedisServer.start();
    const { url } = redis;
    await redis.stop();
    const trader = spawnTrader(stack.env, sim, ["--symbols", "AAPL"], { REDIS_URL: url });
    expect(await trader.exited).toEqual({ code: 1, signal: null });
    const fatal = trader.logs.filter((line) => line.level === 60);
    expect(fatal.map((line) => line.msg)).toEqual([expect.stringMatching(new RegExp(`^cannot reach Redis at ${url} within 5000 ms \\(.*ECONNREFUSED.*\\); check REDIS_URL and that Redis is running$`))]);
    expectNoDumps(trader);
  });

  it("exits 1 in one line when Redis refuses the password, without showing it", async () => {
    const redis = await RedisServer.start({ args: ["--requirepass", "the-right-one"] });
    try {
      const trader = spawnTrader(stack.env, sim, ["--symbols", "AAPL"], { REDIS_URL: `redis://:not-the-password@127.0.0.1:${redis.port}` });
      expect(await trader.exited).toEqual({ code: 1, signal: null });
      const fatal = trader.logs.filter((line) => line.level === 60);
      expect(fatal.map((line) => line.msg)).toEqual([expect.stringMatching(/refused the credentials \(WRONGPASS .*\); check the user and password in REDIS_URL$/)]);
      expect(trader.output.join("\n")).not.toContain("not-the-password");
      expectNoDumps(trader);
    } finally {
      await redis.stop();
    }
  });

  it("serves /healthz, /readyz and /metrics while trading", async () => {
    const trader = spawnTrader(stack.env, sim, ["--symbols", "AAPL", "--interval", "0.1", "--entry-threshold-pct", "100"]);
    try {
      const port = (await trader.waitForLog((line) => typeof line.httpPort === "number")).httpPort;
      await trader.waitForLog(tradingStarted);
      const get = (path: string) => fetch(`http://127.0.0.1:${String(port)}${path}`);
      expect(await (await get("/healthz")).json()).toEqual({ status: "ok", service: "trader" });
      expect(await (await get("/readyz")).json()).toEqual({ status: "ready", checks: { trader: "ok" } });
      const metrics = await eventually("a counted tick", async () => {
        const text = await (await get("/metrics")).text();
        return /savepoint_trader_ticks_total\{[^}]*outcome="ok"[^}]*\} [1-9]/.test(text) ? text : undefined;
      });
      expect(metrics).toContain("savepoint_trader_tick_seconds_bucket");
      expect(metrics).toContain('savepoint_trader_open_positions{service="trader"} 0');
    } finally {
      await trader.kill("SIGTERM");
    }
  });
});
