import os from "node:os";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Queue, QueueEvents } from "bullmq";
import pg from "pg";
import {
  CheckpointClient,
  ConfigError,
  createRedisConnection,
  defaultJobOptions,
  parseEnv,
  snapshotJobId,
  type SnapshotEnvelope,
} from "@savepoint/shared";
import { checkpointerMain, createTestEnvironment, ServiceProcess, type TestEnvironment } from "@savepoint/shared/testing";
import { checkpointerEnvSchema } from "../src/config.js";
import { addBatchCounters, batchCountersBetween, readBatchCounters, type BatchCounters } from "./batch-counters.js";
import { addSpend, CpuMeter, type CpuSpend } from "./cpu-meter.js";
import { formatReport, type BenchResults, type DrainFigures, type DrainName, type LatencyName } from "./report.js";
import { loadBenchSettings, type BenchSettings } from "./settings.js";
import { LangGraphPeer } from "./langgraph-peer.js";
import { SnapshotFactory } from "./snapshots.js";
import { pollUntil, runConcurrently, summarize, timeEach, type LatencySummary } from "./timing.js";

/*
 * Measures the checkpointer against two naive designs, in one run, with the scenarios taking turns so that
 * whatever else runs on the machine weighs on all of them alike:
 * - a direct autocommit INSERT per snapshot from a small connection pool;
 * - a BullMQ worker that does nothing, configured and fed like the checkpointer;
 * - a peer: LangGraph's PostgresSaver, putting and reading back the same states (langgraph-peer.ts).
 * The checkpointer and the no-op worker run as their own processes, so this process only produces and measures.
 */

const NOOP_WORKER_MAIN = fileURLToPath(new URL("./noop-worker.js", import.meta.url));
const NOOP_QUEUE = "bench-noop";
const DIRECT_TABLE = "bench_direct_checkpoints";
const DIRECT_INSERT_SQL = `INSERT INTO ${DIRECT_TABLE}
  (service, session_id, epoch, seq, owner_id, kind, status, schema_version, taken_at, state)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`;
const LATENCY_NAMES: LatencyName[] = ["confirmedSave", "restore", "noopRoundTrip", "directInsert", "langgraphPut", "langgraphGetTuple"];
const DRAIN_NAMES: DrainName[] = ["checkpointer", "noop", "directSerial", "direct"];

/** Undo steps, run newest first, each whatever happened to the others; once, also on Ctrl-C. */
class Teardown {
  private readonly steps: Array<() => Promise<unknown>> = [];
  private running: Promise<void> | undefined;

  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.reverse()) {
        await step().catch((error: unknown) => console.error(`cleanup step failed: ${(error as Error).message}`));
      }
    })();
    return this.running;
  }
}

async function stopProcess(service: ServiceProcess): Promise<void> {
  const outcome = await Promise.race([service.kill("SIGTERM"), delay(15_000, "still running" as const, { ref: false })]);
  if (outcome === "still running") await service.kill("SIGKILL");
}

function directInsertParams(envelope: SnapshotEnvelope): unknown[] {
  const e = envelope;
  return [e.service, e.sessionId, e.epoch, e.seq, e.ownerId ?? null, e.kind, e.status, e.schemaVersion, e.takenAt, JSON.stringify(e.state)];
}

/** `items` rotated left by `turn`, so no scenario always goes first. */
const inTurn = <T>(items: T[], turn: number): T[] => items.map((_, index) => items[(index + turn) % items.length]!);

interface Drained {
  seconds: number;
  cpu: CpuSpend;
  perItemMs?: number[];
  batches?: BatchCounters;
}

