import { fileURLToPath } from "node:url";
import type { CheckpointClient, Logger } from "@savepoint/shared";
import {
  ServiceProcess,
  SharedStack,
  type LogLine,
  type TestEnvironment,
  recordingLogger,
} from "@savepoint/shared/testing";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { AlpacaBroker } from "../src/broker/alpaca-broker.js";
import { orderRequestMs, takeOverSettleMs } from "../src/config.js";
import { roundMoney, type TraderState } from "../src/session/state.js";
import { startSimulator, type RunningSimulator, type SimulatorOptions } from "@savepoint/alpaca-simulator";
import type { TraderContext } from "../src/trader.js";

/** The trader's built entry point: tests run the trader as the process it ships as. */
export const TRADER_MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

/** A fixed simulated start (a Monday, an hour into the NYSE session, 5.5 hours before the close), so runs are reproducible. */
export const START = new Date("2026-01-05T15:30:00.000Z");

/**
 * The simulator the trader's tests run against is Alpaca's, no shortcut taken: its order lifecycle (orders
 * answered pending_new and filled on its clock, partial fills 10% of the time, cancels and replaces accepted
 * first and completed later), NYSE hours, buying power and its rate limit. The tests tick ten or twenty times a second, a thousand times a trader's pace at Alpaca, so the simulator's
 * rate limit (on, as Alpaca's) is raised to match, as for an account with a raised limit. The trader's own
 * limit is a quarter of it: its limiter (a token bucket) can send twice its figure in a minute's window, and
 * several traders of a test share the simulator's key.
 */
export const TEST_REQUESTS_PER_MINUTE = { simulator: 20_000, trader: 5_000 } as const;

export function startTestSimulator(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  return startSimulator({ seed: "trader-tests", start: START, historyBars: 240, requestsPerMinute: TEST_REQUESTS_PER_MINUTE.simulator, ...options });
}

/** The trader binary against `sim`, in the test environment; reads are retried once, quickly, at the tests' rate limit. */
export function spawnTrader(env: TestEnvironment, sim: RunningSimulator, args: string[], extraEnv: Record<string, string> = {}): ServiceProcess {
  return ServiceProcess.start(
    TRADER_MAIN,
    { ...env.env, HTTP_PORT: "0", APCA_API_BASE_URL: sim.url, BROKER_READ_RETRIES: "1", BROKER_REQUESTS_PER_MINUTE: String(TEST_REQUESTS_PER_MINUTE.trader), ...extraEnv },
    args,
  );
}

/** What a test file runs traders against; see `useTraderStack`. */
export interface TraderStack {
  /** The file's own queue prefix and Postgres database, served by a real checkpointer. */
  readonly env: TestEnvironment;
  /** A simulated broker for the current test, closed when the test ends. */
  startSimulator(options?: SimulatorOptions): Promise<RunningSimulator>;
  /** `spawnTrader` for the current test; SIGKILLed when the test ends, if it is still running. */
  spawnTrader(sim: RunningSimulator, args: string[], extraEnv?: Record<string, string>): ServiceProcess;
  /** Runs `stop` when the current test ends, before stopping anything the test started earlier. */
  stopAfterTest(stop: () => Promise<unknown>): void;
}

/**
 * A test file's database, queue prefix and checkpointer take seconds to start, so its tests share them; what
 * a single test starts on top (a simulator, traders, a stand-in reasoner) must not outlive it, or the next
 * test would trade against a stale broker beside a stray trader. Call it in a `describe`: it registers the
 * hooks, and its fields can be read once the tests run. Teardown goes newest first, stops only what did
 * start (a setup that failed half-way still cleans up), and carries on past a step that fails.
 */
export function useTraderStack(label: string): TraderStack;
export function useTraderStack(label: string, options: { client: true }): TraderStack & { readonly client: CheckpointClient };
export function useTraderStack(label: string, options: { client?: boolean } = {}): TraderStack & { readonly client: CheckpointClient } {
  const stack = new SharedStack(label, `trader stack "${label}"`);
  beforeAll(() => stack.startFile({ client: options.client }));
  afterEach(() => stack.endTest());
  afterAll(() => stack.endFile());
  return {
    get env() {
      return stack.env;
    },
    get client() {
      return stack.client;
    },
    async startSimulator(simOptions) {
      const sim = await startTestSimulator(simOptions);
      stack.stopAfterTest(() => sim.close());
      return sim;
    },
    spawnTrader(sim, args, extraEnv) {
      const trader = spawnTrader(stack.env, sim, args, extraEnv);
      stack.stopAfterTest(() => trader.kill("SIGKILL"));
      return trader;
    },
    stopAfterTest(stop) {
      stack.stopAfterTest(stop);
    },
  };
}


