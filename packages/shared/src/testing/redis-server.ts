import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RedisServerOptions {
  /** Extra `redis-server` arguments, e.g. ["--requirepass", "secret"]. */
  args?: string[];
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A Redis of a test's own (`redis-server` on a free port, in a directory of its own, AOF with fsync on every
 * write, as the stack runs it), so the test can kill it by pid and start it again on the same port with the
 * same data, without touching the Redis other tests share.
 */
export class RedisServer {
  private process: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly args: string[],
  ) {}

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), await mkdtemp(join(tmpdir(), "savepoint-redis-")), options.args ?? []);
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Starts the server again (after `kill`), on the same port and with the data it had persisted; resolves once it accepts connections. */
  async restart(): Promise<void> {
    if (this.process) throw new Error(`redis-server on port ${this.port} is still running (pid ${this.process.pid})`);
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--dir", this.dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always", ...this.args];
    const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    this.process = child;
    const output: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output.push(chunk.toString("utf8"));
        if (output.join("").includes("Ready to accept connections")) {
          child.stdout.off("data", onData);
          resolve();
        }
      };
      child.stdout.on("data", onData);
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`redis-server on port ${this.port} exited with code ${code} before it was ready:\n${output.join("")}`)));
    });
    child.stdout.resume();
    child.stderr.resume();
  }

  /** SIGKILLs the server by pid (no shutdown, no final write) and resolves once it is gone. */
  async kill(): Promise<void> {
    const child = this.process;
    if (!child) return;
    this.process = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    process.kill(child.pid!, "SIGKILL");
    await exited;
  }

  /** Kills the server and deletes its data. */
  async stop(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}
