import { fileURLToPath } from "node:url";
import { Queue, QueueEvents, type Job } from "bullmq";
import {
  allSnapshotQueues,
  type CheckpointClient,
  createMetricsRegistry,
  parseEnv,
  requestDecision,
  thinkJobId,
  type ThinkResult,
} from "@savepoint/shared";
import {
  ServiceProcess,
  SharedStack,
  openQueueWithEvents,
  type LogLine,
  type QueueWithEvents,
  type TestEnvironment,
  recordingLogger,
  UnfinishedJobs,
} from "@savepoint/shared/testing";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll } from "vitest";
import { reasonerEnvSchema } from "../src/config.js";
import { market } from "./market-fixture.js";
import { AnthropicModel, type AnthropicModelOptions } from "../src/model/anthropic-model.js";
import { createModelServer, type ModelServer } from "@savepoint/model-server";
import { startReasoner, type RunningReasoner } from "../src/reasoner.js";

export const REASONER_MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
/** The documented re-drive of a dead-lettered run (`npm run redrive -w @savepoint/reasoner -- <session id>`). */
export const REDRIVE_CLI = fileURLToPath(new URL("../dist/cli/redrive.js", import.meta.url));

/** The local model server in this process, so tests read its call counts directly. */
export async function startModelServer(latencyMs: number): Promise<{ server: ModelServer; url: string }> {
  const server = createModelServer({ latencyMs });
  const port = await server.listen(0);
  return { server, url: `http://127.0.0.1:${port}` };
}

/**
 * The reasoner's model adapter against a model server at `baseURL` (the local one), quiet, with a test's
 * settings over these.
 */
export function testModel(baseURL: string, options: Partial<AnthropicModelOptions> = {}): AnthropicModel {
  return new AnthropicModel({
    baseURL,
    apiKey: "test-key",
    model: "claude-sonnet-5-5",
    maxTokens: 1_024,
    timeoutMs: 10_000,
    maxRetries: 3,
    maxRetryWaitMs: 5_000,
    logger: pino({ level: "silent" }),
    ...options,
  });
}

/** Settings that make crashes visible within seconds instead of the production 30 s lock. */
export const FAST_LOCKS = { REASONER_LOCK_DURATION_MS: "2000" };

function reasonerEnv(env: TestEnvironment, modelUrl: string, overrides: Record<string, string>): Record<string, string> {
  return { ...env.env, HTTP_PORT: "0", ANTHROPIC_BASE_URL: modelUrl, ANTHROPIC_API_KEY: "", ...FAST_LOCKS, ...overrides };
}

/** A reasoner in this process, configured from env like the real one; its log lines are collected in `logs`. */
export async function startInProcessReasoner(
  env: TestEnvironment,
  modelUrl: string,
  overrides: Record<string, string> = {},
): Promise<{ reasoner: RunningReasoner; logs: LogLine[] }> {
  const config = parseEnv(reasonerEnvSchema, reasonerEnv(env, modelUrl, overrides));
  const { logger, lines: logs } = recordingLogger();
  const reasoner = await startReasoner(config, logger, createMetricsRegistry("reasoner"));
  return { reasoner, logs };
}

/** The `reasoning` queue as a producer sees it. */
export type ReasoningQueue = QueueWithEvents;

export function openReasoningQueue(env: TestEnvironment): Promise<ReasoningQueue> {
  return openQueueWithEvents(env, "reasoning");
}

/** What a test file runs reasoners against; see `useReasonerStack`. */
export interface ReasonerStack {
  /** The file's own queue prefix and Postgres database. */
  readonly env: TestEnvironment;
  /** The real checkpointer, as a process, storing the reasoners' checkpoints. */
  readonly checkpointer: ServiceProcess;
  /** The local model server the reasoners call; its ledger counts their calls per session. */
  readonly model: ModelServer;
  readonly modelUrl: string;
  readonly producer: ReasoningQueue;
  /**
   * A reasoner worker process, resolved once it consumes `reasoning`. SIGKILLed when the test ends, after a
   * SIGCONT in case the test froze it.
   */
  spawnReasoner(overrides?: Record<string, string>): Promise<ServiceProcess>;
  /** `startInProcessReasoner` for the current test; closed when the test ends. */
  startInProcessReasoner(overrides?: Record<string, string>): Promise<{ reasoner: RunningReasoner; logs: LogLine[] }>;
}

/**
 * A file's environment, checkpointer, model server and producer take seconds to start, so its tests share them;
 * the reasoners a single test starts must not outlive it, or they would take the next test's jobs. Call it in a
 * `describe`: it registers the hooks, and its fields can be read once the tests run. Teardown goes newest first,
 * stops only what did start (a setup that failed half-way still cleans up), and carries on past a step that fails.
 */
