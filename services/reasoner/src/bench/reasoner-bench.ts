import { fileURLToPath } from "node:url";
import { Queue, QueueEvents, type Job } from "bullmq";
import {
  CheckpointClient,
  createLogger,
  createMetricsRegistry,
  parseEnv,
  requestDecision,
  thinkJobId,
  type MarketContext,
  type ThinkResult,
} from "@savepoint/shared";
import { createTestEnvironment, ServiceProcess, type TestEnvironment } from "@savepoint/shared/testing";
import { reasonerEnvSchema, type ReasonerConfig } from "../config.js";
import type { ThoughtStep } from "../engine/thought-step.js";
import { AnthropicModel } from "../model/anthropic-model.js";
import type { ModelTurnRequest, ReasoningModel } from "../model/reasoning-model.js";
import { createModelServer, type ModelServer } from "@savepoint/model-server";
import { startReasoner, type RunningReasoner } from "../reasoner.js";
import { REASONER_SERVICE } from "../session/checkpoint-state.js";
import { mean, percentile, pollUntil } from "./measure.js";

/*
 * What checkpointing costs and saves the reasoner, measured against the real checkpointer (a child process),
 * Redis, Postgres and the local model server:
 * 1. bytes stored for runs of 5, 15 and 50 iterations (one step per snapshot, so growth is linear);
 * 2. the time each iteration adds outside its model call (mostly its confirmed checkpoint);
 * 3. resume latency: from the resumed attempt becoming active to its first model call;
 * 4. model calls wasted per interruption, after a graceful shutdown and after SIGKILL.
 */

const CHECKPOINTER_MAIN = fileURLToPath(new URL("../../../checkpointer/dist/main.js", import.meta.url));
const REASONER_MAIN = fileURLToPath(new URL("../main.js", import.meta.url));
const CONCURRENT_RUNS = 10;
const INTERRUPTED_RUNS = 10;
const INTERRUPTED_RUN_ITERATIONS = 14;
/** Interruptions happen once every run has this many iterations checkpointed. */
const INTERRUPT_AFTER = 6;
/** Model latency while measuring per-iteration overhead: runs interleave as they would on a real model. */
const OVERHEAD_LATENCY_MS = 200;
/** Model latency while measuring interruptions, so they land mid-call as in production. */
const INTERRUPTION_LATENCY_MS = 300;

