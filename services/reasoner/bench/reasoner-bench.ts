import { fileURLToPath } from "node:url";
import { Queue, QueueEvents, type Job } from "bullmq";
import { CheckpointClient, createLogger, createMetricsRegistry, parseEnv, requestDecision, thinkJobId, type ThinkResult } from "@savepoint/shared";
import { checkpointerMain, createTestEnvironment, ServiceProcess, type TestEnvironment } from "@savepoint/shared/testing";
import { reasonerEnvSchema, type ReasonerConfig } from "../src/config.js";
import type { ThoughtStep } from "../src/engine/thought-step.js";
import { AnthropicModel } from "../src/model/anthropic-model.js";
import type { ModelTurnRequest, ReasoningModel } from "../src/model/reasoning-model.js";
import { createModelServer, type ModelServer } from "@savepoint/model-server";
import { startReasoner, type RunningReasoner } from "../src/reasoner.js";
import { REASONER_SERVICE } from "../src/session/checkpoint-state.js";
import { market } from "../test/market-fixture.js";
import { percentile, pollUntil } from "./measure.js";

/*
 * What checkpointing costs and saves the reasoner, measured against the real checkpointer (a child process),
 * Redis, Postgres and the local model server:
 * 1. bytes stored for runs of 10, 100 and 200 iterations (one step per snapshot, so growth is linear);
 * 2. the time each iteration adds outside its model call (mostly its confirmed checkpoint);
 * 3. resume latency, from the resumed attempt becoming active to its first model call, at 10 and 200 iterations;
 * 4. model calls answered twice per interruption, over at least 50 SIGTERMs and 50 SIGKILLs of worker
 *    processes, counted by the model server's call ledger.
 */

const REASONER_MAIN = fileURLToPath(new URL("../../dist/main.js", import.meta.url));
const CONCURRENT_RUNS = 10;
/** Model latency while measuring per-iteration overhead: runs interleave as they would on a real model. */
const OVERHEAD_LATENCY_MS = 200;
/** Runs resumed per length when measuring resume latency. */
const RESUMED_RUNS = 4;
/** Model latency while runs are interrupted: signals land mid-call and as answers come back, as in production. */
const INTERRUPTION_LATENCY_MS = 300;
/** Runs in flight at each signal; every signal interrupts each of them. */
const RUNS_PER_SIGNAL = 10;
/** Signals of each kind: RUNS_PER_SIGNAL × SIGNALS ≥ 50 interruptions. */
const SIGNALS = 6;
/** Long enough that no run finishes before its last interruption. */
const INTERRUPTED_RUN_ITERATIONS = 120;

const MARKET = market();

/** The reasoner's model, noting when each session's first call of this process went out. */
class FirstCallClock implements ReasoningModel {
  readonly firstCallAt = new Map<string, number>();
  constructor(private readonly inner: ReasoningModel) {}

  next(request: ModelTurnRequest, signal: AbortSignal) {
    if (!this.firstCallAt.has(request.sessionId)) this.firstCallAt.set(request.sessionId, Date.now());
    return this.inner.next(request, signal);
  }
}

class Bench {
  private runs = 0;

  private constructor(
    readonly env: TestEnvironment,
    readonly model: ModelServer,
    readonly modelUrl: string,
    readonly checkpointer: ServiceProcess,
    readonly queue: Queue,
    readonly events: QueueEvents,
    readonly client: CheckpointClient,
  ) {}

  static async start(): Promise<Bench> {
    const env = await createTestEnvironment("reasoner-bench");
    const model = createModelServer({ latencyMs: 0 });
    const modelUrl = `http://127.0.0.1:${await model.listen(0)}`;
    const checkpointer = ServiceProcess.start(checkpointerMain(), { ...env.env, HTTP_PORT: "0" });
    await checkpointer.waitForLog("checkpointer consuming checkpoints, checkpoint-requests and checkpoint-maintenance", 30_000);
    const connection = { url: env.redisUrl, maxRetriesPerRequest: null };
    const queue = new Queue("reasoning", { connection, prefix: env.queuePrefix });
    const events = new QueueEvents("reasoning", { connection, prefix: env.queuePrefix });
    // Every awaited job listens on both.
    queue.setMaxListeners(200);
    events.setMaxListeners(200);
    await events.waitUntilReady();
    const client = await CheckpointClient.connect({ redisUrl: env.redisUrl, queuePrefix: env.queuePrefix });
    return new Bench(env, model, modelUrl, checkpointer, queue, events, client);
  }

