import type { Queue } from "bullmq";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Everything the checkpointer reports on /metrics. */
export class CheckpointerMetrics {
  readonly persisted: Counter<"outcome">;
  readonly rejected: Counter<"reason">;
  readonly batchSize: Histogram;
  readonly persistSeconds: Histogram;
  readonly requests: Counter<"type" | "outcome">;
  readonly databaseUp: Gauge;

  constructor(registry: Registry, queues: Queue[]) {
    this.persisted = new Counter({
      name: "savepoint_checkpoints_persisted_total",
      help: "Snapshot jobs completed, by outcome: stored now, or a duplicate of one already stored",
      labelNames: ["outcome"],
      registers: [registry],
    });
    this.rejected = new Counter({
      name: "savepoint_checkpoints_rejected_total",
      help: "Snapshot jobs refused without retry, by refusal code (invalid, too_large, unstorable, stale_epoch, ...)",
      labelNames: ["reason"],
      registers: [registry],
    });
    this.batchSize = new Histogram({
      name: "savepoint_checkpoint_batch_size",
      help: "Distinct snapshots written per Postgres transaction",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers: [registry],
    });
    this.persistSeconds = new Histogram({
      name: "savepoint_checkpoint_persist_seconds",
      help: "Time to commit one batch of snapshots to Postgres",
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    this.requests = new Counter({
      name: "savepoint_checkpoint_requests_total",
      help: "State requests answered, by type and outcome",
      labelNames: ["type", "outcome"],
      registers: [registry],
    });
    this.databaseUp = new Gauge({
      name: "savepoint_database_up",
      help: "1 while Postgres answers, 0 during an outage",
      registers: [registry],
    });
    this.databaseUp.set(1);
    new Gauge({
      name: "savepoint_queue_jobs",
      help: "Jobs in each queue by state, read from Redis at scrape time",
      labelNames: ["queue", "state"],
      registers: [registry],
      async collect() {
        // While Redis is unreachable the last known depths stay; /readyz reports the outage.
        const counts = await Promise.all(
          queues.map(async (queue) => [queue.name, await queue.getJobCounts("wait", "active", "delayed", "failed", "prioritized")] as const),
        ).catch(() => []);
        for (const [queue, byState] of counts) {
          for (const [state, count] of Object.entries(byState)) this.set({ queue, state }, count);
        }
      },
    });
  }
}
