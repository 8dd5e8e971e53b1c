import { Queue } from "bullmq";
import {
  AnswerSender,
  catalogQueues,
  createRedisConnection,
  isCluster,
  redactUrl,
  redisTargetOf,
  reportRedisOutages,
  snapshotQueues,
  waitForRedis,
  type Logger,
  type RunningService,
} from "@savepoint/shared";
import type { Registry } from "prom-client";
import type { CheckpointerConfig } from "./config.js";
import { ConfirmationsFirst } from "./domain/confirmations-first.js";
import { CheckpointerMetrics } from "./metrics.js";
import { ConfirmationsBeacon } from "./queues/confirmations-beacon.js";
import { createMaintenanceWorker, scheduleRetention } from "./queues/maintenance.js";
import { createRequestWorker } from "./queues/request-worker.js";
import { createSnapshotWorker, type SnapshotJobWorker } from "./queues/snapshot-worker.js";
import { CheckpointStore, createPool } from "./store/checkpoint-store.js";
import { DatabaseOutage } from "./store/database-outage.js";
import { SnapshotWriter } from "./store/snapshot-writer.js";

/** How often a checkpointer that cannot reach Postgres at boot says that it is still waiting. */
const BOOT_WAIT_LOG_INTERVAL_MS = 5_000;

/** `close()` stops taking jobs, finishes the ones in hand (unless Postgres is down) and closes every connection. */
export type RunningCheckpointer = RunningService;

