import type { Job, Queue } from "bullmq";
import { defaultJobOptions, describeIssues, type JobInput } from "./jobs.js";
import { thinkJobIdProblem, thinkPayloadSchema } from "./schemas/reasoning.js";

/** The caller passed a `think` job the reasoner would refuse; nothing was queued. */
export class DecisionRequestError extends Error {
  override name = "DecisionRequestError";
}

/**
 * Queues a `think` job on the `reasoning` queue under `jobId` (see `thinkJobId`), which is also the
 * reasoning session's id. Queuing the same id twice is harmless: BullMQ keeps the first job. The decision
 * is the job's return value (`job.waitUntilFinished(queueEvents)`).
 */
export async function requestDecision(queue: Queue, jobId: string, payload: JobInput<"reasoning", "think">): Promise<Job> {
  if (queue.name !== "reasoning") throw new DecisionRequestError(`think jobs go on the "reasoning" queue, not "${queue.name}"`);
  const idProblem = thinkJobIdProblem(jobId);
  if (idProblem) throw new DecisionRequestError(`invalid think job id: ${idProblem}; use thinkJobId(agentId, n)`);
  const parsed = thinkPayloadSchema.safeParse(payload);
  if (!parsed.success) throw new DecisionRequestError(`invalid think job: ${describeIssues(parsed.error)}`);
  return queue.add("think", parsed.data, { ...defaultJobOptions.reasoning, jobId });
}
