import os from "node:os";
import {
  CheckpointClient,
  createRedisConnection,
  redisTargetOf,
  reportRedisOutages,
  waitForRedis,
  type Logger,
  type ReadinessCheck,
} from "@savepoint/shared";
import type { Registry } from "prom-client";
import { callGraceMs, marketEndpoint, modelEndpoint, type ReasonerConfig } from "./config.js";
import { ChainOfThought } from "./engine/chain-of-thought.js";
import { ReasonerMetrics } from "./metrics.js";
import { AnthropicModel } from "./model/anthropic-model.js";
import type { ReasoningModel } from "./model/reasoning-model.js";
import { ThinkWorker } from "./queues/think-worker.js";
import { ThinkRunner } from "./run/think-runner.js";
import { BrokerMarketData } from "./tools/broker-market-data.js";
import { marketAnalysisTool } from "./tools/market-analysis.js";
import { JobContextMarketData, type MarketDataSource } from "./tools/market-data.js";
import { LessonBook, memoryRecallTool, type MemoryStore } from "./tools/memory-recall.js";
import { positionLookupTool } from "./tools/position-lookup.js";

export interface RunningReasoner {
  readiness: Record<string, ReadinessCheck>;
  metrics: ReasonerMetrics;
  /** Stops taking jobs, checkpoints and requeues the runs in hand, and closes every connection. */
  close(): Promise<void>;
}

/** Where the reasoner gets what it does not own; the defaults are the in-repo ones. */
export interface ReasonerSources {
  model?: ReasoningModel;
  market?: MarketDataSource;
  memory?: MemoryStore;
}

/** The start-up check of the model endpoint waits no longer than this for its one answer. */
const MODEL_CHECK_TIMEOUT_MS = 10_000;

/** Wires the model, the tools, the engine and the checkpoint client into a worker on `reasoning`, and starts it. */
export async function startReasoner(
  config: ReasonerConfig,
  logger: Logger,
  registry: Registry,
  sources: ReasonerSources = {},
): Promise<RunningReasoner> {
  const metrics = new ReasonerMetrics(registry);
  const endpoint = modelEndpoint(config);
  const model =
    sources.model ??
    new AnthropicModel({
      baseURL: endpoint.baseURL,
      apiKey: endpoint.apiKey,
      model: config.ANTHROPIC_MODEL,
      maxTokens: config.MODEL_MAX_TOKENS,
      timeoutMs: config.MODEL_TIMEOUT_MS,
      maxRetries: config.MODEL_MAX_RETRIES,
      maxRetryWaitMs: config.MODEL_MAX_RETRY_WAIT_MS,
      streaming: config.MODEL_STREAMING,
      logger,
      onCall: (outcome) => metrics.modelCalls.inc({ outcome }),
    });
  const engine = new ChainOfThought(model, [marketAnalysisTool, positionLookupTool, memoryRecallTool(sources.memory ?? new LessonBook())]);

  const redis = redisTargetOf(config);
  const producerConnection = createRedisConnection(redis, "producer", "reasoner");
  reportRedisOutages(producerConnection, logger, "reasoner");
  await waitForRedis(producerConnection);
  // After Redis, whose line names REDIS_URL; before the worker, so no job is taken by a reasoner that cannot think.
  if (model instanceof AnthropicModel) {
    await model.checkEndpoint(Math.min(config.MODEL_TIMEOUT_MS, MODEL_CHECK_TIMEOUT_MS)).catch((error: unknown) => {
      producerConnection.disconnect();
      throw error;
    });
  }
  const checkpoints = await CheckpointClient.connect({
    redis,
    queuePrefix: config.QUEUE_PREFIX,
    requestTimeoutMs: config.CHECKPOINT_TIMEOUT_MS,
    confirmTimeoutMs: config.CHECKPOINT_TIMEOUT_MS,
  });
  const broker = marketEndpoint(config);
  const workerName = `${os.hostname()}:${process.pid}`;
  const runner = new ThinkRunner({
    checkpoints,
    engine,
    market: sources.market ?? (broker ? new BrokerMarketData(broker) : new JobContextMarketData()),
    metrics,
    logger,
    defaultMaxIterations: config.REASONER_MAX_ITERATIONS,
    checkpointTtlMs: config.REASONER_CHECKPOINT_TTL_MS,
    checkpointTimeoutMs: config.CHECKPOINT_TIMEOUT_MS,
    // The shutdown budget holds the call grace, then two saves (the answered iteration, the interrupt).
    interruptTimeoutMs: Math.min(config.CHECKPOINT_TIMEOUT_MS, Math.floor((config.SHUTDOWN_TIMEOUT_MS - callGraceMs(config)) / 2.5)),
    worker: workerName,
  });
  const workerConnection = createRedisConnection(redis, "worker", "reasoner-worker");
  reportRedisOutages(workerConnection, logger, "reasoner-worker");
  const worker = new ThinkWorker({
    connection: workerConnection,
    prefix: config.QUEUE_PREFIX,
    concurrency: config.REASONER_CONCURRENCY,
    lockDurationMs: config.REASONER_LOCK_DURATION_MS,
    maxStalledCount: config.REASONER_MAX_STALLED_COUNT,
    callGraceMs: callGraceMs(config),
    runner,
    metrics,
    logger,
    name: workerName,
  });
  await worker.waitUntilReady();
  logger.info(
    {
      queuePrefix: config.QUEUE_PREFIX,
      concurrency: config.REASONER_CONCURRENCY,
      model: config.ANTHROPIC_MODEL,
      modelBaseUrl: endpoint.baseURL,
      localModelServer: endpoint.local,
      marketData: sources.market ? "custom" : broker ? `broker at ${broker.dataUrl}` : "the job's marketContext (no APCA_* market data configured)",
    },
    "reasoner consuming reasoning",
  );

  return {
    metrics,
    readiness: {
      redis: async () => {
        await producerConnection.ping();
      },
      worker: async () => {
        if (!worker.worker.isRunning()) throw new Error("the reasoning worker is not running");
      },
    },
    async close() {
      await worker.close();
      await checkpoints.close();
      producerConnection.disconnect();
      workerConnection.disconnect();
    },
  };
}