  reasonerEnv(overrides: Record<string, string> = {}): Record<string, string> {
    return {
      ...this.env.env,
      ANTHROPIC_BASE_URL: this.modelUrl,
      ANTHROPIC_API_KEY: "",
      REASONER_LOCK_DURATION_MS: "2000",
      REASONER_CONCURRENCY: "32",
      ...overrides,
    };
  }

  config(): ReasonerConfig {
    return parseEnv(reasonerEnvSchema, this.reasonerEnv());
  }

  reasoner(model?: ReasoningModel): Promise<RunningReasoner> {
    return startReasoner(this.config(), createLogger({ service: "reasoner", level: "error" }), createMetricsRegistry("reasoner"), model ? { model } : {});
  }

  async think(agentId: string, maxIterations: number): Promise<Job> {
    this.runs += 1;
    return requestDecision(this.queue, thinkJobId(agentId, this.runs), { agentId, symbol: "AAPL", marketContext: MARKET, maxIterations });
  }

  thinkMany(prefix: string, count: number, maxIterations: number): Promise<Job[]> {
    return Promise.all(Array.from({ length: count }, (_, index) => this.think(`${prefix}-${index}`, maxIterations)));
  }

  decision(job: Job): Promise<ThinkResult> {
    return job.waitUntilFinished(this.events, 600_000) as Promise<ThinkResult>;
  }

  /** Distinct iterations checkpointed for the session (by attempts up to `throughEpoch`, when given). */
  async iterationsStored(sessionId: string, throughEpoch = Number.MAX_SAFE_INTEGER): Promise<number> {
    const { rows } = await this.env.query<{ n: number }>(
      "SELECT count(DISTINCT seq)::int AS n FROM checkpoints WHERE session_id = $1 AND kind = 'iteration' AND epoch <= $2",
      [sessionId, throughEpoch],
    );
    return rows[0]!.n;
  }


  /** The newest epoch of the session: the attempt that claimed it last. */
  async latestEpoch(sessionId: string): Promise<number> {
    const { rows } = await this.env.query<{ epoch: number | null }>("SELECT max(epoch)::int AS epoch FROM checkpoints WHERE session_id = $1", [sessionId]);
    return rows[0]!.epoch ?? 0;
  }

  allReached(jobs: Job[], iterations: number, timeoutMs = 60_000): Promise<unknown> {
    return Promise.all(jobs.map((job) => pollUntil(() => this.iterationsStored(job.id!), (n) => n >= iterations, timeoutMs, `${job.id} at ${iterations}`)));
  }

  /** A reasoner worker process, resolved once it consumes `reasoning`. */
  async spawnReasoner(overrides: Record<string, string> = {}): Promise<ServiceProcess> {
    const worker = ServiceProcess.start(REASONER_MAIN, this.reasonerEnv(overrides));
    await worker.waitForLog("reasoner consuming reasoning", 30_000);
    return worker;
  }

  async steps(sessionId: string): Promise<ThoughtStep[]> {
    const { rows } = await this.env.query<{ step: ThoughtStep }>(
      "SELECT state->'step' AS step FROM checkpoints WHERE session_id = $1 AND kind = 'iteration' ORDER BY epoch, seq",
      [sessionId],
    );
    return rows.map((row) => row.step);
  }

  /** Per interrupted session: answers paid twice, and calls cancelled in flight. */
  wasted(jobs: Job[]): { repeated: number[]; aborted: number[] } {
    const calls = jobs.map((job) => this.model.ledger.session(job.id!));
    return { repeated: calls.map((call) => call.repeated), aborted: calls.map((call) => call.aborted) };
  }

  async close(): Promise<void> {
    await this.client.close();
    await this.events.close();
    await this.queue.close();
    await this.model.close();
    await this.checkpointer.kill("SIGTERM");
    await this.env.dispose();
  }
}

async function bytesByLength(bench: Bench): Promise<string[]> {
  bench.model.latencyMs = 0;
  const reasoner = await bench.reasoner();
  const lines = ["Bytes stored per run (one step per iteration snapshot, plus the claim and the final snapshot):"];
  let rateAt10 = 0;
  try {
    for (const iterations of [10, 100, 200]) {
      const job = await bench.think(`bytes-${iterations}`, iterations);
      await bench.decision(job);
      const stats = await bench.client.stats({ service: REASONER_SERVICE, sessionId: job.id! });
      const stepSizes = (await bench.steps(job.id!)).map((step) => Buffer.byteLength(JSON.stringify(step)));
      const stepBytes = stepSizes.reduce((sum, size) => sum + size, 0);
      // Had every snapshot held the whole history so far, snapshot k would hold steps 1..k.
      let soFar = 0;
      const wholeHistory = stepSizes.reduce((sum, size) => sum + (soFar += size), 0);
      const rate = stats.bytes / iterations;
      if (iterations === 10) rateAt10 = rate;
      lines.push(
        `  ${String(iterations).padStart(3)} iterations: ${stats.bytes} bytes stored (${stats.totalCheckpoints} snapshots), ` +
          `${Math.round(rate)} bytes/iteration = ${(rate / rateAt10).toFixed(2)}x the 10-iteration rate; ` +
          `steps ${stepBytes} bytes of JSON, whole-history snapshots would be ${wholeHistory} (${(wholeHistory / stepBytes).toFixed(1)}x)`,
      );
    }
  } finally {
    await reasoner.close();
  }
  return lines;
}

