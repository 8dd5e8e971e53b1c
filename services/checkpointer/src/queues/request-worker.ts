import type { ConnectionOptions, Worker } from "bullmq";
import { createCatalogWorker, type AnswerSender, type Logger } from "@savepoint/shared";
import type { CheckpointerMetrics } from "../metrics.js";
import type { CheckpointStore } from "../store/checkpoint-store.js";
import { answering } from "./answering.js";

export interface RequestWorkerOptions {
  connection: ConnectionOptions;
  prefix: string;
  concurrency: number;
  store: CheckpointStore;
  answers: AnswerSender;
  metrics: CheckpointerMetrics;
  logger: Logger;
}

/**
 * Consumes `checkpoint-requests`: each job's answer goes to the inbox its id names, or is its return value for
 * a job built by hand.
 */
export function createRequestWorker({ connection, prefix, concurrency, store, answers, metrics, logger }: RequestWorkerOptions): Worker {
  const worker = createCatalogWorker(
    "checkpoint-requests",
    {
      latest: (query) =>
        "sessionId" in query
          ? store.latestBySession(query.service, query.sessionId)
          : store.latestByOwner(query.service, query.ownerId, query.statuses),
      history: (request) => store.history(request.service, request.sessionId, request.limit, request.before),
      stats: (request) => store.stats(request),
      cleanup: async (request) => {
        const deleted = await store.cleanup(request);
        logger.info({ ...request, deleted }, "cleanup on request");
        return { deleted };
      },
    },
    { connection, prefix, concurrency, wrap: (processor) => answering(answers, processor) },
  );
  worker.on("completed", (job) => metrics.requests.inc({ type: job.name, outcome: "answered" }));
  worker.on("failed", (job, error) => {
    metrics.requests.inc({ type: job?.name ?? "unknown", outcome: "failed" });
    logger.warn({ jobId: job?.id, type: job?.name, problem: error.message }, "state request failed");
  });
  worker.on("error", (error) => logger.error({ err: error }, "request worker error"));
  return worker;
}
