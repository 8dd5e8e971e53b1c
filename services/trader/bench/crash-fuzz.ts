import { mkdirSync, writeFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { hashSeed, seededRandom, type Decision, type ThinkPayload } from "@savepoint/shared";
import { ServiceProcess, type LogLine, type TestEnvironment } from "@savepoint/shared/testing";
import { startSimulator, type RunningSimulator, type SimulatorOptions, type SimulatorState } from "@savepoint/alpaca-simulator";
import { reasoningWorker } from "../test/reasoning-worker.js";

/*
 * The crash-fuzz harness: the trader, as the real process of its built entry point, SIGKILLed at a seeded
 * point of the order lifecycle against the simulator with Alpaca's asynchronous lifecycle and partial fills,
 * then resumed; every run ends with the broker frozen and the invariants checked. The harness drives the
 * simulator's clock itself (one simulated minute per step), so a kill point seen after a step is still the
 * broker's state when the kill lands: the clock waits for the kill.
 */

/** Where in the order lifecycle a run kills the trader. */
export const KILL_KINDS = ["after_submit", "partial_fill", "cancel_pending", "market_close", "rate_limit_burst"] as const;
export type KillKind = (typeof KILL_KINDS)[number];

export interface FuzzContext {
  env: TestEnvironment;
  /** The trader's built entry point (dist/main.js). */
  traderMain: string;
  /** Answers the reasoner-strategy runs' think jobs; one per environment, see `startScriptedReasoner`. */
  reasoner: ScriptedReasoner;
}

export interface RunResult {
  kind: KillKind;
  seed: string;
  /** The kill point was met and the trader killed there (a run that never met it still checks the invariants). */
  reached: boolean;
  /** SIGKILLs this run dealt (the kill point, and a kill of the resume while it started, if planned). */
  kills: number;
  /** Invariants the run broke, one line each; empty when it passed. */
  violations: string[];
  /** Orders of the session at the broker, and how many of them filled in parts. */
  orders: number;
  partialFills: number;
  durationMs: number;
  /** The plan, for replaying and for the report. */
  plan: string;
  /** Real milliseconds from the run's start to each phase: trading, the kill, trading again after the resume, the verdict. */
  phases: Record<string, number>;
  /** Resumes that exited before trading (a 429 at start) and were started again, as a supervisor would. */
  restarts: number;
  /** For a failed run: the broker's orders and fills and the traders' warnings, to find the cause from. */
  evidence: string;
}

/** Real milliseconds the harness waits for things that a loaded two-core machine may make slow. */
const STARTED_TIMEOUT_MS = 60_000;
const KILL_POINT_TIMEOUT_MS = 15_000;
const POLL_MS = 20;
/** A supervisor's pause before starting a trader again that exited while starting. */
const RESTART_DELAY_MS = 1_000;
/** The trader's pace in every run: ticks every 100 ms, a periodic checkpoint every 300 ms. */
const TRADER_RUN = ["--interval", "0.1", "--checkpoint-interval", "0.3"];
/** Monday 2026-01-05: the open and the regular close (9:30 and 16:00 in New York, 14:30 and 21:00 UTC in winter). */
const OPEN = Date.parse("2026-01-05T14:30:00.000Z");
const CLOSE = Date.parse("2026-01-05T21:00:00.000Z");
const NEXT_OPEN = Date.parse("2026-01-06T14:30:00.000Z");
const MINUTE = 60_000;

/** A seeded generator (FNV-1a of the seed, then mulberry32): the same seed gives the same plan and decisions. */
const randomFrom = (seed: string) => seededRandom(hashSeed(seed));

interface RunPlan {
  kind: KillKind;
  seed: string;
  symbols: string[];
  strategy: "rule" | "reasoner";
  sim: SimulatorOptions;
  /** Real milliseconds per simulated minute. */
  stepMs: number;
  /** Occurrences of the kill point let pass before the kill. */
  skip: number;
  /** after_submit: the answer is held after the order took effect, or the request waits before it does. */
  heldAnswer: boolean;
  /** market_close: the kill comes this many simulated minutes after the close (negative: before it). */
  closeOffsetMinutes: number;
  /** rate_limit_burst: how long every request is answered 429, and how long after the first 429 the kill comes. */
  burstSeconds: number;
  burstKillAfterMs: number;
  downMs: number;
  /** Simulated minutes that pass while the trader is down. */
  downSteps: number;
  /** The resume is killed too, this long after it started (null: it is not). */
  killResumeAfterMs: number | null;
  /** Steps of trading after the resume, before the broker is frozen and the run checked. */
  tradeSteps: number;
}

/** The run's plan, a function of its kind and seed only. */
export function planRun(kind: KillKind, seed: string): RunPlan {
  const random = randomFrom(`${kind}:${seed}`);
  const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const symbols = ["AAPL", "MSFT", "NVDA", "TSLA"].filter(() => random() < 0.6);
  const strategy = kind === "cancel_pending" || random() < 0.3 ? "reasoner" : "rule";
  // Far enough from the close that a run's steps (hundreds on a slow machine) stay within the session, but for market_close.
  const start = kind === "market_close" ? CLOSE - between(6, 14) * MINUTE : OPEN + between(15, 75) * MINUTE;
  return {
    kind,
    seed,
    symbols: symbols.length > 0 ? symbols : ["AAPL"],
    strategy,
    sim: {
      seed: `fuzz:${kind}:${seed}`,
      start: new Date(start),
      historyBars: 240,
      marketHours: "nyse",
      instantOrders: false,
      routeAfterMs: pick([0, 0, MINUTE]),
      cancelAfterMs: between(2, 4) * MINUTE,
      replaceAfterMs: between(1, 3) * MINUTE,
      partialFillChance: pick([0.3, 0.5, 0.8]),
      tradeVolumeShare: pick([null, null, 0.002, 0.005]),
      // The 429s of this harness are injected bursts: Alpaca's window is a real minute, far longer than a run.
      requestsPerMinute: null,
    },
    stepMs: between(40, 80),
    skip: between(0, 2),
    heldAnswer: random() < 0.5,
    closeOffsetMinutes: between(-3, 2),
    burstSeconds: between(1, 3),
    burstKillAfterMs: between(0, 800),
    downMs: between(0, 600),
    downSteps: between(0, 5),
    killResumeAfterMs: random() < 0.3 ? between(0, 1_500) : null,
    tradeSteps: between(8, 20),
  };
}

const describePlan = (plan: RunPlan) =>
  `${plan.kind} seed=${plan.seed}: ${plan.strategy} on ${plan.symbols.join(",")}, step ${plan.stepMs} ms, partial ${plan.sim.partialFillChance}, ` +
  `volume share ${plan.sim.tradeVolumeShare}, route ${plan.sim.routeAfterMs} ms, cancel ${plan.sim.cancelAfterMs} ms, skip ${plan.skip}, ` +
  `down ${plan.downMs} ms and ${plan.downSteps} steps${plan.killResumeAfterMs === null ? "" : `, resume killed after ${plan.killResumeAfterMs} ms`}`;

/**
 * The stand-in reasoner for every reasoner-strategy run of one environment: a real BullMQ worker on the
 * `reasoning` queue that answers each session's runs from that run's seed (a session is registered once the
 * trader names it).
 */
export interface ScriptedReasoner {
  register(sessionId: string, seed: string): void;
  close(): Promise<void>;
}

export function startScriptedReasoner(env: TestEnvironment): ScriptedReasoner {
  const seeds = new Map<string, string>();
  const decide = (payload: ThinkPayload, jobId: string): Decision => {
    const seed = seeds.get(payload.agentId);
    if (seed === undefined) return { action: "HOLD", confidence: 0.5, rationale: "session not registered yet" };
    const draw = randomFrom(`${seed}:${jobId}`)();
    const action = payload.marketContext.position ? (draw < 0.35 ? "CLOSE" : "HOLD") : draw < 0.45 ? "OPEN_LONG" : draw < 0.9 ? "OPEN_SHORT" : "HOLD";
    return { action, confidence: 0.8, rationale: `fuzz decision ${draw.toFixed(3)}` };
  };
  // The job id (think.<session>.<SYMBOL>.<run>) names the decision, so a replayed seed decides the same.
  const { worker } = reasoningWorker(env, (payload, _run, jobId) => decide(payload, jobId));
  return {
    register: (sessionId, seed) => void seeds.set(sessionId, seed),
    close: () => worker.close(),
  };
}

const FINAL_STATUSES = new Set(["filled", "canceled", "expired", "rejected", "replaced"]);
type SimOrder = SimulatorState["orders"][number];
const num = (value: unknown) => Number(value ?? 0);
const isFinal = (order: SimOrder) => FINAL_STATUSES.has(String(order.status));

/**
 * Symbols the broker holds without a stop: a position is protected while a stop order that is not final
 * (a bracket's stop-loss leg, held or working, or a stop of its own) or a market order closing it covers its
 * whole quantity on the exit side.
 */
export function unprotectedPositions(state: SimulatorState): string[] {
  const exposed: string[] = [];
  for (const position of state.positions) {
    const held = num(position.qty);
    const exitSide = held > 0 ? "sell" : "buy";
    const covered = state.orders
      .filter((order) => order.symbol === position.symbol && order.side === exitSide && !isFinal(order))
      .filter((order) => order.type === "stop" || order.type === "stop_limit" || order.type === "market")
      .reduce((sum, order) => sum + num(order.qty) - num(order.filled_qty), 0);
    if (covered + 1e-9 < Math.abs(held)) exposed.push(`${position.symbol} ${position.side} ${Math.abs(held)} (covered ${covered})`);
  }
  return exposed;
}

/** The trader's ticks that read the broker: each syncs with one GET /v2/account (a sleep through a closed market reads only the clock). */
const syncedTicks = (sim: RunningSimulator) => sim.control.requests({ method: "GET", path: "/v2/account" }).filter((request) => request.status === 200);

/**
 * Watches the broker for positions without a stop. A position still unprotected when a second tick of the
 * trader has begun since it was first seen so has outlived the tick that should have protected it.
 */
class ProtectionWatch {
  readonly violations: string[] = [];
  private readonly since = new Map<string, number>();

  constructor(private readonly sim: RunningSimulator) {}

  sample(state: SimulatorState): void {
    const ticks = syncedTicks(this.sim);
    const newest = ticks.at(-1)?.seq ?? 0;
    const exposed = new Map(unprotectedPositions(state).map((line) => [line.split(" ")[0]!, line]));
    for (const symbol of [...this.since.keys()]) if (!exposed.has(symbol)) this.since.delete(symbol);
    for (const [symbol, line] of exposed) {
      const since = this.since.get(symbol);
      if (since === undefined) {
        this.since.set(symbol, newest);
        continue;
      }
      if (since === Number.POSITIVE_INFINITY) continue;
      const ticksSince = ticks.filter((request) => request.seq > since).length;
      if (ticksSince >= 2) {
        this.violations.push(`stop: ${line} without a stop for more than one tick, at ${state.now}`);
        this.since.set(symbol, Number.POSITIVE_INFINITY);
      }
    }
  }
}

/** Moves the simulator's clock one minute per step, pausable, and samples the broker after each step. */
class DrivenClock {
  private timer: NodeJS.Timeout | undefined;
  private held = 0;
  steps = 0;

  constructor(
    private readonly sim: RunningSimulator,
    private readonly stepMs: number,
    private readonly afterStep: () => void,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => {
      if (this.held === 0) this.step(1);
    }, this.stepMs);
  }

  /** Holds the clock while `during` runs (a kill, a restart): the broker moves only by the steps `during` takes. */
  async hold<T>(during: () => Promise<T>): Promise<T> {
    this.held += 1;
    try {
      return await during();
    } finally {
      this.held -= 1;
    }
  }

  /** Moves the clock by `minutes` in one go (steps while held, a night), then samples. */
  step(minutes: number): void {
    this.sim.control.advance(minutes);
    this.steps += 1;
    this.afterStep();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * The broker's state, read again only when it can have changed: after a step of the clock, or after an order
 * request (placing, canceling, replacing, closing) arrived or was answered. Reading all of it for every poll
 * of several runs at once would leave the harness, which also serves every simulator, no time to answer.
 */
class BrokerState {
  private key = "";
  private state: SimulatorState | undefined;

  constructor(
    private readonly sim: RunningSimulator,
    private readonly clock: { steps: number },
  ) {}

  get(): SimulatorState {
    const requests = ["POST", "PATCH", "DELETE"].flatMap((method) => this.sim.control.requests({ method }));
    const key = `${this.clock.steps}:${requests.map((request) => `${request.seq}/${request.status}`).join(",")}`;
    if (key !== this.key || !this.state) {
      this.state = this.sim.control.state();
      this.key = key;
    }
    return this.state;
  }
}

const isSessionOrder = (sessionId: string) => (order: SimOrder) => String(order.client_order_id).startsWith(`${sessionId}:`);

/**
 * The run's orders: every order at its broker, legs included (each run has a simulator of its own, and legs
 * carry generated client_order_ids, so they are not told by the session's prefix).
 */
const runOrders = (state: SimulatorState): SimOrder[] => state.orders;

/** Runs one fuzz run from plan to verdict. Never throws for a broken invariant: those are the result. */
export async function runOnce(context: FuzzContext, kind: KillKind, seed: string): Promise<RunResult> {
  const plan = planRun(kind, seed);
  const started = Date.now();
  const violations: string[] = [];
  const traders: ServiceProcess[] = [];
  let sim: RunningSimulator | undefined;
  let clock: DrivenClock | undefined;
  let reached = false;
  let kills = 0;
  const phases: Record<string, number> = {};
  const mark = (phase: string) => (phases[phase] = Date.now() - started);
  const restarts = { count: 0 };
  try {
    sim = await startSimulator({ ...plan.sim, tickIntervalMs: 0 });
    const running = sim;
    const watch = new ProtectionWatch(running);
    let stepHook: (() => void) | undefined;
    clock = new DrivenClock(running, plan.stepMs, () => {
      watch.sample(running.control.state());
      stepHook?.();
    });
    const driven = clock;
    const spawn = (args: string[]) => {
      const trader = ServiceProcess.start(
        context.traderMain,
        // The simulator runs without a limit of its own here (its 429s are injected), so the trader's limiter is off too.
        { ...context.env.env, HTTP_PORT: "0", APCA_API_BASE_URL: running.url, BROKER_READ_RETRIES: "1", BROKER_REQUESTS_PER_MINUTE: "0", REASONING_TIMEOUT_MS: "5000", LOG_LEVEL: "info" },
        [...args, ...TRADER_RUN],
      );
      traders.push(trader);
      return trader;
    };
    const kill = async (trader: ServiceProcess) => {
      kills += 1;
      await trader.kill("SIGKILL");
    };

    const session = [
      "--symbols",
      plan.symbols.join(","),
      "--strategy",
      plan.strategy,
      "--position-size",
      "4000",
      // The rule strategy's trades close through their tight legs; the reasoner's live long enough to be closed by it.
      "--stop-loss-pct",
      plan.strategy === "rule" ? "0.3" : "2",
      "--take-profit-pct",
      plan.strategy === "rule" ? "0.3" : "2",
      ...(plan.strategy === "rule" ? ["--entry-threshold-pct", "0", "--lookback", "5"] : []),
    ];
    const first = spawn(session);
    const named = await first.waitForLog((line) => typeof line.msg === "string" && line.msg.startsWith("✓ New session: "), STARTED_TIMEOUT_MS);
    const sessionId = String(named.sessionId);
    context.reasoner.register(sessionId, seed);
    await first.waitForLog(isTradingStarted, STARTED_TIMEOUT_MS);
    mark("trading");
    driven.start();

    reached = await killPoint(plan, running, driven, (hook) => (stepHook = hook), () => kill(first));
    stepHook = undefined;
    if (!reached) await kill(first);
    mark("killed");

    // While the trader is down the market moves on by the plan's steps (across the close: to just after it), not
    // by however long a loaded machine takes to start it again; it moves freely once the trader trades again.
    const resumed = await driven.hold(async () => {
      await delay(plan.downMs);
      for (let step = 0; step < plan.downSteps; step++) driven.step(1);
      if (plan.kind === "market_close") while (running.control.now().getTime() < CLOSE + MINUTE) driven.step(1);
      if (plan.killResumeAfterMs !== null) {
        const interrupted = spawn(["--resume"]);
        await delay(plan.killResumeAfterMs);
        await kill(interrupted);
      }
      const trading = await resume(spawn, restarts);
      if (plan.kind === "market_close") {
        // It starts with the market closed and sleeps through it; the night passes in one go, the next session opens.
        await ticks(running, 2, "/v2/clock");
        driven.step(Math.round((NEXT_OPEN - running.control.now().getTime()) / MINUTE) + 1);
      }
      return trading;
    });
    mark("resumed");
    const from = driven.steps;
    await until(() => driven.steps >= from + plan.tradeSteps, `${plan.tradeSteps} steps of trading after the resume`, 60_000);

    // Frozen: nothing fills or completes any more; two ticks later the trader has seen all of it.
    mark("frozen");
    driven.stop();
    running.control.clearFaults();
    await ticks(running, 2, running.control.state().marketOpen ? "/v2/account" : "/v2/clock");
    const exit = await resumed.kill("SIGTERM");
    if (exit.code !== 0) violations.push(`run: the resumed trader exited with ${JSON.stringify(exit)} on SIGTERM: ${lastLines(resumed)}`);
    const final = running.control.state();
    watch.sample(final);
    violations.push(...watch.violations, ...(await checkInvariants(context.env, final, sessionId)));
    const ours = runOrders(final);
    const evidence = violations.length > 0 ? evidenceOf(final, traders) : "";
    mark("checked");
    return {
      phases,
      restarts: restarts.count,
      evidence,
      kind,
      seed,
      reached,
      kills,
      violations,
      orders: ours.length,
      partialFills: ours.filter((order) => final.fills.filter((fill) => fill.order_id === order.id).length > 1).length,
      durationMs: Date.now() - started,
      plan: describePlan(plan),
    };
  } catch (error) {
    violations.push(`run: ${(error as Error).message.split("\n")[0]}${traders.length ? `; trader said: ${lastLines(traders.at(-1)!)}` : ""}`);
    const evidence = sim ? evidenceOf(sim.control.state(), traders) : "";
    return { kind, seed, reached, kills, violations, orders: 0, partialFills: 0, durationMs: Date.now() - started, plan: describePlan(plan), phases, restarts: restarts.count, evidence };
  } finally {
    clock?.stop();
    await Promise.all(traders.map((trader) => trader.kill("SIGKILL")));
    await sim?.close();
  }
}

/** Every order and fill of the run, then each trader's log lines at info and above (its own lines trimmed). */
function evidenceOf(state: SimulatorState, traders: ServiceProcess[]): string {
  const orders = state.orders.map(
    (order) =>
      `${String(order.submitted_at)} ${String(order.client_order_id).padEnd(48)} ${String(order.symbol).padEnd(5)} ${order.side} ${order.type} ${order.qty} ` +
      `${order.status} filled ${order.filled_qty}@${order.filled_avg_price} ${order.position_intent} id ${order.id}`,
  );
  const fills = state.fills.map((fill) => `${fill.transaction_time} ${fill.symbol} ${fill.side} ${fill.qty}@${fill.price} order ${fill.order_id}`);
  const logs = traders.flatMap((trader, index) => [
    `--- trader ${index + 1}`,
    ...trader.logs.map((line) => {
      const { level, time, pid, hostname, service, msg, ...rest } = line;
      void [level, pid, hostname, service];
      return `${String(time)} ${msg} ${JSON.stringify(rest)}`;
    }),
  ]);
  return [`now ${state.now}`, "--- orders", ...orders, "--- fills", ...fills, ...logs].join("\n");
}

const isTradingStarted = (line: LogLine) => line.event === "trading_started";
const lastLines = (trader: ServiceProcess) =>
  trader.logs
    .filter((line) => (line.level ?? 0) >= 40)
    .slice(-3)
    .map((line) => line.msg)
    .join(" | ") || trader.output.slice(-2).join(" | ");

/** `--resume`, restarted as a supervisor would while it fails to start (a 429 burst can outlast its retries). */
async function resume(spawn: (args: string[]) => ServiceProcess, restarts: { count: number }): Promise<ServiceProcess> {
  for (let attempt = 1; ; attempt++) {
    const trader = spawn(["--resume"]);
    const outcome = await Promise.race([trader.waitForLog(isTradingStarted, STARTED_TIMEOUT_MS).then(() => "started" as const), trader.exited]);
    if (outcome === "started") return trader;
    if (attempt >= 3) throw new Error(`--resume did not start trading in ${attempt} attempts (last exit ${JSON.stringify(outcome)})`);
    restarts.count += 1;
    await delay(RESTART_DELAY_MS);
  }
}

async function until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(POLL_MS);
  }
}

