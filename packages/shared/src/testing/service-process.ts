import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export interface LogLine {
  msg?: string;
  level?: number;
  [key: string]: unknown;
}

/**
 * A service started as a real process (`node <script>`), so tests can SIGTERM or SIGKILL it. Its JSON
 * log lines are kept and can be awaited.
 */
export class ServiceProcess {
  readonly logs: LogLine[] = [];
  readonly output: string[] = [];
  private readonly waiters = new Set<{ match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly child: ChildProcess) {
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on("line", (text) => this.onLine(text));
    }
    this.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  }

  static start(script: string, env: Record<string, string>, args: string[] = []): ServiceProcess {
    const child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, LOG_FORMAT: "json", LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new ServiceProcess(child);
  }

  /** Resolves with the first log line (past or future) for which `match` holds. */
  waitForLog(match: string | ((line: LogLine) => boolean), timeoutMs = 20_000): Promise<LogLine> {
    const predicate = typeof match === "string" ? (line: LogLine) => line.msg === match : match;
    const seen = this.logs.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        match: predicate,
        resolve: (line: LogLine) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`no log line matching ${String(match)} within ${timeoutMs} ms; last output:\n${this.output.slice(-20).join("\n")}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }

  private onLine(text: string): void {
    this.output.push(text);
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    this.logs.push(line);
    for (const waiter of [...this.waiters]) if (waiter.match(line)) waiter.resolve(line);
  }
}
