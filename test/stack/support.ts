import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { TestEnvironment } from "@savepoint/shared/testing";
import { nativePlan } from "../../scripts/stack/compose.mjs";

const RUNNER = fileURLToPath(new URL("../../scripts/stack/run.mjs", import.meta.url));

/** One line of the runner's output: which service wrote it, and what. */
export interface StackLine {
  source: string;
  text: string;
}

interface Waiter {
  match: (line: StackLine) => boolean;
  resolve: () => void;
}

/** `npm run stack` running as a real process, with its prefixed output kept and awaitable. */
export class NativeStack {
  readonly lines: StackLine[] = [];
  readonly exited: Promise<number | null>;
  private readonly waiters = new Set<Waiter>();

  private constructor(
    private readonly runner: ChildProcess,
    readonly portOffset: number,
    private readonly scratch: string,
  ) {
    createInterface({ input: runner.stdout! }).on("line", (raw) => this.onLine(raw));
    createInterface({ input: runner.stderr! }).on("line", (raw) => this.onLine(`stack | ${raw}`));
    // "close" rather than "exit": by then every line it wrote has been read.
    this.exited = once(runner, "close").then(([code]) => code as number | null);
  }

  /** Starts the runner on free ports against the test environment; `settings` go in the .env file it reads. */
  static async start(env: TestEnvironment, settings: Record<string, string>): Promise<NativeStack> {
    const portOffset = await freePortOffset();
    const scratch = mkdtempSync(join(tmpdir(), "savepoint-stack-"));
    const dotenv = join(scratch, ".env");
    writeFileSync(dotenv, Object.entries(settings).map(([name, value]) => `${name}=${value}`).join("\n"));
    const runner = spawn(process.execPath, [RUNNER, "--port-offset", String(portOffset), "--dotenv", dotenv], {
      env: { ...process.env, ...env.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    return new NativeStack(runner, portOffset, scratch);
  }

  get pid(): number {
    return this.runner.pid!;
  }

  /** The URL a service answers on natively (its port moved by the offset). */
  url(service: string, path: string): string {
    const planned = nativePlan({}, { portOffset: this.portOffset }).find((candidate) => candidate.name === service);
    if (!planned?.port) throw new Error(`${service} has no port in docker-compose.yml (none its health check asks)`);
    return `http://127.0.0.1:${planned.port}${path}`;
  }

  /** Process ids of every service process the runner started, by service, in start order. */
  pids(): Map<string, number[]> {
    const pids = new Map<string, number[]>();
    for (const { source, text } of this.lines) {
      const started = /^started: .* \(pid (\d+)\)$/.exec(text);
      if (started) pids.set(source, [...(pids.get(source) ?? []), Number(started[1])]);
    }
    return pids;
  }

  /** Index of the first line (past or future) that matches; fails when the runner exits first. */
  async waitForLine(match: (line: StackLine) => boolean, timeoutMs: number, what: string): Promise<number> {
    const index = () => this.lines.findIndex(match);
    if (index() >= 0) return index();
    let waiter: Waiter | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => {
          waiter = { match, resolve };
          this.waiters.add(waiter);
        }),
        this.exited.then((code) => {
          throw new Error(`${what}: the runner exited (code ${code}) first`);
        }),
        new Promise((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`${what}: not seen within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (error) {
      const tail = this.lines.slice(-30).map((line) => `${line.source} | ${line.text}`);
      throw new Error(`${(error as Error).message}; last output:\n${tail.join("\n")}`, { cause: error });
    } finally {
      clearTimeout(timer);
      if (waiter) this.waiters.delete(waiter);
    }
    return index();
  }

  signal(signal: NodeJS.Signals): void {
    this.runner.kill(signal);
  }

  /** Kills the runner and every service process it started (they run in their own process groups). */
  async destroy(): Promise<void> {
    for (const pids of this.pids().values()) {
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    if (this.runner.exitCode === null && this.runner.signalCode === null) {
      this.runner.kill("SIGKILL");
      await this.exited;
    }
    rmSync(this.scratch, { recursive: true, force: true });
  }

  private onLine(raw: string): void {
    const parsed = /^(\S+)\s+\| ?(.*)$/.exec(raw);
    const line = parsed ? { source: parsed[1]!, text: parsed[2]! } : { source: "stack", text: raw };
    this.lines.push(line);
    for (const waiter of [...this.waiters]) if (waiter.match(line)) waiter.resolve();
  }
}

/** Polls `read` until `accept` holds (for conditions no event announces), failing with the last value after `timeoutMs`. */
export async function pollUntil<T>(read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!accept(value)) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await read();
  }
  return value;
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "0.0.0.0", resolve);
    });
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

/** An offset that moves every port of the stack onto free ones (other tests share this machine). */
async function freePortOffset(): Promise<number> {
  const ports = nativePlan({}).flatMap((service) => (service.port ? [service.port] : []));
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const offset = 20_000 + Math.floor(Math.random() * 20_000);
    const free = await Promise.all(ports.map((port) => portIsFree(port + offset)));
    if (free.every(Boolean)) return offset;
  }
  throw new Error(`no free set of ports for the stack (${ports.join(", ")} + offset)`);
}
