import type { ConnectionOptions, Queue, Worker } from "bullmq";
import { createCatalogWorker, defaultJobOptions, type Logger, type MaintenanceRequest } from "@savepoint/shared";
import type { CheckpointStore } from "../store/checkpoint-store.js";

export const RETENTION_SCHEDULER_ID = "checkpoint-retention";

/**
 * The one place the retention schedule is declared. Every checkpointer upserts the same scheduler id, so
 * however many run there is one schedule, and a changed interval or setting replaces the old one.
 */
export async function scheduleRetention(queue: Queue, everyMs: number, request: MaintenanceRequest): Promise<void> {
  await queue.upsertJobScheduler(
    RETENTION_SCHEDULER_ID,
    { every: everyMs },
    { name: "cleanup", data: request, opts: defaultJobOptions["checkpoint-maintenance"] },
  );
}

/** Consumes `checkpoint-maintenance`: expiry of long-finished sessions, then retention (see store/retention.ts). */
export function createMaintenanceWorker(options: {
  connection: ConnectionOptions;
  prefix: string;
  store: CheckpointStore;
  logger: Logger;
}): Worker {
  const { store, logger } = options;
  const worker = createCatalogWorker(
    "checkpoint-maintenance",
    {
      cleanup: async (request) => {
        const result = await store.runRetention(request);
        logger.info({ ...request, ...result }, "scheduled cleanup done");
        return result;
      },
    },
    { connection: options.connection, prefix: options.prefix, concurrency: 1 },
  );
  worker.on("failed", (job, error) => logger.error({ jobId: job?.id, err: error }, "scheduled cleanup failed"));
  worker.on("error", (error) => logger.error({ err: error }, "maintenance worker error"));
  return worker;
}
