import type { Queue } from "bullmq";

/** The run cannot be re-driven as asked; the message says why and what to do, in one line. */
export class RedriveRefusedError extends Error {
  override name = "RedriveRefusedError";
}

export interface Redriven {
  sessionId: string;
  /** The epoch the re-driven attempt will run under (BullMQ's attemptsStarted keeps growing across re-drives). */
  nextAttempt: number;
}

/**
 * Sends a dead-lettered run back to work: its failed `think` job is moved back to wait, with its attempts
 * and its crash count reset (so it has the whole budget again) but its attempt count kept, so the next
 * attempt runs under a new epoch and resumes from the run's checkpoints like any retry.
 */
export async function redriveRun(queue: Queue, sessionId: string): Promise<Redriven> {
  const job = await queue.getJob(sessionId);
  if (!job) {
    throw new RedriveRefusedError(
      `no think job "${sessionId}" in the reasoning queue (QUEUE_PREFIX ${queue.opts.prefix ?? "bull"}); check the session id and QUEUE_PREFIX (failed jobs are kept for 7 days)`,
    );
  }
  const state = await job.getState();
  if (state !== "failed") {
    throw new RedriveRefusedError(`think job "${sessionId}" is ${state}, not failed: only a dead-lettered run can be re-driven`);
  }
  // BullMQ's reprocessJob keeps the stalled counter ("stc" in the job hash), so without this a re-driven run
  // that had crashed too often would be failed again at its first crash.
  const client = await queue.getBackend().client;
  await client.hset(queue.toKey(sessionId), { stc: 0 });
  await job.retry("failed", { resetAttemptsMade: true });
  return { sessionId, nextAttempt: job.attemptsStarted + 1 };
}