/** Waits until the trader has read the broker `count` more times: `path` /v2/account for ticks, /v2/clock for a sleep's steps. */
async function ticks(sim: RunningSimulator, count: number, path = "/v2/account"): Promise<void> {
  const answered = () => sim.control.requests({ method: "GET", path }).filter((request) => request.status === 200).length;
  const from = answered();
  await until(() => answered() >= from + count, `${count} reads of ${path} by the trader`, 30_000);
}

/**
 * Waits for the plan's kill point and kills the trader there, holding the simulated clock across the kill.
 * Returns false when the point did not come within the timeout (the run is then killed at a random moment).
 */
async function killPoint(
  plan: RunPlan,
  sim: RunningSimulator,
  clock: DrivenClock,
  onStep: (hook: () => void) => void,
  kill: () => Promise<void>,
): Promise<boolean> {
  const broker = new BrokerState(sim, clock);
  const ours = () => runOrders(broker.get());
  /**
   * Polls `point` (between steps, and right after each step) and kills at its (skip + 1)th occurrence, telling
   * occurrences apart by `distinct` (the order it concerns); without it the first occurrence is the kill point.
   */
  const killAt = async (point: () => boolean, distinct?: () => string): Promise<boolean> => {
    const occurrences = new Set<string>();
    let fire = false;
    const test = () => {
      if (fire || !point()) return;
      if (!distinct) {
        fire = true;
        return;
      }
      occurrences.add(distinct());
      if (occurrences.size > plan.skip) fire = true;
    };
    onStep(test);
    const deadline = Date.now() + KILL_POINT_TIMEOUT_MS;
    while (!fire && Date.now() < deadline) {
      test();
      if (!fire) await delay(POLL_MS);
    }
    if (!fire) return false;
    await clock.hold(kill);
    return true;
  };

  switch (plan.kind) {
    case "after_submit": {
      // Armed for the next order placement: with a held answer it takes effect and its answer waits; otherwise
      // the request waits before it takes effect, and lands while the trader is dead (or starting again).
      const posts = () => sim.control.requests({ method: "POST", path: "/v2/orders" });
      const armed = () => {
        const before = posts().length;
        sim.control.injectFault({ kind: "latency", ms: plan.heldAnswer ? 2_000 : 300 + plan.downMs, count: 1, when: plan.heldAnswer ? "after" : "before", method: "POST", path: "/v2/orders" });
        return before;
      };
      for (let step = 0; step < plan.skip; step++) await until(() => clock.steps > step, "a step", 10_000);
      const before = armed();
      const known = ours().length;
      return killAt(() => {
        const inFlight = posts().slice(before).some((request) => request.status === null);
        return inFlight && (!plan.heldAnswer || ours().length > known);
      });
    }
    case "partial_fill":
      return killAt(
        () => ours().some((order) => !isFinal(order) && num(order.filled_qty) > 0 && num(order.filled_qty) < num(order.qty)),
        () => String(ours().find((order) => !isFinal(order) && num(order.filled_qty) > 0 && num(order.filled_qty) < num(order.qty))?.id),
      );
    case "cancel_pending": {
      // A cancel the broker accepted and has not completed; an exit that replaces its take-profit leg waits the same way.
      const pending = (order: SimOrder) => order.status === "pending_cancel" || order.status === "pending_replace";
      return killAt(
        () => ours().some(pending),
        () => String(ours().find(pending)?.id),
      );
    }
    case "market_close": {
      const at = CLOSE + plan.closeOffsetMinutes * MINUTE;
      return killAt(() => sim.control.now().getTime() >= at);
    }
    case "rate_limit_burst": {
      // The account's limit is spent for burstSeconds: every request meets a 429 with Retry-After until then.
      for (let step = 0; step < plan.skip + 2; step++) await until(() => clock.steps > step, "a step", 10_000);
      const burst = sim.control.injectFault({ kind: "error", status: 429, count: 1_000_000, retryAfterSeconds: plan.burstSeconds, path: "/v2" });
      setTimeout(() => sim.control.clearFaults(), plan.burstSeconds * 1_000).unref();
      // A client that backs off meets one 429 and then waits: the kill comes a seeded moment into that wait.
      const limited = () => 1_000_000 - (sim.control.faults().find((fault) => fault.id === burst.id)?.remaining ?? 1_000_000);
      let firstAt: number | undefined;
      return killAt(() => {
        if (firstAt === undefined && limited() > 0) firstAt = Date.now();
        return firstAt !== undefined && Date.now() >= firstAt + plan.burstKillAfterMs;
      });
    }
  }
}

