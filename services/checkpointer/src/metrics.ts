import type { Queue } from "bullmq";
import { MetricDeclarations } from "@savepoint/shared";
import { Gauge, type Counter, type Histogram, type Registry } from "prom-client";

/** Everything the checkpointer reports on /metrics. */
export class CheckpointerMetrics {
  readonly persisted: Counter<"outcome">;
  readonly rejected: Counter<"reason">;
  readonly batchSize: Histogram;
  readonly persistSeconds: Histogram;
  readonly requests: Counter<"type" | "outcome">;
  readonly databaseUp: Gauge;

  constructor(registry: Registry, queues: Queue[]) {
    const declare = new MetricDeclarations(registry);
    this.persisted = declare.counter("savepoint_checkpoints_persisted_total", "Snapshot jobs completed, by outcome: stored now, or a duplicate of one already stored", ["outcome"]);
    this.rejected = declare.counter(
      "savepoint_checkpoints_rejected_total",
      "Snapshot jobs refused without retry, by refusal code (invalid, too_large, unstorable, stale_epoch, ...)",
      ["reason"],
    );
    this.batchSize = declare.histogram("savepoint_checkpoint_batch_size", "Distinct snapshots written per Postgres transaction", [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
    this.persistSeconds = declare.histogram(
      "savepoint_checkpoint_persist_seconds",
      "Time to commit one batch of snapshots to Postgres",
      [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    );
    this.requests = declare.counter("savepoint_checkpoint_requests_total", "State requests answered, by type and outcome", ["type", "outcome"]);
    this.databaseUp = declare.gauge("savepoint_database_up", "1 while Postgres answers, 0 during an outage");
    this.databaseUp.set(1);
    // Read from Redis at scrape time (collect), so declared with prom-client's own constructor.
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
