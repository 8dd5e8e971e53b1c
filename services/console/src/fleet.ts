import { Queue } from "bullmq";
import { allSnapshotQueues, createRedisConnection, isCluster, QUEUE_NAMES, type QueueAddress, type RedisConnection, type RedisTarget } from "@savepoint/shared";
import type { Cluster, Redis } from "ioredis";
import type { ConsoleStore, FleetCounts } from "./store.js";

/** The job states a queue's depth is told in (BullMQ's names). */
export const JOB_STATES = ["waiting", "prioritized", "active", "delayed", "failed", "completed"] as const;

export interface QueueDepth {
  name: string;
  prefix: string;
  counts: Record<(typeof JOB_STATES)[number], number>;
  workers: number;
}

/** A BullMQ worker connection, from CLIENT LIST: its queue, its name (when it gave one), address and age. */
export interface FleetWorker {
  queue: string;
  name: string | null;
  address: string;
  ageSeconds: number;
  idleSeconds: number;
}

export interface DeadLetter {
  sessionId: string;
  failedReason: string;
  failedAt: string | null;
  attemptsStarted: number;
}

export interface FleetView extends FleetCounts {
  /** Every fixed queue (the snapshot queues as this layout has them), with its depth and its workers. */
  queues: QueueDepth[];
  /** Every BullMQ worker connected under this QUEUE_PREFIX, trader control queues included (one per running trader). */
  workers: FleetWorker[];
  /** The reasoning queue's failed think jobs, newest first: the runs a re-drive can send back to work. */
  deadLetters: DeadLetter[];
  deadLettersTotal: number;
}

/** Most dead-lettered runs the page lists. */
const DEAD_LETTERS_SHOWN = 50;

/**
 * The fleet: what Redis says (queue depths, workers, dead letters) beside what Postgres says (sessions per
 * state, resumed vs fresh, checkpoints per second). Read-only on both: job counts, CLIENT LIST, failed jobs.
 */
export class FleetReader {
  private readonly connection: RedisConnection;
  private readonly queues: Array<{ address: QueueAddress; queue: Queue }>;

  constructor(private readonly options: { redis: RedisTarget; queuePrefix: string; store: ConsoleStore }) {
    this.connection = createRedisConnection(options.redis, "producer", "console-fleet");
    this.connection.on("error", () => undefined);
    const sharded = isCluster(options.redis);
    const addresses: QueueAddress[] = [
      ...allSnapshotQueues(options.queuePrefix, sharded),
      ...QUEUE_NAMES.filter((name) => name !== "checkpoints").map((name) => ({ name, prefix: options.queuePrefix })),
    ];
    this.queues = addresses.map((address) => {
      const queue = new Queue(address.name, { connection: this.connection, prefix: address.prefix });
      queue.on("error", () => undefined);
      return { address, queue };
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.queues.map(({ queue }) => queue.close()));
    this.connection.disconnect();
  }

  async read(): Promise<FleetView> {
    const [counts, workers, queues, dead] = await Promise.all([
      this.options.store.fleetCounts(),
      this.workers(),
      Promise.all(this.queues.map(async ({ address, queue }) => ({ address, counts: await queue.getJobCounts(...JOB_STATES) }))),
      this.deadLetters(),
    ]);
    return {
      ...counts,
      queues: queues.map(({ address, counts: byState }) => ({
        name: address.name,
        prefix: address.prefix,
        counts: Object.fromEntries(JOB_STATES.map((state) => [state, byState[state] ?? 0])) as QueueDepth["counts"],
        workers: workers.filter((worker) => worker.queue === address.name).length,
      })),
      workers,
      ...dead,
    };
  }

  private async deadLetters(): Promise<{ deadLetters: DeadLetter[]; deadLettersTotal: number }> {
    const reasoning = this.queues.find(({ address }) => address.name === "reasoning")!.queue;
    const [jobs, total] = await Promise.all([reasoning.getFailed(0, DEAD_LETTERS_SHOWN - 1), reasoning.getFailedCount()]);
    return {
      deadLetters: jobs.map((job) => ({
        sessionId: job.id ?? "?",
        failedReason: job.failedReason,
        failedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
        attemptsStarted: job.attemptsStarted,
      })),
      deadLettersTotal: total,
    };
  }

  /**
   * BullMQ names each worker's connection `<prefix>:<base64 of the queue>` (`:w:<worker name>` after it when
   * the worker has a name); queue-event listeners end in `:qe`, producers set none. CLIENT LIST on every
   * master holds them all.
   */
  private async workers(): Promise<FleetWorker[]> {
    const nodes: Redis[] = isCluster(this.options.redis) ? (this.connection as Cluster).nodes("master") : [this.connection as Redis];
    const lists = await Promise.all(nodes.map((node) => node.call("CLIENT", "LIST") as Promise<string>));
    const prefixes = [...new Set([this.options.queuePrefix, ...this.queues.map(({ address }) => address.prefix)])].map((prefix) => `${prefix}:`);
    const workers: FleetWorker[] = [];
    for (const line of lists.join("\n").split(/\r?\n/)) {
      const fields: Record<string, string> = Object.fromEntries(line.split(" ").map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
      const name = fields.name ?? "";
      const prefix = prefixes.find((candidate) => name.startsWith(candidate));
      if (!prefix) continue;
      const [encoded, marker, ...named] = name.slice(prefix.length).split(":");
      if (!encoded || marker === "qe" || (marker !== undefined && marker !== "w")) continue;
      const queue = Buffer.from(encoded, "base64").toString("utf8");
      if (!/^[A-Za-z0-9_.-]+$/.test(queue)) continue;
      workers.push({
        queue,
        name: marker === "w" ? named.join(":") : null,
        address: fields.addr ?? "?",
        ageSeconds: Number(fields.age ?? 0),
        idleSeconds: Number(fields.idle ?? 0),
      });
    }
    return workers.sort((a, b) => a.queue.localeCompare(b.queue) || (a.name ?? "").localeCompare(b.name ?? ""));
  }
}
