import { startSimulator, type RunningSimulator } from "@savepoint/alpaca-simulator";
import { CheckpointClient, type SnapshotEnvelope } from "@savepoint/shared";
import { createModelServer, type ModelServer } from "@savepoint/model-server";
import { basicAuth, openQueueWithEvents, ServiceProcess, spawnCheckpointer, startWebService, type QueueWithEvents, type RunningWebService, type TestEnvironment } from "@savepoint/shared/testing";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
/** The reasoner as a process: the console's actions reach it through BullMQ, a process boundary. */
const REASONER_MAIN = fileURLToPath(new URL("../../reasoner/dist/main.js", import.meta.url));
/** The trader as a process: a stop reaches it through its control queue, a process boundary. */
const TRADER_MAIN = fileURLToPath(new URL("../../trader/dist/main.js", import.meta.url));
/** `npx savepoint`, the file npm links as the bin. */
export const SAVEPOINT_CLI = fileURLToPath(new URL("../bin/savepoint.js", import.meta.url));

export const USER = "operator";
export const PASSWORD = "correct horse battery staple";

// The console's tests take these from here, beside the console's own credentials.
export { basicAuth };
export type RunningConsole = RunningWebService;

/** Starts the built console as a real process on a free port, reading the test database, and resolves once it serves. */
export function startConsole(env: TestEnvironment, settings: Record<string, string> = {}): Promise<RunningConsole> {
  return startWebService(
    MAIN,
    { ...env.env, CONSOLE_USER: USER, CONSOLE_PASSWORD: PASSWORD, CONSOLE_DATABASE_URL: env.databaseUrl, ...settings },
    { starting: "console starting", serving: "Savepoint console on" },
  );
}

const at = (minute: number) => new Date(Date.UTC(2026, 0, 5, 14, 30 + minute)).toISOString();

export const TRADING_SESSION = "trading-session-1";
export const TRADING_ACCOUNT = "PA-TEST-ACCOUNT";
export const REASONING_SESSION = "think-agent-7-AAPL-1";
export const REASONING_AGENT = "agent-7";

/**
 * Epoch 2's resume as the trader records it (services/trader/src/session/resume-record.ts): a trade that opened
 * and closed while the session was down booked, and an MSFT position adopted.
 */
export const TRADING_RESUME = {
  epoch: 2,
  resumedAt: at(15),
  restoredFrom: { epoch: 1, seq: 5, takenAt: at(5) },
  downtimeMs: 10 * 60_000,
  positions: { before: 0, atBroker: 1, after: 1 },
  closedTradesAdded: 1,
  realizedPlAdded: 30,
  changes: [
    {
      category: "trades",
      text: "AAPL: long 10 closed by its take-profit @ 183 (entry 180), realised +$30.00; it opened and closed while the session was not watching",
      change: {
        kind: "position_closed",
        openedUnseen: true,
        trade: { symbol: "AAPL", side: "long", qty: 10, entryPrice: 180, exitPrice: 183, realizedPl: 30, via: "take_profit", tradeNo: 2 },
      },
    },
    {
      category: "positions",
      text: "MSFT: held at the broker (long 50 @ 400) but unknown to the session; adopted without bracket protection",
      change: { kind: "position_adopted", symbol: "MSFT", side: "long", qty: 50, avgEntryPrice: 400 },
    },
  ],
};

/** A trader's state; `resumes` left out, as in snapshots from before the trader kept them, unless given. */
function traderState(minute: number, figures: { value: number; positions: object[]; closedTrades: number; realizedPl: number; resumes?: object[] }) {
  return {
    sessionStartedAt: at(0),
    brokerSessionStartedAt: at(0),
    symbols: ["AAPL", "MSFT"],
    strategy: { kind: "rule", stopLossPct: 2, takeProfitPct: 4, positionSize: 10_000, lookbackBars: 20, entryThresholdPct: 0.5 },
    account: { id: TRADING_ACCOUNT, portfolioValue: figures.value, buyingPower: 200_000, cash: 100_000, asOf: at(minute) },
    positions: figures.positions,
    pendingEntries: [],
    nextTradeNo: { AAPL: 2 },
    decisionRuns: {},
    closedTrades: figures.closedTrades,
    realizedPl: figures.realizedPl,
    ...(figures.resumes && { resumes: figures.resumes }),
    takenAt: at(minute),
  };
}

const position = (symbol: string, tradeNo: number, entryPrice: number, origin: "strategy" | "adopted") => ({
  symbol, side: "long", qty: 50, entryPrice, stopLoss: entryPrice * 0.98, takeProfit: entryPrice * 1.04, tradeNo, origin,
  openedAt: at(1), orders: { entryId: `order-${symbol}-${tradeNo}`, entryClientOrderId: null, takeProfitId: null, stopLossId: null },
});

/**
 * A trading session with one restart: epoch 1 opens AAPL, closes it at a profit and is stopped (shutdown);
 * ten minutes later epoch 2 resumes, and its reconciliation adopts an MSFT position and books a trade that
 * happened while it was down.
 */
