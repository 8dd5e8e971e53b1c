import type { Logger } from "pino";

/** A part to close; it may resolve to the exit code it ended with (a trader taken over ends with 3, say). */
type CloseStep = { name: string; close: () => Promise<void | number> };

/**
 * Closes a service's parts in the order they were registered, within one deadline, on SIGTERM or SIGINT
 * (or when `shutdown()` is called). Past the deadline the process exits non-zero rather than hang: BullMQ's
 * `worker.close()` has no timeout of its own.
 */
export class GracefulShutdown {
  private readonly steps: CloseStep[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly deadlineMs: number,
    private readonly exit: (code: number) => void = (code) => process.exit(code),
  ) {}

  /**
   * Registers a part to close; parts close in registration order (register consumers before connections).
   * A part that resolves to a non-zero number has ended with that exit code: the process exits with the first
   * such code (or 1 if a part failed first), without logging it as an error.
   */
  add(name: string, close: () => Promise<void | number>): this {
    this.steps.push({ name, close });
    return this;
  }

  /** Installs the signal handlers; a second signal while shutting down exits at once. */
  listen(): this {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      process.on(signal, () => {
        if (this.running) {
          this.logger.warn({ signal }, "second signal while shutting down; exiting now");
          this.exit(1);
          return;
        }
        void this.shutdown(signal);
      });
    }
    return this;
  }

  shutdown(reason: string, exitCode = 0): Promise<void> {
    this.running ??= this.run(reason, exitCode);
    return this.running;
  }

  private async run(reason: string, exitCode: number): Promise<void> {
    const started = Date.now();
    this.logger.info({ reason, deadlineMs: this.deadlineMs }, "shutting down");
    const deadline = new Promise<"deadline">((resolve) => setTimeout(resolve, this.deadlineMs, "deadline").unref());
    let code = exitCode;
    for (const step of this.steps) {
      const outcome = await Promise.race([
        step.close().then(
          (ended) => {
            if (typeof ended === "number" && ended !== 0) code = code || ended;
            return "closed" as const;
          },
          (error: unknown) => {
            this.logger.error({ err: error, step: step.name }, "error while closing");
            return "failed" as const;
          },
        ),
        deadline,
      ]);
      if (outcome === "deadline") {
        this.logger.error({ step: step.name, deadlineMs: this.deadlineMs }, "shutdown deadline passed; exiting without finishing");
        this.exit(1);
        return;
      }
      if (outcome === "failed") code = code || 1;
    }
    this.logger.info({ ms: Date.now() - started, exitCode: code }, "shut down");
    this.exit(code);
  }
}