async function iterationOverhead(bench: Bench, runs: number): Promise<string[]> {
  bench.model.latencyMs = OVERHEAD_LATENCY_MS;
  const reasoner = await bench.reasoner();
  const overheads: number[] = [];
  try {
    const jobs = await bench.thinkMany(`overhead-${runs}`, runs, 15);
    await Promise.all(jobs.map((job) => bench.decision(job)));
    for (const job of jobs) {
      const steps = await bench.steps(job.id!);
      // From one iteration's end to the next: the previous step's confirmed save, the next model call, bookkeeping.
      for (let index = 1; index < steps.length; index++) {
        const elapsed = Date.parse(steps[index]!.finishedAt) - Date.parse(steps[index - 1]!.finishedAt);
        overheads.push(Math.max(0, elapsed - steps[index]!.model.ms));
      }
    }
  } finally {
    await reasoner.close();
  }
  return [
    `  ${runs === 1 ? "1 run alone" : `${runs} runs at once`}, ${overheads.length} iterations: p50 ${percentile(overheads, 50)} ms, p99 ${percentile(overheads, 99)} ms, max ${Math.max(...overheads)} ms`,
  ];
}

/** From the resumed attempt becoming active to its first model call (claim, history read, fold, market read). */
async function resumeLatency(bench: Bench, iterations: number, interruptAfter: number): Promise<string[]> {
  bench.model.latencyMs = 20;
  const first = await bench.reasoner();
  const jobs = await bench.thinkMany(`resume-${iterations}`, RESUMED_RUNS, iterations);
  await bench.allReached(jobs, interruptAfter, 300_000);
  await first.close();

  const config = bench.config();
  const clock = new FirstCallClock(
    new AnthropicModel({
      baseURL: bench.modelUrl,
      apiKey: "bench",
      model: config.ANTHROPIC_MODEL,
      maxTokens: config.MODEL_MAX_TOKENS,
      timeoutMs: config.MODEL_TIMEOUT_MS,
      maxRetries: config.MODEL_MAX_RETRIES,
      maxRetryWaitMs: config.MODEL_MAX_RETRY_WAIT_MS,
      logger: createLogger({ service: "reasoner", level: "error" }),
    }),
  );
  const second = await bench.reasoner(clock);
  let results: ThinkResult[];
  try {
    results = await Promise.all(jobs.map((job) => bench.decision(job)));
  } finally {
    await second.close();
  }
  const latencies = await Promise.all(
    jobs.map(async (job) => clock.firstCallAt.get(job.id!)! - (await bench.queue.getJob(job.id!))!.processedOn!),
  );
  const at = results.map((result) => result.resumedAtIteration);
  return [
    `  runs of ${iterations} resumed at iterations ${Math.min(...at)}-${Math.max(...at)} (${RESUMED_RUNS} runs): ` +
      `p50 ${percentile(latencies, 50)} ms, max ${Math.max(...latencies)} ms`,
  ];
}

/** Waits a random time within [minMs, maxMs), so signals land anywhere in a model call or between calls. */
const jitter = (minMs: number, maxMs: number) => new Promise((resolve) => setTimeout(resolve, minMs + Math.random() * (maxMs - minMs)));

/**
 * Interrupts RUNS_PER_SIGNAL runs SIGNALS times with `signal`, each time in a fresh worker process that has
 * taken them all over, then lets one last worker finish them. An interruption is one run in hand when the
 * signal landed; a repeated call is an answer the model server gave twice for the same iteration of a run.
 */
