import type { Logger } from "@savepoint/shared";
import { isConnectionError } from "./pg-errors.js";

export interface OutageHooks {
  /** Postgres just became unreachable: stop taking work; resolves once no more work can arrive. */
  onDown(error: Error): void | Promise<void>;
  /** Postgres answers again after `downMs`: take work again. */
  onUp(downMs: number): void | Promise<void>;
}

const FIRST_PROBE_DELAY_MS = 200;
const MAX_PROBE_DELAY_MS = 5_000;

/**
 * Rides out Postgres outages: an operation that fails for want of a connection waits until a probe
 * succeeds and then runs again, so nothing is lost and no job attempt is spent. All callers share one
 * probe loop, and the hooks fire once per outage.
 */
export class DatabaseOutage {
  private recovery: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly probe: () => Promise<void>,
    private readonly hooks: OutageHooks,
    private readonly logger: Logger,
  ) {}

  get isDown(): boolean {
    return this.recovery !== undefined;
  }

  async retryThroughOutage<T>(operation: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await operation();
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        await this.waitForRecovery(error as Error);
      }
    }
  }

  /** Stops probing. Operations still waiting stay pending: their jobs are redelivered after a restart. */
  close(): void {
    this.closed = true;
  }

  private waitForRecovery(error: Error): Promise<void> {
    this.recovery ??= this.probeUntilUp(error).finally(() => {
      this.recovery = undefined;
    });
    return this.recovery;
  }

  private async probeUntilUp(error: Error): Promise<void> {
    const started = Date.now();
    this.logger.error({ err: error }, "Postgres unreachable; pausing snapshot intake until it answers again");
    // Probing starts at once: pausing waits for commands already on their way to Redis, which must not delay noticing Postgres back.
    const paused = Promise.resolve(this.hooks.onDown(error)).then(() => this.logger.info("snapshot intake paused: no job is taken until Postgres answers"));
    paused.catch(() => undefined); // awaited below, unless the checkpointer closes first
    let delay = FIRST_PROBE_DELAY_MS;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (this.closed) return new Promise<void>(() => undefined);
      try {
        await this.probe();
        break;
      } catch (probeError) {
        this.logger.debug({ err: probeError, nextProbeMs: delay }, "Postgres still unreachable");
        delay = Math.min(delay * 2, MAX_PROBE_DELAY_MS);
      }
    }
    await paused;
    const downMs = Date.now() - started;
    this.logger.info({ downMs }, "Postgres reachable again; resuming snapshot intake");
    await this.hooks.onUp(downMs);
  }
}
