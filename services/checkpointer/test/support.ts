import { type CheckpointClient, createLogger, createMetricsRegistry, defaultJobOptions, parseEnv } from "@savepoint/shared";
import { connectClient, createTestEnvironment, openQueueWithEvents, type QueueWithEvents, type TestEnvironment } from "@savepoint/shared/testing";
import { afterAll, beforeAll } from "vitest";
import { startCheckpointer, type RunningCheckpointer } from "../src/checkpointer.js";
import { checkpointerEnvSchema } from "../src/config.js";

export { connectClient, spawnCheckpointer } from "@savepoint/shared/testing";
export { snapshot } from "./snapshot-fixture.js";

/** A checkpointer in this process, configured like the real one from env (plus overrides), reporting to `registry`. */
export async function startTestCheckpointer(
  env: TestEnvironment,
  overrides: Record<string, string> = {},
  registry = createMetricsRegistry("checkpointer"),
): Promise<RunningCheckpointer> {
  const config = parseEnv(checkpointerEnvSchema, { ...env.env, HTTP_PORT: "0", ...overrides });
  const logger = createLogger({ service: "checkpointer", level: process.env.TEST_LOG_LEVEL ?? "silent" });
  return startCheckpointer(config, logger, registry);
}

export interface RunningCheckpointerStack {
  env: TestEnvironment;
  checkpointer: RunningCheckpointer;
  client: CheckpointClient;
}

/**
 * Most files run against the same stack of their own; starting it, and closing it in reverse order even when
 * starting failed part-way, is kept here so the files cannot drift apart. The fields are set in beforeAll, so
 * read them inside tests and hooks, not while the file is being collected.
 */
export function useRunningCheckpointer(
  label: string,
  options: { overrides?: Record<string, string>; rawQueue: true },
): RunningCheckpointerStack & { raw: SnapshotQueue };
export function useRunningCheckpointer(
  label: string,
  options?: { overrides?: Record<string, string>; rawQueue?: false },
): RunningCheckpointerStack;
export function useRunningCheckpointer(
  label: string,
  options: { overrides?: Record<string, string>; rawQueue?: boolean } = {},
): RunningCheckpointerStack & { raw?: SnapshotQueue } {
  const stack = {} as RunningCheckpointerStack & { raw?: SnapshotQueue };
  beforeAll(async () => {
    stack.env = await createTestEnvironment(label);
    stack.checkpointer = await startTestCheckpointer(stack.env, options.overrides);
    stack.client = await connectClient(stack.env);
    if (options.rawQueue) stack.raw = await openSnapshotQueue(stack.env);
  });
  afterAll(async () => {
    const { env, checkpointer, client, raw } = stack as Partial<typeof stack>;
    await raw?.close();
    await client?.close();
    await checkpointer?.close();
    await env?.dispose();
  });
  return stack;
}

/** Rows stored for a session, ordered, as `epoch:seq` strings. */
export async function storedPositions(env: TestEnvironment, service: string, sessionId: string): Promise<string[]> {
  const { rows } = await env.query<{ p: string }>(
    "SELECT epoch || ':' || seq AS p FROM checkpoints WHERE service = $1 AND session_id = $2 ORDER BY epoch, seq",
    [service, sessionId],
  );
  return rows.map((row) => row.p);
}

export type SnapshotQueue = QueueWithEvents;

/**
 * The `checkpoints` queue as a raw producer sees it, with the producers' retry options (so "failed at once"
 * is the checkpointer's decision), for deliveries the client would never make.
 */
export function openSnapshotQueue(env: TestEnvironment): Promise<SnapshotQueue> {
  return openQueueWithEvents(env, "checkpoints", defaultJobOptions.checkpoints);
}
