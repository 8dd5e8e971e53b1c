import { CheckpointClient } from "../checkpoint-client.js";
import { spawnCheckpointer } from "./checkpointer-process.js";
import type { ServiceProcess } from "./service-process.js";
import { startedOrThrow, stopNewestFirst } from "./teardown.js";
import { createTestEnvironment, type TestEnvironment } from "./test-environment.js";

/** A checkpoint client on the test environment's Redis and queue prefix. */
export function connectClient(env: TestEnvironment, options: { requestTimeoutMs?: number; confirmTimeoutMs?: number } = {}): Promise<CheckpointClient> {
  return CheckpointClient.connect({ redisUrl: env.redisUrl, queuePrefix: env.queuePrefix, ...options });
}

/**
 * What a service's test file runs against: its database and queue prefix and a checkpointer process, started once
 * for the file because they take seconds (`startFile`, in beforeAll), and whatever a single test starts on top,
 * which must not outlive it (`stopAfterTest`, ended by `endTest` in afterEach). Teardown goes newest first, stops
 * only what did start (a setup that failed half-way still cleans up), and carries on past a step that fails.
 * Framework-neutral: each service's test support registers the hooks.
 */
export class SharedStack {
  private readonly fileStops: Array<() => Promise<unknown>> = [];
  private readonly testStops: Array<() => Promise<unknown>> = [];
  private started: { env?: TestEnvironment; checkpointer?: ServiceProcess; client?: CheckpointClient } = {};

  /** `name` says which stack a read before its setup concerns (e.g. `trader stack "recovery"`). */
  constructor(
    private readonly label: string,
    private readonly name: string,
  ) {}

  async startFile(options: { checkpointerEnv?: Record<string, string>; client?: boolean } = {}): Promise<void> {
    const env = await createTestEnvironment(this.label);
    this.stopAfterFile(() => env.dispose());
    this.started.env = env;
    const checkpointer = await spawnCheckpointer(env, options.checkpointerEnv);
    this.stopAfterFile(() => checkpointer.kill("SIGTERM"));
    this.started.checkpointer = checkpointer;
    if (options.client) {
      const client = await connectClient(env);
      this.stopAfterFile(() => client.close());
      this.started.client = client;
    }
  }

  stopAfterFile(stop: () => Promise<unknown>): void {
    this.fileStops.push(stop);
  }

  stopAfterTest(stop: () => Promise<unknown>): void {
    this.testStops.push(stop);
  }

  endTest(): Promise<void> {
    return stopNewestFirst(this.testStops);
  }

  endFile(): Promise<void> {
    return stopNewestFirst(this.fileStops);
  }

  /** `value` once the file's setup has made it; otherwise an error naming what is missing. */
  ready<T>(value: T | undefined, what: string): T {
    return startedOrThrow(value, what, this.name);
  }

  get env(): TestEnvironment {
    return this.ready(this.started.env, "the environment");
  }

  get checkpointer(): ServiceProcess {
    return this.ready(this.started.checkpointer, "the checkpointer");
  }

  get client(): CheckpointClient {
    return this.ready(this.started.client, "the checkpoint client");
  }
}
