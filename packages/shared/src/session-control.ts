import { Queue, QueueEvents, Worker, type ConnectionOptions, type Job } from "bullmq";
import { z } from "zod";
import { describeIssues, JobRejectedError } from "./jobs.js";
import { SESSION_ID_PATTERN, sessionStatusSchema } from "./schemas/snapshot.js";

/**
 * Asking a running trader to stop its session gracefully, through BullMQ like every other request. Each
 * running session has a control queue of its own, `trader-control.<sessionId>`, with one worker: the trader
 * trading it. A queue per session, because a stop must reach that one process and BullMQ hands a queue's jobs
 * to whichever of its workers asks first; a worker on the queue is also how a caller can tell whether anyone
 * trades the session right now (BullMQ's getWorkers, from CLIENT LIST). Not in the job catalog, whose queues
 * have fixed names.
 */
export const traderControlQueueName = (sessionId: string) => `trader-control.${sessionId}`;

export const stopRequestSchema = z.strictObject({
  sessionId: z.string().regex(SESSION_ID_PATTERN, "must be 1-128 characters from A-Z, a-z, 0-9, '_', '.', '-'"),
  /** Who asked (the console's user, the CLI's), for the trader's log. */
  requestedBy: z.string().min(1).max(200),
  reason: z.string().max(500).optional(),
});
export type StopRequest = z.infer<typeof stopRequestSchema>;

export const stopResultSchema = z.strictObject({
  sessionId: z.string(),
  epoch: z.number().int().min(0),
  /** The status of the final checkpoint: `stopped` (not picked by --resume; --resume-session continues it). */
  status: sessionStatusSchema,
  /** Whether the final checkpoint was confirmed stored before the trader answered. */
  confirmed: z.boolean(),
});
export type StopResult = z.infer<typeof stopResultSchema>;

/**
 * Why a stop was not done: `not_running`, no trader listens on the session's control queue (it is not being
 * traded: stopped, crashed or never started here); `no_answer`, a trader listens but did not take the request
 * in time (the request is withdrawn); `not_confirmed`, the trader took it but did not finish stopping in time
 * (it still stops; its final checkpoint tells when); `failed`, the trader answered with an error.
 */
export type StopRefusal = "not_running" | "no_answer" | "not_confirmed" | "failed";

export class StopRefusedError extends Error {
  override name = "StopRefusedError";
  constructor(
    readonly code: StopRefusal,
    message: string,
  ) {
    super(message);
  }
}

/** Finished stop requests stay this long (the trader's control queue is otherwise empty). */
const KEEP_FINISHED = { age: 24 * 3600, count: 100 };

/**
 * Asks the trader of `sessionId` to stop and waits until it has written its final checkpoint. Refused at once
 * (`not_running`) when no trader listens; past `timeoutMs`, a request nobody took is withdrawn (`no_answer`).
 */
export async function requestStop(
  options: { connection: ConnectionOptions; eventsConnection: ConnectionOptions; prefix: string; timeoutMs: number },
  request: StopRequest,
): Promise<StopResult> {
  const parsed = stopRequestSchema.parse(request);
  const name = traderControlQueueName(parsed.sessionId);
  const queue = new Queue(name, { connection: options.connection, prefix: options.prefix });
  const events = new QueueEvents(name, { connection: options.eventsConnection, prefix: options.prefix });
  try {
    if ((await queue.getWorkers()).length === 0) {
      throw new StopRefusedError("not_running", `no trader is running session ${parsed.sessionId} (none listens on its control queue), so there is nothing to stop`);
    }
    await events.waitUntilReady();
    const job = await queue.add("stop", parsed, { attempts: 1, removeOnComplete: KEEP_FINISHED, removeOnFail: KEEP_FINISHED });
    return await finished(job, events, options.timeoutMs, parsed.sessionId);
  } finally {
    await Promise.allSettled([events.close(), queue.close()]);
  }
}

async function finished(job: Job, events: QueueEvents, timeoutMs: number, sessionId: string): Promise<StopResult> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  try {
    const outcome = await Promise.race([job.waitUntilFinished(events, timeoutMs + 1_000).then((value: unknown) => ({ value }), (error: Error) => ({ error })), timedOut]);
    if (outcome === "timeout") {
      // Withdrawn if still waiting: a request nobody took must not stop a later trader of the session.
      const state = await job.getState();
      if (state === "waiting" || state === "prioritized") {
        await job.remove();
        throw new StopRefusedError("no_answer", `the trader of session ${sessionId} did not take the stop request within ${timeoutMs} ms; the request is withdrawn`);
      }
      throw new StopRefusedError("not_confirmed", `the trader of session ${sessionId} is stopping but did not confirm within ${timeoutMs} ms; its final checkpoint will show when it has`);
    }
    if ("error" in outcome) throw new StopRefusedError("failed", `the trader of session ${sessionId} could not stop: ${outcome.error.message}`);
    const result = stopResultSchema.safeParse(outcome.value);
    if (!result.success) throw new StopRefusedError("failed", `the trader of session ${sessionId} answered the stop with something unexpected (${describeIssues(result.error)})`);
    return result.data;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The trader's side: a worker on its session's control queue that stops the session when asked and answers
 * once the final checkpoint is written. `name` shows in CLIENT LIST (the console's fleet page lists it).
 */
export function listenForStop(
  options: { connection: ConnectionOptions; prefix: string; sessionId: string; name: string },
  stop: (request: StopRequest) => Promise<StopResult>,
): Worker {
  return new Worker(
    traderControlQueueName(options.sessionId),
    async (job: Job) => {
      if (job.name !== "stop") throw new JobRejectedError("unknown_job", `unknown job name "${job.name}" on ${traderControlQueueName(options.sessionId)}; expected stop`);
      const parsed = stopRequestSchema.safeParse(job.data);
      if (!parsed.success) throw new JobRejectedError("invalid", `invalid stop job: ${describeIssues(parsed.error)}`);
      if (parsed.data.sessionId !== options.sessionId) {
        throw new JobRejectedError("invalid", `stop job for session ${parsed.data.sessionId} on the control queue of ${options.sessionId}`);
      }
      return stop(parsed.data);
    },
    { connection: options.connection, prefix: options.prefix, name: options.name, concurrency: 1 },
  );
}