export function tradingSnapshots(): SnapshotEnvelope[] {
  const aapl = position("AAPL", 1, 180, "strategy");
  const msft = position("MSFT", 1, 400, "adopted");
  const steps: Array<[number, number, number, SnapshotEnvelope["kind"], SnapshotEnvelope["status"], Parameters<typeof traderState>[1]]> = [
    [1, 0, 0, "event", "active", { value: 100_000, positions: [], closedTrades: 0, realizedPl: 0 }],
    [1, 1, 1, "event", "active", { value: 100_010, positions: [aapl], closedTrades: 0, realizedPl: 0 }],
    [1, 2, 2, "periodic", "active", { value: 100_060, positions: [aapl], closedTrades: 0, realizedPl: 0 }],
    [1, 3, 3, "periodic", "active", { value: 100_100, positions: [aapl], closedTrades: 0, realizedPl: 0 }],
    [1, 4, 4, "event", "active", { value: 100_120, positions: [], closedTrades: 1, realizedPl: 120 }],
    [1, 5, 5, "shutdown", "interrupted", { value: 100_120, positions: [], closedTrades: 1, realizedPl: 120 }],
    [2, 0, 15, "event", "active", { value: 100_150, positions: [msft], closedTrades: 2, realizedPl: 150, resumes: [TRADING_RESUME] }],
    [2, 1, 16, "periodic", "active", { value: 100_180, positions: [msft], closedTrades: 2, realizedPl: 150, resumes: [TRADING_RESUME] }],
    [2, 2, 17, "periodic", "active", { value: 100_140, positions: [msft], closedTrades: 2, realizedPl: 150, resumes: [TRADING_RESUME] }],
  ];
  return steps.map(([epoch, seq, minute, kind, status, figures]) => ({
    v: 1, service: "trader", sessionId: TRADING_SESSION, ownerId: TRADING_ACCOUNT, epoch, seq, kind, status,
    schemaVersion: 1, takenAt: at(minute), state: traderState(minute, figures),
  }));
}

const run = (attempt: number, worker: string, price: number) => ({
  agentId: REASONING_AGENT, symbol: "AAPL", maxIterations: 4, attempt, worker, marketAsOf: at(attempt * 10),
  market: { source: "broker", price, position: null },
});

const step = (iteration: number, type: string, extra: object, minute: number) => ({
  iteration, type, toolCalls: [], ...extra,
  model: { model: "claude-test", stopReason: "tool_use", calls: 1, retries: [], inputTokens: 1_000, outputTokens: 100, ms: 1_500 },
  finishedAt: at(minute),
});

/**
 * A reasoning run interrupted at iteration 3 on worker A (attempt 1) and finished by worker B (attempt 2),
 * which took iterations 1-2 from the checkpoints.
 */
export function reasoningSnapshots(): SnapshotEnvelope[] {
  const a = run(1, "host-a:101", 187.2);
  const b = run(2, "host-b:202", 188.1);
  const question = { question: "Is the trend intact?", answer: "Yes, higher lows for three sessions." };
  const options = [
    { id: "A", action: "OPEN_LONG", thesis: "Momentum continues." },
    { id: "B", action: "HOLD", thesis: "Wait for a pullback." },
  ];
  const states: Array<[number, number, SnapshotEnvelope["kind"], SnapshotEnvelope["status"], number, object]> = [
    [1, 0, "event", "active", 10, { event: "claimed", run: a }],
    [1, 1, "iteration", "active", 11, { chain: 1, run: a, step: step(1, "question", { question }, 11) }],
    [1, 2, "iteration", "active", 12, { chain: 1, run: a, step: step(2, "options", { options }, 12) }],
    [1, 3, "interrupt", "interrupted", 13, { event: "interrupted", chain: 1, run: a, atIteration: 3, reason: "SIGTERM" }],
    [2, 0, "event", "active", 20, { event: "claimed", run: b }],
    [2, 3, "iteration", "active", 21, { chain: 1, run: b, step: step(3, "evaluation", { evaluation: { optionId: "A", score: 0.8, pros: ["trend"], cons: [] } }, 21) }],
    [2, 4, "iteration", "active", 22, { chain: 1, run: b, step: step(4, "decision", { decision: { action: "OPEN_LONG", confidence: 0.8, rationale: "Trend and volume agree." } }, 22) }],
    [2, 5, "final", "completed", 23, { event: "completed", chain: 1, run: b, result: { action: "OPEN_LONG", confidence: 0.8, rationale: "Trend and volume agree." } }],
  ];
  return states.map(([epoch, seq, kind, status, minute, state]) => ({
    v: 1, service: "reasoner", sessionId: REASONING_SESSION, ownerId: REASONING_AGENT, epoch, seq, kind, status,
    schemaVersion: 1, takenAt: at(minute), state: state as Record<string, unknown>,
  }));
}