async function interruptions(bench: Bench, signal: "SIGTERM" | "SIGKILL"): Promise<string[]> {
  bench.model.latencyMs = INTERRUPTION_LATENCY_MS;
  // Crashes are what is counted here, not dead letters.
  const settings = { HTTP_PORT: "0", REASONER_MAX_STALLED_COUNT: "1000" };
  const jobs = await bench.thinkMany(signal.toLowerCase(), RUNS_PER_SIGNAL, INTERRUPTED_RUN_ITERATIONS);
  let interrupted = 0;
  /** Per signal: iterations checkpointed while the worker shut down (answers on their way, kept by SIGTERM's grace). */
  const kept: number[] = [];
  /** Per signal, per run: the answers the model server had given when the worker was gone. */
  const answeredAtSignal: number[][] = [];
  for (let round = 0; round < SIGNALS; round++) {
    const worker = await bench.spawnReasoner(settings);
    // Every run taken over by this worker (a new epoch) and under way in it, then the signal at a random moment.
    const epoch = round + 1;
    await Promise.all(jobs.map((job) => pollUntil(() => bench.latestEpoch(job.id!), (latest) => latest >= epoch, 60_000, `${job.id} in epoch ${epoch}`)));
    await jitter(0, 2 * INTERRUPTION_LATENCY_MS);
    const before = await Promise.all(jobs.map((job) => bench.iterationsStored(job.id!)));
    await worker.kill(signal);
    answeredAtSignal.push(jobs.map((job) => bench.model.ledger.session(job.id!).answered));
    const after = await Promise.all(jobs.map((job) => bench.iterationsStored(job.id!)));
    interrupted += jobs.length;
    kept.push(after.reduce((sum, count, index) => sum + count - before[index]!, 0));
  }
  const finisher = await bench.spawnReasoner(settings);
  let results: ThinkResult[];
  try {
    results = await Promise.all(jobs.map((job) => bench.decision(job)));
  } finally {
    await finisher.kill("SIGTERM");
  }
  const { repeated, aborted } = bench.wasted(jobs);
  const totalRepeated = repeated.reduce((sum, value) => sum + value, 0);
  // What one interruption cost a run: the answers its worker got that were not checkpointed (by that worker's
  // epoch, round + 1; exact after the fact, since the next epoch's claim fenced off any later write of it).
  const storedThrough = await Promise.all(
    answeredAtSignal.map((_answered, round) => Promise.all(jobs.map((job) => bench.iterationsStored(job.id!, round + 1)))),
  );
  const perInterruption = answeredAtSignal.flatMap((answered, round) =>
    jobs.map((_job, run) => {
      const answeredInTurn = answered[run]! - (answeredAtSignal[round - 1]?.[run] ?? 0);
      const storedInTurn = storedThrough[round]![run]! - (storedThrough[round - 1]?.[run] ?? 0);
      return answeredInTurn - storedInTurn;
    }),
  );
  const lost = perInterruption.reduce((sum, value) => sum + value, 0);
  return [
    `  ${signal}: ${interrupted} interruptions (${SIGNALS} signals x ${RUNS_PER_SIGNAL} runs in flight, model latency ${INTERRUPTION_LATENCY_MS} ms): ` +
      `repeated model calls ${totalRepeated} = ${(totalRepeated / interrupted).toFixed(2)} per interruption; ` +
      `answers lost per interruption: max ${Math.max(...perInterruption)}, total ${lost}; ` +
      `calls cut off in flight ${aborted.reduce((sum, value) => sum + value, 0)}; ` +
      (signal === "SIGTERM" ? `iterations checkpointed while shutting down (answers kept, not paid again): ${kept.reduce((sum, value) => sum + value, 0)}; ` : "") +
      `all ${results.filter((result) => result.iterations === INTERRUPTED_RUN_ITERATIONS).length}/${jobs.length} runs finished`,
  ];
}

async function main(): Promise<void> {
  const bench = await Bench.start();
  try {
    const report = [
      ...(await bytesByLength(bench)),
      `Time per iteration outside the model call (confirmed checkpoint + bookkeeping; model latency ${OVERHEAD_LATENCY_MS} ms, everything on this machine):`,
      ...(await iterationOverhead(bench, 1)),
      ...(await iterationOverhead(bench, CONCURRENT_RUNS)),
      "Resume latency (resumed attempt active -> its first model call: claim, history read, fold, market read):",
      ...(await resumeLatency(bench, 12, 8)),
      ...(await resumeLatency(bench, 200, 190)),
      "Model calls answered twice per interruption (worker processes signalled while runs are mid-thought; the model server's call ledger):",
      ...(await interruptions(bench, "SIGTERM")),
      ...(await interruptions(bench, "SIGKILL")),
    ];
    console.log(`\nReasoner benchmark (${new Date().toISOString()})\n${report.join("\n")}`);
  } finally {
    await bench.close();
  }
}

await main();