async function runBench(settings: BenchSettings, teardown: Teardown): Promise<BenchResults> {
  const benchStarted = performance.now();
  const environment: TestEnvironment = await createTestEnvironment("bench");
  teardown.add(() => environment.dispose());
  await environment.query(`CREATE TABLE ${DIRECT_TABLE} (LIKE checkpoints INCLUDING ALL)`);

  // The checkpointer reads the same environment, so overrides given to the benchmark reach it too.
  const config = parseEnv(checkpointerEnvSchema, { ...process.env, ...environment.env, HTTP_PORT: "0" });
  const consumerEnv = {
    ...environment.env,
    HTTP_PORT: "0",
    SNAPSHOT_CONCURRENCY: String(config.SNAPSHOT_CONCURRENCY),
    JOB_LOCK_DURATION_MS: String(config.JOB_LOCK_DURATION_MS),
  };
  const checkpointer = ServiceProcess.start(checkpointerMain(), consumerEnv);
  teardown.add(() => stopProcess(checkpointer));
  const noopWorker = ServiceProcess.start(NOOP_WORKER_MAIN, { ...consumerEnv, NOOP_QUEUE });
  teardown.add(() => stopProcess(noopWorker));
  const [starting] = await Promise.all([
    checkpointer.waitForLog("checkpointer starting"),
    checkpointer.waitForLog("checkpointer consuming checkpoints, checkpoint-requests and checkpoint-maintenance"),
    noopWorker.waitForLog("no-op worker consuming"),
  ]);
  const metricsUrl = `http://127.0.0.1:${Number(starting.httpPort)}/metrics`;

  const client = await CheckpointClient.connect({ redisUrl: environment.redisUrl, queuePrefix: environment.queuePrefix });
  teardown.add(() => client.close());
  const connection = createRedisConnection(environment.redisUrl, "producer", "checkpoint-bench");
  teardown.add(async () => connection.disconnect());
  const prefix = environment.queuePrefix;
  const checkpointsQueue = new Queue("checkpoints", { connection, prefix });
  const noopQueue = new Queue(NOOP_QUEUE, { connection, prefix, defaultJobOptions: defaultJobOptions.checkpoints });
  teardown.add(() => Promise.all([checkpointsQueue.close(), noopQueue.close()]));
  const noopEvents = new QueueEvents(NOOP_QUEUE, { connection: { url: environment.redisUrl, maxRetriesPerRequest: null }, prefix });
  teardown.add(() => noopEvents.close());
  await noopEvents.waitUntilReady();
  const pool = new pg.Pool({ connectionString: environment.databaseUrl, max: settings.BENCH_DIRECT_CONNECTIONS });
  // Dropping the bench database may terminate a connection pool.end() has not closed yet.
  pool.on("error", () => undefined);
  teardown.add(() => pool.end());
  const langgraph = await LangGraphPeer.open(environment.databaseUrl);
  teardown.add(() => langgraph.close());

  const meter = new CpuMeter({
    redisInfo: () => connection.info("cpu"),
    postgresPids: async () =>
      (await environment.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).rows.map(
        (row) => row.pid,
      ),
  });
  const snapshots = new SnapshotFactory(settings.BENCH_STATE_BYTES);
  const session = (group: string, index: number) => `${group}-${index % settings.BENCH_SESSIONS}`;
  const drainTimeoutMs = settings.BENCH_DRAIN_TIMEOUT_SECONDS * 1000;

  const latencyScenarios: Record<LatencyName, (index: number) => () => Promise<unknown>> = {
    confirmedSave: (index) => {
      const envelope = snapshots.next(session("confirm", index));
      return () => client.saveAndConfirm(envelope);
    },
    restore: (index) => {
      const request = { service: snapshots.service, sessionId: session("restore", index) };
      return async () => {
        if (!(await client.latest(request))) throw new Error(`restore of ${request.sessionId} found no snapshot; seeding failed`);
      };
    },
    noopRoundTrip: (index) => {
      const envelope = snapshots.next(session("noop", index));
      return async () => {
        const job = await noopQueue.add("snapshot", envelope, { jobId: snapshotJobId(envelope) });
        await job.waitUntilFinished(noopEvents, 10_000);
      };
    },
    directInsert: (index) => {
      const params = directInsertParams(snapshots.next(session("direct", index)));
      return () => pool.query(DIRECT_INSERT_SQL, params);
    },
    langgraphPut: (index) => {
      const { sessionId, state } = snapshots.next(session("langgraph", index));
      return () => langgraph.put(sessionId, state);
    },
    langgraphGetTuple: (index) => {
      const threadId = session("langgraph-restore", index);
      return () => langgraph.getTuple(threadId);
    },
  };

  const rowCount = async (table: string) =>
    (await environment.query<{ rows: number }>(`SELECT count(*)::int AS rows FROM ${table}`)).rows[0]!.rows;

  /** Pre-loads `count` jobs into the paused queue, then times the consumer emptying it. */
  async function drainQueue(queue: Queue, consumer: ServiceProcess, count: number, enqueue: (index: number) => Promise<unknown>) {
    await queue.pause();
    await runConcurrently(count, settings.BENCH_PRELOAD_CONCURRENCY, async (index) => {
      await enqueue(index);
    });
    const stopMeter = await meter.start(consumer.child.pid);
    const started = performance.now();
    await queue.resume();
    await pollUntil(
      async () => {
        if (consumer.child.exitCode !== null || consumer.child.signalCode !== null) {
          throw new Error(`the consumer of "${queue.name}" exited while draining; its last output:\n${consumer.output.slice(-20).join("\n")}`);
        }
        return (await queue.getJobCountByTypes("wait", "prioritized", "delayed", "active")) === 0;
      },
      { what: `draining ${count} jobs from "${queue.name}"`, intervalMs: 10, timeoutMs: drainTimeoutMs },
    );
    const seconds = (performance.now() - started) / 1000;
    const cpu = await stopMeter();
    const failed = await queue.getJobCountByTypes("failed");
    if (failed > 0) throw new Error(`${failed} jobs failed on "${queue.name}"; the figures would be wrong, see the consumer's log`);
    return { seconds, cpu };
  }

  const drainScenarios: Record<DrainName, (count: number) => Promise<Drained>> = {
    checkpointer: async (count) => {
      const rowsBefore = await rowCount("checkpoints");
      const countersBefore = await readBatchCounters(metricsUrl);
      const drained = await drainQueue(checkpointsQueue, checkpointer, count, (index) => client.save(snapshots.next(session("drain", index))));
      const batches = batchCountersBetween(countersBefore, await readBatchCounters(metricsUrl));
      const stored = (await rowCount("checkpoints")) - rowsBefore;
      if (stored !== count) throw new Error(`the checkpointer completed ${count} snapshot jobs but ${stored} rows reached the checkpoints table`);
      return { ...drained, batches };
    },
    noop: (count) =>
      drainQueue(noopQueue, noopWorker, count, (index) => {
        const envelope = snapshots.next(session("noop", index));
        return noopQueue.add("snapshot", envelope, { jobId: snapshotJobId(envelope) });
      }),
    directSerial: (count) => drainDirect(count, 1),
    direct: (count) => drainDirect(count, settings.BENCH_DIRECT_CONNECTIONS),
  };

  async function drainDirect(count: number, connections: number): Promise<Drained> {
    // Built before the clock starts, as the queued scenarios' backlogs are.
    const rows = Array.from({ length: count }, (_, index) => directInsertParams(snapshots.next(session("direct", index))));
    const perItemMs: number[] = [];
    const stopMeter = await meter.start();
    const started = performance.now();
    await runConcurrently(count, connections, async (index) => {
      const insertStarted = performance.now();
      await pool.query(DIRECT_INSERT_SQL, rows[index]);
      perItemMs.push(performance.now() - insertStarted);
    });
    const seconds = (performance.now() - started) / 1000;
    return { seconds, cpu: await stopMeter(), perItemMs };
  }

  // Every restore reads a session that already has a snapshot, whichever scenario runs first.
  await runConcurrently(settings.BENCH_SESSIONS, 8, async (index) => {
    await client.saveAndConfirm(snapshots.next(session("restore", index)));
    const { sessionId, state } = snapshots.next(session("langgraph-restore", index));
    await langgraph.put(sessionId, state);
  });

  for (const name of LATENCY_NAMES) await timeEach(settings.BENCH_WARMUP_OPS, latencyScenarios[name]);
  if (settings.BENCH_WARMUP_SNAPSHOTS > 0) {
    for (const name of DRAIN_NAMES) await drainScenarios[name](settings.BENCH_WARMUP_SNAPSHOTS);
  }

  // One operation of each scenario after another, so whatever else the machine does weighs on each alike.
  const latencySamples = Object.fromEntries(LATENCY_NAMES.map((name) => [name, [] as number[]])) as Record<LatencyName, number[]>;
  const countersBefore = await readBatchCounters(metricsUrl);
  for (let index = 0; index < settings.BENCH_LATENCY_SAMPLES; index++) {
    for (const name of inTurn(LATENCY_NAMES, index)) {
      const operation = latencyScenarios[name](index);
      const started = performance.now();
      await operation();
      latencySamples[name].push(performance.now() - started);
    }
  }
  // Only confirmed saves reach the checkpointer's batches during this phase.
  const confirmBatches = batchCountersBetween(countersBefore, await readBatchCounters(metricsUrl));

  const drains: Record<DrainName, Drained[]> = { checkpointer: [], noop: [], directSerial: [], direct: [] };
  const snapshotsPerRound = Math.ceil(settings.BENCH_SNAPSHOTS / settings.BENCH_ROUNDS);
  for (let round = 0; round < settings.BENCH_ROUNDS; round++) {
    for (const name of inTurn(DRAIN_NAMES, round)) drains[name].push(await drainScenarios[name](snapshotsPerRound));
  }

  const figures = (runs: Drained[]): DrainFigures => {
    const perItemMs = runs.flatMap((run) => run.perItemMs ?? []);
    return {
      snapshots: runs.length * snapshotsPerRound,
      seconds: runs.reduce((sum, run) => sum + run.seconds, 0),
      cpu: runs.map((run) => run.cpu).reduce(addSpend),
      ...(perItemMs.length > 0 ? { perItem: summarize(perItemMs) } : {}),
    };
  };
  return {
    stateBytes: settings.BENCH_STATE_BYTES,
    sessions: settings.BENCH_SESSIONS,
    rounds: settings.BENCH_ROUNDS,
    directConnections: settings.BENCH_DIRECT_CONNECTIONS,
    checkpointer: {
      snapshotConcurrency: config.SNAPSHOT_CONCURRENCY,
      batchMaxSize: config.BATCH_MAX_SIZE,
      batchMaxConcurrency: config.BATCH_MAX_CONCURRENCY,
      pgPoolSize: config.PG_POOL_SIZE,
    },
    latency: Object.fromEntries(LATENCY_NAMES.map((name) => [name, summarize(latencySamples[name])])) as Record<LatencyName, LatencySummary>,
    throughput: {
      checkpointer: figures(drains.checkpointer),
      noop: figures(drains.noop),
      directSerial: figures(drains.directSerial),
      direct: figures(drains.direct),
    },
    batches: {
      confirmedSaves: confirmBatches,
      drain: drains.checkpointer.map((run) => run.batches!).reduce(addBatchCounters),
    },
    elapsedSeconds: (performance.now() - benchStarted) / 1000,
  };
}

let settings: BenchSettings;
try {
  settings = loadBenchSettings();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`checkpoint-bench: ${error.message}`);
  process.exit(1);
}
const teardown = new Teardown();
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupted = true;
    console.error(`checkpoint-bench: ${signal}; cleaning up`);
    void teardown.run().finally(() => process.exit(130));
  });
}
try {
  const results = await runBench(settings, teardown);
  console.log(formatReport(results, os.cpus().length));
} catch (error) {
  // Once interrupted, whatever was in flight fails as its connections close; that is not worth reporting.
  if (!interrupted) {
    console.error(`checkpoint-bench failed: ${(error as Error).stack ?? String(error)}`);
    process.exitCode = 1;
  }
} finally {
  await teardown.run();
}
