import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";

const FIRST_RESTART_DELAY_MS = 1_000;
const MAX_RESTART_DELAY_MS = 30_000;
/** A process that ran this long before exiting counts as healthy again: its next restart is quick. */
const STABLE_AFTER_MS = 10_000;

/**
 * One service process of the native stack, restarted when it exits on its own (like compose's
 * `restart: unless-stopped`, with a backoff that doubles up to 30 s) until `stop` is called.
 *
 * Each runs in its own process group, so Ctrl+C in the terminal reaches only the runner, which stops the
 * services in dependency order (the trader's final checkpoint needs a running checkpointer).
 */
export class SupervisedProcess {
  /**
   * @param {{ name: string, command: string[], env: Record<string, string>, cwd: string,
   *           output: (name: string, line: string) => void, restart: boolean }} options
   */
  constructor(options) {
    this.options = options;
    this.child = undefined;
    this.stopping = false;
    this.restartDelayMs = FIRST_RESTART_DELAY_MS;
    this.restartTimer = undefined;
  }

  get name() {
    return this.options.name;
  }

  /** Starts the process; with `restart`, starts it again whenever it exits until stopped. */
  start() {
    const { name, command, env, cwd, output } = this.options;
    const [program, ...args] = command;
    // "node" in docker-compose.yml is the container's node; here, the one running this script.
    const executable = program === "node" ? process.execPath : program;
    const child = spawn(executable, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.child = child;
    const startedAt = Date.now();
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on("line", (line) => output(name, line));
    child.on("error", (error) => output(name, `could not start ${command.join(" ")}: ${error.message}`));
    output(name, `started: ${command.join(" ")} (pid ${child.pid})`);
    child.on("exit", (code, signal) => {
      if (this.stopping || !this.options.restart) return;
      this.restartDelayMs = Date.now() - startedAt > STABLE_AFTER_MS ? FIRST_RESTART_DELAY_MS : this.restartDelayMs;
      output(name, `exited (${signal ?? `code ${code}`}); restarting in ${this.restartDelayMs / 1000} s`);
      this.restartTimer = setTimeout(() => this.start(), this.restartDelayMs);
      this.restartDelayMs = Math.min(this.restartDelayMs * 2, MAX_RESTART_DELAY_MS);
    });
    return this;
  }

  /** Resolves with the exit code of a process started without `restart` (a one-shot step). */
  async exitCode() {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? 1;
    try {
      const [code] = await once(child, "exit");
      return code ?? 1;
    } catch {
      return 1; // it could not be started at all ("error"); start() has said why
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs` (compose's stop_grace_period). */
  async stop(graceMs) {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const killer = setTimeout(() => {
      this.options.output(this.name, `still running ${graceMs / 1000} s after SIGTERM; killing it`);
      child.kill("SIGKILL");
    }, graceMs);
    await exited;
    clearTimeout(killer);
  }

  /** Last resort when the runner itself must go now: no grace. */
  kill() {
    this.#signalAndForget("SIGKILL");
  }

  /** The runner is exiting: SIGTERM without waiting, so the service still shuts down gracefully on its own. */
  abandon() {
    this.#signalAndForget("SIGTERM");
  }

  #signalAndForget(signal) {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}