const MARKET: MarketContext = {
  price: 187.4,
  previousClose: 184.1,
  volume: 61_000_000,
  averageVolume: 52_000_000,
  recentCloses: [176.2, 177.9, 178.4, 180.1, 179.6, 181.3, 182.8, 183.5, 184.1, 185.0],
  position: null,
};

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
    const checkpointer = ServiceProcess.start(CHECKPOINTER_MAIN, { ...env.env, HTTP_PORT: "0" });
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
    return job.waitUntilFinished(this.events, 180_000) as Promise<ThinkResult>;
  }

  async iterationsStored(sessionId: string): Promise<number> {
    const { rows } = await this.env.query<{ n: number }>("SELECT count(*)::int AS n FROM checkpoints WHERE session_id = $1 AND kind = 'iteration'", [sessionId]);
    return rows[0]!.n;
  }

  allReached(jobs: Job[], iterations: number): Promise<unknown> {
    return Promise.all(jobs.map((job) => pollUntil(() => this.iterationsStored(job.id!), (n) => n >= iterations, 60_000, `${job.id} at ${iterations}`)));
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
  const reasoner = await bench.reasoner();
  const lines = ["Bytes stored per run (one step per iteration snapshot, plus the claim and the final snapshot):"];
  let rateAt5 = 0;
  try {
    for (const iterations of [5, 15, 50]) {
      const job = await bench.think(`bytes-${iterations}`, iterations);
      await bench.decision(job);
      const stats = await bench.client.stats({ service: REASONER_SERVICE, sessionId: job.id! });
      const stepSizes = (await bench.steps(job.id!)).map((step) => Buffer.byteLength(JSON.stringify(step)));
      const stepBytes = stepSizes.reduce((sum, size) => sum + size, 0);
      // Had every snapshot held the whole history so far, snapshot k would hold steps 1..k.
      const wholeHistory = stepSizes.reduce((sum, _size, index) => sum + stepSizes.slice(0, index + 1).reduce((a, b) => a + b, 0), 0);
      const rate = stats.bytes / iterations;
      if (iterations === 5) rateAt5 = rate;
      lines.push(
        `  ${String(iterations).padStart(2)} iterations: ${stats.bytes} bytes stored (${stats.totalCheckpoints} snapshots), ` +
          `${Math.round(rate)} bytes/iteration = ${(rate / rateAt5).toFixed(2)}x the 5-iteration rate; ` +
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

async function gracefulInterruptions(bench: Bench): Promise<string[]> {
  bench.model.latencyMs = INTERRUPTION_LATENCY_MS;
  const first = await bench.reasoner();
  const jobs = await bench.thinkMany("graceful", INTERRUPTED_RUNS, INTERRUPTED_RUN_ITERATIONS);
  await bench.allReached(jobs, INTERRUPT_AFTER);
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
  const { repeated, aborted } = bench.wasted(jobs);
  return [
    `Resume latency (resumed attempt active -> its first model call: claim, history read, fold, market read), ${INTERRUPTED_RUNS} runs resumed at iterations ${Math.min(...results.map((r) => r.resumedAtIteration))}-${Math.max(...results.map((r) => r.resumedAtIteration))}:`,
    `  p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms`,
    `Model calls wasted per graceful interruption (SIGTERM path: in-flight call aborted, confirmed interrupt checkpoint, requeue), ${INTERRUPTED_RUNS} runs:`,
    `  answers paid twice: mean ${mean(repeated).toFixed(2)}, max ${Math.max(...repeated)}; calls cancelled in flight: mean ${mean(aborted).toFixed(2)}; ` +
      `calls saved by resuming: mean ${mean(results.map((r) => r.modelCallsSaved)).toFixed(1)}`,
  ];
}

async function crashes(bench: Bench): Promise<string[]> {
  bench.model.latencyMs = INTERRUPTION_LATENCY_MS;
  const spawn = async () => {
    const worker = ServiceProcess.start(REASONER_MAIN, bench.reasonerEnv({ HTTP_PORT: "0" }));
    await worker.waitForLog("reasoner consuming reasoning", 30_000);
    return worker;
  };
  const doomed = await spawn();
  const jobs = await bench.thinkMany("crash", INTERRUPTED_RUNS, INTERRUPTED_RUN_ITERATIONS);
  await bench.allReached(jobs, INTERRUPT_AFTER);
  const survivor = await spawn();
  const killedAt = Date.now();
  await doomed.kill("SIGKILL");
  let results: ThinkResult[];
  try {
    results = await Promise.all(jobs.map((job) => bench.decision(job)));
  } finally {
    await survivor.kill("SIGTERM");
  }
  const takeovers = await Promise.all(jobs.map(async (job) => (await bench.queue.getJob(job.id!))!.processedOn! - killedAt));
  const { repeated, aborted } = bench.wasted(jobs);
  return [
    `Model calls wasted per SIGKILL (run stalls, another process takes it over after the 2 s test lock), ${INTERRUPTED_RUNS} runs:`,
    `  answers paid twice: mean ${mean(repeated).toFixed(2)}, max ${Math.max(...repeated)}; calls cut off in flight: mean ${mean(aborted).toFixed(2)}; ` +
      `resumed ${results.filter((r) => r.resumed).length}/${INTERRUPTED_RUNS}; takeover after kill p50 ${percentile(takeovers, 50)} ms`,
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
      ...(await gracefulInterruptions(bench)),
      ...(await crashes(bench)),
    ];
    console.log(`\nReasoner benchmark (${new Date().toISOString()})\n${report.join("\n")}`);
  } finally {
    await bench.close();
  }
}

await main();
