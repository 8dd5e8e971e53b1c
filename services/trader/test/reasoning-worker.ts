import { createCatalogWorker, type Decision, type RedisConnection, type ThinkPayload } from "@savepoint/shared";
import type { TestEnvironment } from "@savepoint/shared/testing";

/**
 * A stand-in for the reasoner: a real BullMQ worker on the `reasoning` queue, speaking the job catalog's
 * `think` contract, answering from a script of decisions. On `env.redisUrl`, or on `connection` (a worker
 * connection, e.g. to a cluster; the caller closes it).
 */
export function reasoningWorker(
  env: Pick<TestEnvironment, "redisUrl" | "queuePrefix">,
  decide: (payload: ThinkPayload, run: number, jobId: string) => Decision,
  connection: RedisConnection | { url: string; maxRetriesPerRequest: null } = { url: env.redisUrl, maxRetriesPerRequest: null },
) {
  const jobs: Array<{ id: string; payload: ThinkPayload }> = [];
  const worker = createCatalogWorker(
    "reasoning",
    {
      think: async (payload, job) => {
        jobs.push({ id: job.id!, payload });
        const decision = decide(payload, jobs.length, job.id!);
        return { ...decision, sessionId: job.id!, iterations: 3, resumed: false, resumedAtIteration: 0, modelCalls: 3, modelCallsSaved: 0, limitReached: false };
      },
    },
    { connection, prefix: env.queuePrefix },
  );
  // A test that kills Redis sees the outage through the trader; the worker reconnects by itself.
  worker.on("error", () => undefined);
  return { worker, jobs };
}