interface StackOptions {
  modelLatencyMs: number;
  /** Extra environment of the file's checkpointer (retention settings, say). */
  checkpointerEnv?: Record<string, string>;
}
export function useReasonerStack(label: string, options: StackOptions & { client: true }): ReasonerStack & { readonly client: CheckpointClient };
export function useReasonerStack(label: string, options: StackOptions & { client?: false }): ReasonerStack;
export function useReasonerStack(
  label: string,
  options: StackOptions & { client?: boolean },
): ReasonerStack & { readonly client: CheckpointClient } {
  const stack = new SharedStack(label, `reasoner stack "${label}"`);
  let model: { server: ModelServer; url: string } | undefined;
  let producer: ReasoningQueue | undefined;

  beforeAll(async () => {
    await stack.startFile({ checkpointerEnv: options.checkpointerEnv, client: options.client });
    const served = await startModelServer(options.modelLatencyMs);
    stack.stopAfterFile(() => served.server.close());
    model = served;
    const opened = await openReasoningQueue(stack.env);
    stack.stopAfterFile(() => opened.close());
    producer = opened;
  });
  afterEach(() => stack.endTest());
  afterAll(() => stack.endFile());

  const modelUrl = () => stack.ready(model, "the model server").url;
  return {
    get env() {
      return stack.env;
    },
    get checkpointer() {
      return stack.checkpointer;
    },
    get model() {
      return stack.ready(model, "the model server").server;
    },
    get modelUrl() {
      return modelUrl();
    },
    get producer() {
      return stack.ready(producer, "the producer");
    },
    get client() {
      return stack.client;
    },
    async spawnReasoner(overrides = {}) {
      const worker = ServiceProcess.start(REASONER_MAIN, reasonerEnv(stack.env, modelUrl(), overrides));
      // Registered before it is ready, so a worker that never gets there is stopped too.
      stack.stopAfterTest(async () => {
        worker.child.kill("SIGCONT");
        await worker.kill("SIGKILL");
      });
      await worker.waitForLog("reasoner consuming reasoning");
      return worker;
    },
    async startInProcessReasoner(overrides = {}) {
      const started = await startInProcessReasoner(stack.env, modelUrl(), overrides);
      stack.stopAfterTest(() => started.reasoner.close());
      return started;
    },
  };
}


export { market };

let runs = 0;
/** A fresh session id for `agentId`. */
export function nextSessionId(agentId: string): string {
  runs += 1;
  return thinkJobId(agentId, `${process.pid}-${runs}`);
}

/** Queues a think job with a fresh session id. */
export async function think(queue: Queue, agentId: string, maxIterations: number, context = market()): Promise<Job> {
  return requestDecision(queue, nextSessionId(agentId), { agentId, symbol: "AAPL", marketContext: context, maxIterations });
}

/** Runs the re-drive CLI on a session, as a person would; resolves with its exit and its output. */
export async function redrive(env: TestEnvironment, sessionId: string): Promise<{ code: number | null; output: string }> {
  const cli = ServiceProcess.start(REDRIVE_CLI, { REDIS_URL: env.redisUrl, QUEUE_PREFIX: env.queuePrefix }, [sessionId]);
  const { code } = await cli.exited;
  return { code, output: cli.output.join("\n") };
}

export async function decisionOf(job: Job, events: QueueEvents, timeoutMs = 45_000): Promise<ThinkResult> {
  return (await job.waitUntilFinished(events, timeoutMs)) as ThinkResult;
}

/** Polls `read` until `accept` holds, failing with the last value after `timeoutMs`. */
export async function pollUntil<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 20_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!accept(value)) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = await read();
  }
  return value;
}

/** Iteration snapshots stored for a session, as `epoch:seq`. */
export async function storedIterations(env: TestEnvironment, sessionId: string): Promise<Array<{ epoch: number; seq: number }>> {
  const { rows } = await env.query<{ epoch: string; seq: string }>(
    "SELECT epoch, seq FROM checkpoints WHERE service = 'reasoner' AND session_id = $1 AND kind = 'iteration' ORDER BY epoch, seq",
    [sessionId],
  );
  return rows.map((row) => ({ epoch: Number(row.epoch), seq: Number(row.seq) }));
}

/**
 * The session's iteration snapshots once every snapshot sent so far is stored (no snapshot queue holds a job
 * waiting, active or to be retried). A stopped worker's save whose confirmation timed out (on a loaded machine,
 * or within a shutdown's short grace) stays queued and lands after the worker exits: counted at the exit, the
 * stored iterations can be fewer than the ones its successor resumes after.
 */
export async function settledIterations(env: TestEnvironment, sessionId: string, timeoutMs = 20_000): Promise<Array<{ epoch: number; seq: number }>> {
  const unfinished = new UnfinishedJobs({ url: env.redisUrl, maxRetriesPerRequest: null }, allSnapshotQueues(env.queuePrefix, false));
  try {
    await pollUntil(() => unfinished.count(), (count) => count === 0, timeoutMs, "no snapshot job queued");
  } finally {
    await unfinished.close();
  }
  return storedIterations(env, sessionId);
}

/** Resolves once `count` iteration snapshots of the session are stored. */
export function iterationsStored(env: TestEnvironment, sessionId: string, count: number, timeoutMs = 20_000) {
  return pollUntil(() => storedIterations(env, sessionId), (rows) => rows.length >= count, timeoutMs, `${count} iterations of ${sessionId}`);
}