/**
 * The invariants every run must end with, on the frozen broker and the session's final checkpoint: positions
 * equal the broker's; no client_order_id used twice and no trade's order placed twice; realised P&L equal, to
 * the cent, to what the broker's fills realised.
 */
async function checkInvariants(env: TestEnvironment, sim: SimulatorState, sessionId: string): Promise<string[]> {
  const problems: string[] = [];
  const { rows } = await env.query<{ kind: string; state: { positions: Array<{ symbol: string; side: string; qty: number }>; realizedPl: number } }>(
    "SELECT kind, state FROM checkpoints WHERE service = 'trader' AND session_id = $1 ORDER BY epoch DESC, seq DESC LIMIT 1",
    [sessionId],
  );
  const final = rows[0];
  if (!final) return [`run: no checkpoint stored for session ${sessionId}`];
  if (final.kind !== "shutdown") problems.push(`run: the last checkpoint is a ${final.kind} one, not the shutdown checkpoint`);

  const held = final.state.positions.map((position) => `${position.symbol} ${position.side} ${position.qty}`).sort();
  const broker = sim.positions.map((position) => `${position.symbol} ${position.side} ${Math.abs(num(position.qty))}`).sort();
  if (held.join(",") !== broker.join(",")) problems.push(`positions: session [${held.join(", ")}], broker [${broker.join(", ")}]`);

  // The session's cents must be the fills' P&L rounded: within half a cent of it, either cent of a half-cent tie
  // (14.415 is 14.41 or 14.42; rounding a binary sum of the fills picks one by its noise).
  const fromFills = realizedFromFills(sim);
  if (Math.abs(fromFills - final.state.realizedPl) > 0.005 + 1e-9) {
    problems.push(`pnl: session ${final.state.realizedPl.toFixed(2)}, the broker's fills ${fromFills.toFixed(4)}`);
  }
  problems.push(...orderIdProblems(sim, sessionId));
  return problems;
}

