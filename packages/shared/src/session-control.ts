import type { ConnectionOptions, Job, QueueEvents, Worker } from "bullmq";
import { bullmq } from "./commonjs.js";
import { createCatalogWorker } from "./catalog-worker.js";
import { defaultJobOptions, describeIssues, JobRejectedError } from "./jobs.js";
import { stopRequestSchema, stopResultSchema, type StopRequest, type StopResult } from "./schemas/session-control.js";

/**
 * Asking a running trader to stop its session gracefully, through BullMQ like every other request. Each
 * running session has a control queue of its own, `trader-control.<sessionId>`, with one worker: the trader
 * trading it. A queue per session, because a stop must reach that one process and BullMQ hands a queue's jobs
 * to whichever of its workers asks first; a worker on the queue is also how a caller can tell whether anyone
 * trades the session right now (BullMQ's getWorkers, from CLIENT LIST). The job catalog's `trader-control`
 * queue: one payload and result type, and the worker built by createCatalogWorker like every other.
 */
export const traderControlQueueName = (sessionId: string) => `trader-control.${sessionId}`;

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
  const queue = new bullmq.Queue(name, { connection: options.connection, prefix: options.prefix });
  const events = new bullmq.QueueEvents(name, { connection: options.eventsConnection, prefix: options.prefix });
  try {
    if ((await queue.getWorkers()).length === 0) {
      throw new StopRefusedError("not_running", `no trader is running session ${parsed.sessionId} (none listens on its control queue), so there is nothing to stop`);
    }
    await events.waitUntilReady();
    const job = await queue.add("stop", parsed, defaultJobOptions["trader-control"]);
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
  return createCatalogWorker(
    "trader-control",
    {
      stop: async (request) => {
        if (request.sessionId !== options.sessionId) {
          throw new JobRejectedError("invalid", `stop job for session ${request.sessionId} on the control queue of ${options.sessionId}`);
        }
        return stop(request);
      },
    },
    { connection: options.connection, prefix: options.prefix, name: options.name, concurrency: 1, queueName: traderControlQueueName(options.sessionId) },
  );
}
