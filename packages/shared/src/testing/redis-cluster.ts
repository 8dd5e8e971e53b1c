import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { RedisServer } from "./redis-server.js";

const run = promisify(execFile);

/**
 * A local Redis Cluster of `masters` masters and no replicas, each a RedisServer of its own (its own port,
 * directory, AOF and cluster config), so a test can kill one master by pid and start it again with its slots.
 */
export class RedisCluster {
  private constructor(readonly nodes: RedisServer[]) {}

  static async start(masters = 3): Promise<RedisCluster> {
    const nodes: RedisServer[] = [];
    try {
      for (let index = 0; index < masters; index++) {
        nodes.push(await RedisServer.start({ args: ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"] }));
      }
      await run("redis-cli", ["--cluster", "create", ...nodes.map((node) => `127.0.0.1:${node.port}`), "--cluster-replicas", "0", "--cluster-yes"]);
      const cluster = new RedisCluster(nodes);
      await cluster.waitUntilHealthy();
      return cluster;
    } catch (error) {
      await Promise.all(nodes.map((node) => node.stop()));
      throw error;
    }
  }

  /** `REDIS_CLUSTER_NODES` for this cluster. */
  get nodesEnv(): string {
    return this.nodes.map((node) => `127.0.0.1:${node.port}`).join(",");
  }

  get clusterNodes(): Array<{ host: string; port: number }> {
    return this.nodes.map((node) => ({ host: "127.0.0.1", port: node.port }));
  }

  /** Resolves once every node reports the cluster ok (Redis has no event for it, so this asks every 100 ms). */
  async waitUntilHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(this.nodes.map((node) => clusterState(node.port)));
      if (states.every((state) => state === "ok")) return;
      if (Date.now() > deadline) throw new Error(`Redis Cluster not healthy within ${timeoutMs} ms: ${states.join(", ")}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
  }
}

async function clusterState(port: number): Promise<string> {
  const redis = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on("error", () => undefined);
  try {
    await redis.connect();
    const info = await redis.cluster("INFO");
    return /cluster_state:(\w+)/.exec(info)?.[1] ?? "unknown";
  } catch (error) {
    return `unreachable (${(error as Error).message})`;
  } finally {
    redis.disconnect();
  }
}