/** Realised P&L of every fill, by average cost per symbol (as Alpaca's positions keep it), to the millionth. */
export function realizedFromFills(sim: Pick<SimulatorState, "fills">): number {
  const books = new Map<string, { qty: number; cost: number }>();
  let realized = 0;
  for (const fill of sim.fills) {
    const book = books.get(fill.symbol) ?? { qty: 0, cost: 0 };
    const signed = (fill.side === "buy" ? 1 : -1) * num(fill.qty);
    const price = num(fill.price);
    if (book.qty === 0 || Math.sign(book.qty) === Math.sign(signed)) {
      book.qty += signed;
      book.cost += signed * price;
    } else {
      const closed = Math.min(Math.abs(signed), Math.abs(book.qty)) * Math.sign(signed);
      const average = book.cost / book.qty;
      realized += -closed * (price - average);
      book.qty += closed;
      book.cost += closed * average;
      const opened = signed - closed;
      if (opened !== 0) {
        book.qty = opened;
        book.cost = opened * price;
      }
      if (book.qty === 0) book.cost = 0;
    }
    books.set(fill.symbol, book);
  }
  return Math.round(realized * 1_000_000) / 1_000_000;
}

/**
 * Each client_order_id at the broker once; no close order of this session that opened a position (a close
 * placed twice, or after the position had gone); no entry that filled while the symbol was held through
 * another of the session's trades (one decision placed under two ids). Trade numbers may have gaps: an adopted
 * position takes one without an entry order.
 */