export const tradingStarted = (line: LogLine) => line.event === "trading_started";

/** A logger whose JSON lines the test can read, with the trader's service name in each. */
export const captureLogger = (level = "info") => recordingLogger<LogLine>(level, { service: "trader" });

/** What the in-process Trader needs, against `sim` and the test environment. */
export function traderContext(env: TestEnvironment, sim: RunningSimulator, client: CheckpointClient, logger: Logger): TraderContext {
  const broker = new AlpacaBroker(
    { tradingUrl: sim.url, dataUrl: sim.url, keyId: "test", secret: "test", simulated: true, timeoutMs: 5_000, readRetries: 1, requestsPerMinute: TEST_REQUESTS_PER_MINUTE.trader },
    logger,
  );
  return {
    broker,
    client,
    logger,
    redis: { target: { url: env.redisUrl }, queuePrefix: env.queuePrefix },
    reasoningTimeoutMs: 10_000,
    accountLeaseMs: 15_000,
    orderRequestMs: orderRequestMs(5_000),
    takeOverSettleMs: takeOverSettleMs(5_000, 2_000),
  };
}

/** The newest stored snapshot of a session, straight from Postgres. */
export async function storedSnapshot(env: TestEnvironment, sessionId: string) {
  const { rows } = await env.query<{ epoch: string; seq: string; kind: string; status: string; taken_at: Date; state: TraderState }>(
    "SELECT epoch, seq, kind, status, taken_at, state FROM checkpoints WHERE service = 'trader' AND session_id = $1 ORDER BY epoch DESC, seq DESC LIMIT 1",
    [sessionId],
  );
  const row = rows[0];
  if (!row) throw new Error(`no snapshot stored for session ${sessionId}`);
  return { ...row, epoch: Number(row.epoch), seq: Number(row.seq) };
}

/** The broker's positions as "SYMBOL side qty", sorted. */
export function brokerHoldings(sim: RunningSimulator): string[] {
  return sim.control
    .state()
    .positions.map((position) => `${position.symbol} ${position.side} ${Math.abs(Number(position.qty))}`)
    .sort();
}

/** A session state's positions in the same form. */
export function stateHoldings(state: Pick<TraderState, "positions">): string[] {
  return state.positions.map((position) => `${position.symbol} ${position.side} ${position.qty}`).sort();
}

/**
 * The session's realised P&L is the broker's, to the cent: the simulator keeps six decimals (average prices of
 * partial fills are rarely whole cents), the trader books each exit fill as it sees it and a trade's fills in
 * cents once, which are the cents its fills realised.
 */
export function expectBrokersRealizedPl(state: Pick<TraderState, "realizedPl">, sim: RunningSimulator): void {
  const broker = sim.control.state().realizedPl;
  expect(state.realizedPl, `session ${state.realizedPl}, broker ${broker}`).toBe(roundMoney(broker));
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Moves the simulator's clock a minute at a time until `check` gives a value (orders route, fill, cancel and
 * replace on that clock, never within their request), or fails after `maxMinutes`.
 */
export function advanceUntil<T>(sim: RunningSimulator, what: string, check: () => T | undefined, maxMinutes = 60): T {
  for (let minute = 0; ; minute++) {
    const value = check();
    if (value !== undefined) return value;
    if (minute === maxMinutes) throw new Error(`${what} did not happen within ${maxMinutes} simulated minutes`);
    sim.control.advance(1);
  }
}

/**
 * `eventually`, moving the simulator's clock one minute between looks: for tests whose simulator has no clock
 * of its own (tickIntervalMs 0), so the broker routes and fills what a trader sends while the test waits, and
 * time stands still once it has what it waited for.
 */
export function eventuallyAdvancing<T>(sim: RunningSimulator, what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs?: number): Promise<T> {
  return eventually(
    what,
    async () => {
      const value = await check();
      if (value === undefined) sim.control.advance(1);
      return value;
    },
    timeoutMs,
  );
}

/** The simulator's order `id` (flat, as its state lists it) once its status is one of `statuses`. */
export const orderIn = (sim: RunningSimulator, id: string, ...statuses: string[]) =>
  sim.control.state().orders.find((order) => order.id === id && statuses.includes(String(order.status)));

/** Orders in the simulator placed by this session's trades, by client_order_id. */
export function sessionOrders(sim: RunningSimulator, sessionId: string) {
  return sim.control.state().orders.filter((order) => String(order.client_order_id).startsWith(`${sessionId}:`));
}
