import type { Queue } from "bullmq";

/**
 * Why a run cannot be re-driven: `no_job`, its think job is not in the queue (wrong id or QUEUE_PREFIX, or
 * removed after the 7 days failed jobs are kept); `not_dead_lettered`, the job is not failed (waiting, running,
 * completed), so there is nothing to re-drive.
 */
export type RedriveRefusal = "no_job" | "not_dead_lettered";

/** The run cannot be re-driven as asked; `code` says why, the message what to do, in one line. */
export class RedriveRefusedError extends Error {
  override name = "RedriveRefusedError";
  constructor(
    readonly code: RedriveRefusal,
    message: string,
  ) {
    super(message);
  }
}

export interface Redriven {
  sessionId: string;
  /** The epoch the re-driven attempt will run under (BullMQ's attemptsStarted keeps growing across re-drives). */
  nextAttempt: number;
}

/**
 * Sends a dead-lettered run back to work: its failed `think` job is moved back to wait, with its attempts
 * and its crash count reset (so it has the whole budget again) but its attempt count kept, so the next
 * attempt runs under a new epoch and resumes from the run's checkpoints like any retry. One implementation
 * for every caller: the reasoner's `npm run redrive`, the console and the `savepoint` CLI through it.
 */
export async function redriveRun(queue: Queue, sessionId: string): Promise<Redriven> {
  if (queue.name !== "reasoning") throw new Error(`think jobs are re-driven on the "reasoning" queue, not "${queue.name}"`);
  const job = await queue.getJob(sessionId);
  if (!job) {
    throw new RedriveRefusedError(
      "no_job",
      `no think job "${sessionId}" in the reasoning queue (QUEUE_PREFIX ${queue.opts.prefix ?? "bull"}); check the session id and QUEUE_PREFIX (failed jobs are kept for 7 days)`,
    );
  }
  const state = await job.getState();
  if (state !== "failed") {
    throw new RedriveRefusedError("not_dead_lettered", `think job "${sessionId}" is ${state}, not failed: only a dead-lettered run can be re-driven`);
  }
  // BullMQ's reprocessJob keeps the stalled counter ("stc" in the job hash), so without this a re-driven run
  // that had crashed too often would be failed again at its first crash.
  const client = await queue.getBackend().client;
  await client.hset(queue.toKey(sessionId), { stc: 0 });
  await job.retry("failed", { resetAttemptsMade: true });
  return { sessionId, nextAttempt: job.attemptsStarted + 1 };
}