/** Sessions of another service, to list and page through: `other-0` … with alternating status and owner. */
export function otherSnapshots(count: number): SnapshotEnvelope[] {
  return Array.from({ length: count }, (_, index) => ({
    v: 1 as const, service: "batch", sessionId: `other-${index}`, ownerId: `owner-${index % 2}`, epoch: 0, seq: 0,
    kind: "periodic" as const, status: index % 2 === 0 ? ("active" as const) : ("completed" as const),
    schemaVersion: 1, takenAt: at(30 + index), state: { index },
  }));
}

/** Writes the snapshots through the real client and checkpointer, each confirmed in order, then stops the checkpointer. */
export async function seedSnapshots(env: TestEnvironment, snapshots: readonly SnapshotEnvelope[]): Promise<void> {
  const checkpointer = await spawnCheckpointer(env);
  const client = await CheckpointClient.connect({ redisUrl: env.redisUrl, queuePrefix: env.queuePrefix });
  try {
    for (const snapshot of snapshots) await client.saveAndConfirm(snapshot);
  } finally {
    await client.close();
    await checkpointer.kill("SIGTERM");
  }
}

/** The market a think job of these tests carries. */
export const MARKET = { price: 187.4, previousClose: 184.1, recentCloses: [180.1, 181.3, 182.8, 183.5, 184.1, 185.0] };

/**
 * What the console's reasoning actions reach through BullMQ, on `env`: a checkpointer and a reasoner process
 * (no model retries) on a model server answering in 20 ms, with the `reasoning` queue as a producer sees it;
 * each is stopped with `stops`.
 */
export async function startReasoningBackend(env: TestEnvironment, stops: Array<() => Promise<unknown>>): Promise<{ model: ModelServer; producer: QueueWithEvents }> {
  const checkpointer = await spawnCheckpointer(env);
  stops.push(() => checkpointer.kill("SIGTERM"));
  const model = createModelServer({ latencyMs: 20 });
  const modelUrl = `http://127.0.0.1:${await model.listen(0)}`;
  stops.push(() => model.close());
  const producer = await openQueueWithEvents(env, "reasoning");
  stops.push(() => producer.close());
  const reasoner = await spawnReasoner(env, modelUrl, { MODEL_MAX_RETRIES: "0" });
  stops.push(() => reasoner.kill("SIGTERM"));
  return { model, producer };
}

/** A reasoner worker process on the test's queues, calling the model server at `modelUrl`; resolves once it consumes. */
export async function spawnReasoner(env: TestEnvironment, modelUrl: string, settings: Record<string, string> = {}): Promise<ServiceProcess> {
  const worker = ServiceProcess.start(REASONER_MAIN, {
    ...env.env,
    HTTP_PORT: "0",
    ANTHROPIC_BASE_URL: modelUrl,
    ANTHROPIC_API_KEY: "",
    REASONER_LOCK_DURATION_MS: "2000",
    ...settings,
  });
  try {
    await worker.waitForLog("reasoner consuming reasoning", 60_000);
    return worker;
  } catch (error) {
    await worker.kill("SIGKILL");
    throw error;
  }
}

/** Runs `npx savepoint …` against the console; resolves with its exit code, stdout and stderr lines. */
export async function savepoint(service: RunningConsole, args: string[], password = PASSWORD): Promise<{ code: number | null; output: string }> {
  const cli = ServiceProcess.start(SAVEPOINT_CLI, { SAVEPOINT_CONSOLE_URL: service.url, CONSOLE_USER: USER, CONSOLE_PASSWORD: password }, args);
  const { code } = await cli.exited;
  return { code, output: cli.output.join("\n") };
}

/** POSTs an action to the console as its pages do (same origin, JSON); resolves with the status and the answer. */
export async function postAction(service: RunningConsole, action: string, body: object, headers: Record<string, string> = {}) {
  const response = await fetch(`${service.url}/api/actions/${action}`, {
    method: "POST",
    headers: { ...basicAuth(USER, PASSWORD), "content-type": "application/json", origin: service.url, ...headers },
    body: JSON.stringify(body),
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the answers are what the tests check, field by field
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

/**
 * A simulated broker for a trader the console acts on, with the trader tests' shortcuts: an instant broker in an
 * always-open market, without a rate limit or partial fills.
 */
export function startInstantSimulator(seed: string): Promise<RunningSimulator> {
  return startSimulator({ seed, start: new Date("2026-01-05T15:30:00.000Z"), historyBars: 240, instantOrders: true, marketHours: "always_open", requestsPerMinute: null, partialFillChance: 0 });
}

/** A trader process on the test's queues trading against the simulator at `brokerUrl`; resolves with its session once it trades. */
export async function spawnTrader(
  env: TestEnvironment,
  brokerUrl: string,
  args: string[],
  settings: Record<string, string> = {},
): Promise<{ trader: ServiceProcess; sessionId: string }> {
  const trader = ServiceProcess.start(TRADER_MAIN, { ...env.env, HTTP_PORT: "0", APCA_API_BASE_URL: brokerUrl, BROKER_READ_RETRIES: "1", ...settings }, args);
  try {
    const started = await trader.waitForLog((line) => line.event === "trading_started", 60_000);
    return { trader, sessionId: String(started.sessionId) };
  } catch (error) {
    await trader.kill("SIGKILL");
    throw error;
  }
}
