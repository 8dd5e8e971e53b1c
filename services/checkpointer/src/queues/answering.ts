import { UnrecoverableError, type Job, type Processor } from "bullmq";
import { inboxOf, JobRejectedError, type AnswerSender } from "@savepoint/shared";

/** Whether this failure ends the job: a refusal, or a fault on its last attempt. */
function isFinal(job: Job, error: unknown): boolean {
  return error instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/**
 * Wraps a processor so that a job naming a client's inbox gets its answer there (replies.ts): the result once
 * the processor has finished (for a snapshot, after its commit), or the refusal's code and message once the job
 * has failed for good. A job nobody waits for on the reply path keeps BullMQ's return value instead, for
 * producers that built it by hand and wait with QueueEvents.
 */
export function answering<T>(answers: AnswerSender, processor: (job: Job<T>, token?: string) => Promise<unknown>): Processor<T> {
  // No third parameter (the abort signal): BullMQ creates an AbortController for every job of a processor that takes one.
  return async (job, token) => {
    let result: unknown;
    try {
      result = await processor(job, token);
    } catch (error) {
      if (inboxOf(job.id) && isFinal(job, error)) {
        const code = error instanceof JobRejectedError ? error.code : "failed";
        await answers.answer(job, { code, message: (error as Error).message });
      }
      throw error;
    }
    if (!inboxOf(job.id)) return result;
    await answers.answer(job, { result });
    // Answered on the reply path: BullMQ need not copy the result into the job and its events stream too.
    return null;
  };
}