export function orderIdProblems(sim: SimulatorState, sessionId: string): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  for (const order of sim.orders) seen.set(String(order.client_order_id), (seen.get(String(order.client_order_id)) ?? 0) + 1);
  for (const [id, count] of seen) if (count > 1) problems.push(`client_order_id: ${id} used by ${count} orders`);

  const ours = sim.orders.filter(isSessionOrder(sessionId));
  for (const order of ours) {
    const role = /^[A-Z]+:\d+(:close(:\d+)?)?$/.exec(String(order.client_order_id).slice(sessionId.length + 1));
    if (role?.[1] && String(order.position_intent).endsWith("_to_open")) {
      problems.push(`client_order_id: close order ${order.client_order_id} opened a position (${order.position_intent})`);
    }
  }

  // Fills in order: an opening fill while the symbol is held through another order means a trade placed twice.
  const byId = new Map(sim.orders.map((order) => [String(order.id), order]));
  const holder = new Map<string, string>();
  const position = new Map<string, number>();
  for (const fill of sim.fills) {
    const order = byId.get(fill.order_id)!;
    const before = position.get(fill.symbol) ?? 0;
    if (String(order.position_intent).endsWith("_to_open") && before !== 0 && holder.get(fill.symbol) !== order.id) {
      problems.push(`client_order_id: ${order.client_order_id} filled at ${fill.transaction_time} while ${fill.symbol} was held through order ${holder.get(fill.symbol)}`);
    }
    if (before === 0) holder.set(fill.symbol, String(order.id));
    position.set(fill.symbol, Math.round((before + (fill.side === "buy" ? 1 : -1) * num(fill.qty)) * 1e9) / 1e9);
  }
  return problems;
}

/** Writes a failed run's plan, violations, and the broker's orders and fills and the traders' warnings into `dir` as `<kind>-<seed>.log`; returns the path. */
export function saveEvidence(result: RunResult, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const path = `${dir}${result.kind}-${result.seed}.log`;
  writeFileSync(path, `${result.plan}\n${result.violations.join("\n")}\n${result.evidence}\n`);
  return path;
}

/** Runs `runs` with at most `concurrency` at once, in order of start; `onResult` sees each as it ends. `signal` starts no more. */
export async function runAll(
  context: FuzzContext,
  runs: Array<{ kind: KillKind; seed: string }>,
  concurrency: number,
  onResult: (result: RunResult) => void = () => undefined,
  signal?: AbortSignal,
): Promise<RunResult[]> {
  const results: RunResult[] = [];
  let next = 0;
  const lane = async () => {
    while (next < runs.length && !signal?.aborted) {
      const run = runs[next++]!;
      const result = await runOnce(context, run.kind, run.seed);
      results.push(result);
      onResult(result);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, runs.length) }, lane));
  return results;
}
