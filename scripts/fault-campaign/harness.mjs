/**
 * What every scenario of the fault campaign runs on: the built services as real processes, a simulated broker,
 * a checkpointer on its own database and queue prefix, and the tallies each scenario prints.
 */
import { createRequire } from "node:module";
import { setTimeout as delay } from "node:timers/promises";
import { startSimulator } from "@savepoint/alpaca-simulator";
import { RedisServer, ServiceProcess, spawnCheckpointer } from "@savepoint/shared/testing";

const require = createRequire(import.meta.url);
export const TRADER_MAIN = require.resolve("@savepoint/trader");

/** A fixed simulated start (a Monday, an hour into the session), as in the trader's tests. */
const START = new Date("2026-01-05T15:30:00.000Z");

export const tradingStarted = (line) => line.event === "trading_started";

/**
 * The simulator with the shortcuts the trader's tests name (an instant broker in an always-open market, no
 * rate limit): the trader still assumes an instant broker. `closed` starts it with the market closed.
 */
export async function simulator(seed, { closed = false, ...options } = {}) {
  const sim = await startSimulator({
    seed,
    start: START,
    historyBars: 240,
    tickIntervalMs: 50,
    instantOrders: true,
    marketHours: "always_open",
    requestsPerMinute: null,
    partialFillChance: 0,
    ...options,
  });
  if (closed) sim.control.setMarketOpen(false);
  return sim;
}

/** The trader binary against `brokerUrl`, on `env` (a test environment, possibly on another Redis). */
export function spawnTrader(env, brokerUrl, args, extraEnv = {}) {
  return ServiceProcess.start(TRADER_MAIN, { ...env.env, HTTP_PORT: "0", APCA_API_BASE_URL: brokerUrl, BROKER_READ_RETRIES: "1", ...extraEnv }, args);
}

export { spawnCheckpointer };

/**
 * A Redis of the scenario's own, to kill and restart, with `base` pointed at it and a checkpointer on it;
 * each is stopped with `stops`.
 */
export async function onOwnRedis(base, stops) {
  const redis = await RedisServer.start();
  stops.push(() => redis.stop());
  const env = { ...base, redisUrl: redis.url, env: { ...base.env, REDIS_URL: redis.url } };
  const checkpointer = await spawnCheckpointer(env);
  stops.push(() => checkpointer.kill("SIGTERM"));
  return { redis, env, checkpointer };
}

/** Polls `check` until it returns something other than undefined; throws after `timeoutMs`. */
export async function eventually(what, check, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(25);
  }
}

/** The newest stored snapshot of a trader session, straight from Postgres. */
export async function storedSnapshot(env, sessionId) {
  const { rows } = await env.query(
    "SELECT epoch, seq, kind, status, state FROM checkpoints WHERE service = 'trader' AND session_id = $1 ORDER BY epoch DESC, seq DESC LIMIT 1",
    [sessionId],
  );
  return rows[0];
}

export const brokerHoldings = (sim) =>
  sim.control
    .state()
    .positions.map((position) => `${position.symbol} ${position.side} ${Math.abs(Number(position.qty))}`)
    .sort();

export const stateHoldings = (state) => state.positions.map((position) => `${position.symbol} ${position.side} ${position.qty}`).sort();

export const sessionOrders = (sim, sessionId) => sim.control.state().orders.filter((order) => String(order.client_order_id).startsWith(`${sessionId}:`));

/**
 * Fills that entered a symbol already held or exited one already flat: an order carried out twice.
 */
export function doubledFills(sim) {
  const { fills, orders } = sim.control.state();
  const intentOf = new Map(orders.map((order) => [order.id, String(order.position_intent)]));
  const held = new Set();
  let doubled = 0;
  for (const fill of fills) {
    const opening = intentOf.get(fill.order_id).endsWith("_to_open");
    if (opening === held.has(fill.symbol)) doubled += 1;
    if (opening) held.add(fill.symbol);
    else held.delete(fill.symbol);
  }
  return doubled;
}

/** Holdings in the session's last checkpoint that differ from the broker's, counted both ways. */
export function holdingsLost(state, sim) {
  const ours = stateHoldings(state);
  const broker = brokerHoldings(sim);
  return ours.filter((holding) => !broker.includes(holding)).length + broker.filter((holding) => !ours.includes(holding)).length;
}

export const changeKinds = (trader) => trader.logs.flatMap((line) => (line.change ? [line.change.kind] : []));

/** Stack frames printed by a process: a person at the terminal should never meet one for an outcome the trader explains. */
export const stackLines = (trader) => trader.output.filter((line) => /^\s+at /.test(line) || line.includes('"stack"')).length;

/** A scenario's figures and the guarantees it checked; `holds` is false when any check failed. */
export class Tally {
  constructor(item, title) {
    this.item = item;
    this.title = title;
    this.figures = [];
    this.failures = [];
  }

  figure(name, value) {
    this.figures.push([name, value]);
  }

  expect(what, ok) {
    if (!ok) this.failures.push(what);
  }

  get holds() {
    return this.failures.length === 0;
  }
}
