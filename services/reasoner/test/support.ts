import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { Queue, QueueEvents, type Job } from "bullmq";
import {
  CheckpointClient,
  createMetricsRegistry,
  parseEnv,
  requestDecision,
  thinkJobId,
  type MarketContext,
  type ThinkResult,
} from "@savepoint/shared";
import { ServiceProcess, type LogLine, type TestEnvironment } from "@savepoint/shared/testing";

export { spawnCheckpointer } from "@savepoint/shared/testing";
import { pino } from "pino";
import { reasonerEnvSchema } from "../src/config.js";
import { createModelServer, type ModelServer } from "../src/model-server/server.js";
import { startReasoner, type RunningReasoner } from "../src/reasoner.js";

export const REASONER_MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

/** The local model server in this process, so tests read its call counts directly. */
export async function startModelServer(latencyMs: number): Promise<{ server: ModelServer; url: string }> {
  const server = createModelServer({ latencyMs });
  const port = await server.listen(0);
  return { server, url: `http://127.0.0.1:${port}` };
}

/** Settings that make crashes visible within seconds instead of the production 30 s lock. */
export const FAST_LOCKS = { REASONER_LOCK_DURATION_MS: "2000" };

function reasonerEnv(env: TestEnvironment, modelUrl: string, overrides: Record<string, string>): Record<string, string> {
  return { ...env.env, HTTP_PORT: "0", ANTHROPIC_BASE_URL: modelUrl, ANTHROPIC_API_KEY: "", ...FAST_LOCKS, ...overrides };
}

/** A reasoner worker process; resolves once it consumes `reasoning`. */
export async function spawnReasoner(env: TestEnvironment, modelUrl: string, overrides: Record<string, string> = {}): Promise<ServiceProcess> {
  const service = ServiceProcess.start(REASONER_MAIN, reasonerEnv(env, modelUrl, overrides));
  await service.waitForLog("reasoner consuming reasoning");
  return service;
}

/** A reasoner in this process, configured from env like the real one; its log lines are collected in `logs`. */
export async function startInProcessReasoner(
  env: TestEnvironment,
  modelUrl: string,
  overrides: Record<string, string> = {},
): Promise<{ reasoner: RunningReasoner; logs: LogLine[] }> {
  const config = parseEnv(reasonerEnvSchema, reasonerEnv(env, modelUrl, overrides));
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(JSON.parse(chunk.toString()) as LogLine);
      done();
    },
  });
  const reasoner = await startReasoner(config, pino({ level: "info" }, sink), createMetricsRegistry("reasoner"));
  return { reasoner, logs };
}

export function connectClient(env: TestEnvironment): Promise<CheckpointClient> {
  return CheckpointClient.connect({ redisUrl: env.redisUrl, queuePrefix: env.queuePrefix });
}

/** The `reasoning` queue as a producer sees it. */
export async function openReasoningQueue(env: TestEnvironment): Promise<{ queue: Queue; events: QueueEvents; close(): Promise<void> }> {
  const connection = { url: env.redisUrl, maxRetriesPerRequest: null };
  const queue = new Queue("reasoning", { connection, prefix: env.queuePrefix });
  const events = new QueueEvents("reasoning", { connection, prefix: env.queuePrefix });
  // Each awaited job listens on both; tests await dozens at once.
  queue.setMaxListeners(100);
  events.setMaxListeners(100);
  await events.waitUntilReady();
  return {
    queue,
    events,
    async close() {
      await events.close();
      await queue.close();
    },
  };
}

export const market = (overrides: Partial<MarketContext> = {}): MarketContext => ({
  price: 187.4,
  previousClose: 184.1,
  volume: 61_000_000,
  averageVolume: 52_000_000,
  recentCloses: [176.2, 177.9, 178.4, 180.1, 179.6, 181.3, 182.8, 183.5, 184.1, 185.0],
  position: null,
  ...overrides,
});

let runs = 0;
/** Queues a think job with a fresh session id. */
export async function think(queue: Queue, agentId: string, maxIterations: number, context = market()): Promise<Job> {
  runs += 1;
  return requestDecision(queue, thinkJobId(agentId, `${process.pid}-${runs}`), { agentId, symbol: "AAPL", marketContext: context, maxIterations });
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

/** Resolves once `count` iteration snapshots of the session are stored. */
export function iterationsStored(env: TestEnvironment, sessionId: string, count: number, timeoutMs = 20_000) {
  return pollUntil(() => storedIterations(env, sessionId), (rows) => rows.length >= count, timeoutMs, `${count} iterations of ${sessionId}`);
}