/** Wires the store, the batched writer and the three queue consumers, and starts consuming. */
/** `signal` (runService's, aborted by SIGTERM or SIGINT during the start) ends the wait for Postgres at boot. */
export async function startCheckpointer(config: CheckpointerConfig, logger: Logger, registry: Registry, signal?: AbortSignal): Promise<RunningCheckpointer> {
  const onConnectionLost = (error: Error & { code?: string }) => logger.warn({ problem: error.message, code: error.code }, "idle Postgres connection lost");
  const pool = createPool({
    databaseUrl: config.DATABASE_URL,
    maxConnections: config.PG_POOL_SIZE,
    statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
    onConnectionLost,
  });
  const store = new CheckpointStore(pool);

  const target = redisTargetOf(config);
  const producerConnection = createRedisConnection(target, "producer", "checkpointer");
  const workerConnection = createRedisConnection(target, "worker", "checkpointer-worker");
  // The confirmed queues' workers send their commands on a socket of their own: on the shared one they would
  // wait behind every command the backlog's workers pipelined before them.
  const confirmedWorkerConnection = createRedisConnection(target, "worker", "checkpointer-confirmed");
  // Answers wait through a Redis outage rather than fail: a job is finished only once its answer is pushed.
  const answerConnection = createRedisConnection(target, "worker", "checkpointer-answers");
  reportRedisOutages(producerConnection, logger, "checkpointer");
  reportRedisOutages(workerConnection, logger, "checkpointer-worker");
  reportRedisOutages(confirmedWorkerConnection, logger, "checkpointer-confirmed");
  reportRedisOutages(answerConnection, logger, "checkpointer-answers");
  await waitForRedis(producerConnection);
  const prefix = config.QUEUE_PREFIX;
  // Every queue of the catalog, each snapshot queue included: /metrics reports all their depths.
  const queues = catalogQueues(prefix, isCluster(target)).map(({ name, prefix: keyPrefix }) => new Queue(name, { connection: producerConnection, prefix: keyPrefix }));
  // Their connection's outages are reported above; BullMQ would print each one again for every queue.
  for (const queue of queues) queue.on("error", () => undefined);
  const metrics = new CheckpointerMetrics(registry, queues);
  const layout = snapshotQueues(prefix, isCluster(target));
  const snapshotLanes = [
    // Plain `checkpoints` is consumed whatever the layout; on one Redis it is also the fire-and-forget queue.
    ...(layout.fireAndForget.includes(layout.legacy) ? [] : [{ queue: layout.legacy, confirmed: false }]),
    ...layout.fireAndForget.map((queue) => ({ queue, confirmed: false })),
    ...layout.confirmed.map((queue) => ({ queue, confirmed: true })),
  ].filter(({ confirmed }) => config.SNAPSHOT_LANES === "all" || confirmed === (config.SNAPSHOT_LANES === "confirmed"));

  const snapshotWorkers: SnapshotJobWorker[] = [];
  const outage = new DatabaseOutage(
    () => store.ping(),
    {
      onDown: async () => {
        metrics.databaseUp.set(0);
        // Stop fetching; the snapshots already in hand stay locked to us and are written once Postgres returns.
        await Promise.all(snapshotWorkers.map((worker) => worker.pauseIntake()));
      },
      onUp: async () => {
        metrics.databaseUp.set(1);
        for (const worker of snapshotWorkers) worker.resumeIntake();
      },
    },
    logger,
  );
  try {
    await untilPostgresAnswers(logger, config.DATABASE_URL, signal, () => outage.retryThroughOutage(() => store.checkSchema()));
  } catch (error) {
    // Told to stop while Postgres never answered: let go of what the start opened before saying why.
    outage.close();
    await Promise.all(queues.map((queue) => queue.close()));
    await pool.end();
    for (const connection of [producerConnection, workerConnection, confirmedWorkerConnection, answerConnection]) connection.disconnect();
    throw error;
  }

  const writerOptions = { maxBatchSize: config.BATCH_MAX_SIZE, maxConcurrentFlushes: config.BATCH_MAX_CONCURRENCY };
  // Confirmed saves have a writer of their own: their small batches commit beside the backlog's large ones
  // instead of after them. Both lock session rows in the same order, so they can wait on each other but not deadlock.
  // Their writer has a Postgres connection per lane of its own, so a backlog holding the shared pool never makes them wait for one.
  const confirmedPool = createPool({
    databaseUrl: config.DATABASE_URL,
    maxConnections: config.BATCH_MAX_CONCURRENCY,
    statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
    onConnectionLost,
  });
  const writers = {
    fireAndForget: new SnapshotWriter(store, outage, metrics, logger, writerOptions),
    confirmed: new SnapshotWriter(new CheckpointStore(confirmedPool), outage, metrics, logger, writerOptions),
  };
  const answers = new AnswerSender(answerConnection, prefix);
  // SNAPSHOT_CONCURRENCY is shared among the workers of each kind. The confirmed queues have CONFIRMED_FETCHERS
  // workers between them (at least one each), so confirmed saves that arrive together are fetched side by side;
  // each fire-and-forget queue keeps one worker, whose one-at-a-time fetches its large batches amortize.
  const queuesOf = (confirmed: boolean) => snapshotLanes.filter((lane) => lane.confirmed === confirmed).length;
  const perQueue = (confirmed: boolean) => Math.max(1, Math.ceil(config.SNAPSHOT_CONCURRENCY / queuesOf(confirmed)));
  const workersPerQueue = (confirmed: boolean) => (confirmed ? Math.min(perQueue(true), Math.max(1, Math.ceil(config.CONFIRMED_FETCHERS / queuesOf(true)))) : 1);
  const concurrencyOf = (confirmed: boolean) => Math.max(1, Math.ceil(perQueue(confirmed) / workersPerQueue(confirmed)));
  const backlogWorkers: SnapshotJobWorker[] = [];
  // Confirmations first: while confirmed saves flow, here or in another checkpointer on this Redis (the
  // beacon, for SNAPSHOT_LANES=confirmed beside SNAPSHOT_LANES=fire-and-forget), each fire-and-forget worker
  // holds its share of BACKLOG_YIELD_CONCURRENCY; BullMQ's main loop and completions fetch only below the
  // worker's concurrency, so the backlog shrinks to that as the jobs in hand finish, and grows back on the next
  // completion once restored.
  const yieldedConcurrency = Math.min(concurrencyOf(false), Math.max(1, Math.ceil(config.BACKLOG_YIELD_CONCURRENCY / Math.max(1, queuesOf(false)))));
  const yieldEnabled = config.BACKLOG_YIELD_MS > 0;
  const confirmationsFirst =
    yieldEnabled && queuesOf(false) > 0
      ? new ConfirmationsFirst({
          quietMs: config.BACKLOG_YIELD_MS,
          onYield: () => backlogWorkers.forEach((worker) => (worker.concurrency = yieldedConcurrency)),
          onRestore: () => backlogWorkers.forEach((worker) => (worker.concurrency = concurrencyOf(false))),
        })
      : undefined;
  const beacon = yieldEnabled ? new ConfirmationsBeacon(producerConnection, prefix, config.BACKLOG_YIELD_MS) : undefined;
  const confirmationFlow =
    beacon && queuesOf(true) > 0
      ? {
          begin: () => {
            confirmationsFirst?.begin();
            beacon.shine();
          },
          end: () => confirmationsFirst?.end(),
        }
      : undefined;
  for (const { queue, confirmed } of snapshotLanes) {
    for (let index = 0; index < workersPerQueue(confirmed); index++) {
      snapshotWorkers.push(
        createSnapshotWorker({
          connection: confirmed ? confirmedWorkerConnection : workerConnection,
          queue,
          concurrency: concurrencyOf(confirmed),
          lockDurationMs: config.JOB_LOCK_DURATION_MS,
          maxStateBytes: config.MAX_STATE_BYTES,
          writer: confirmed ? writers.confirmed : writers.fireAndForget,
          confirmed,
          flow: confirmed ? confirmationFlow : undefined,
          answers,
          metrics,
          logger,
        }),
      );
      if (!confirmed) backlogWorkers.push(snapshotWorkers.at(-1)!);
    }
  }
  if (beacon && confirmationsFirst) beacon.watch(confirmationsFirst);
  const workers = [
    ...snapshotWorkers,
    createRequestWorker({ connection: workerConnection, prefix, concurrency: config.REQUEST_CONCURRENCY, store, answers, metrics, logger }),
    createMaintenanceWorker({ connection: workerConnection, prefix, store, logger }),
  ];
  await scheduleRetention(queues.find((queue) => queue.name === "checkpoint-maintenance")!, config.CLEANUP_INTERVAL_MINUTES * 60_000, {
    keepCount: config.CLEANUP_KEEP_COUNT,
    olderThanHours: config.CLEANUP_OLDER_THAN_HOURS,
    finishedTtlHours: config.FINISHED_SESSION_TTL_HOURS,
  });
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  logger.info(
    {
      queuePrefix: prefix,
      snapshotQueues: snapshotLanes.map(({ queue }) => `${queue.prefix}:${queue.name}`),
      snapshotConcurrency: config.SNAPSHOT_CONCURRENCY,
      backlogYield: yieldEnabled ? { ms: config.BACKLOG_YIELD_MS, concurrencyPerWorker: yieldedConcurrency } : "off",
      batchMaxSize: config.BATCH_MAX_SIZE,
    },
    "checkpointer consuming checkpoints, checkpoint-requests and checkpoint-maintenance",
  );

  return {
    readiness: {
      redis: async () => {
        await producerConnection.ping();
      },
      postgres: async () => {
        if (outage.isDown) throw new Error("unreachable; snapshot intake paused until it answers");
        await store.ping();
      },
    },
    async close() {
      // During an outage the jobs in hand cannot finish: leave them locked; they are redelivered after restart.
      const abandonActive = outage.isDown;
      outage.close();
      beacon?.close();
      confirmationsFirst?.close();
      await Promise.all(workers.map((worker) => worker.close(abandonActive)));
      await Promise.all(queues.map((queue) => queue.close()));
      await Promise.all([pool.end(), confirmedPool.end()]);
      producerConnection.disconnect();
      workerConnection.disconnect();
      confirmedWorkerConnection.disconnect();
      answerConnection.disconnect();
    },
  };
}

/**
 * Runs the boot's first Postgres operation, which waits for as long as Postgres is unreachable, and says so
 * every BOOT_WAIT_LOG_INTERVAL_MS meanwhile: without it a wrong DATABASE_URL only shows as /readyz "starting".
 */
async function untilPostgresAnswers<T>(logger: Logger, databaseUrl: string, signal: AbortSignal | undefined, operation: () => Promise<T>): Promise<T> {
  signal?.throwIfAborted();
  const started = Date.now();
  const database = redactUrl(databaseUrl);
  const reminder = setInterval(() => {
    logger.warn(
      { database, waitedMs: Date.now() - started },
      `waiting for Postgres at ${database}: no jobs are taken and /readyz answers 503 until it answers; check DATABASE_URL`,
    );
  }, BOOT_WAIT_LOG_INTERVAL_MS);
  let onAbort: () => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  const answered = operation();
  try {
    return await Promise.race([answered, aborted]);
  } finally {
    clearInterval(reminder);
    signal?.removeEventListener("abort", onAbort);
    // After an abort the operation is left pending (a closed outage probes no more); were it to fail, no one is left to tell.
    answered.catch(() => undefined);
  }
}
