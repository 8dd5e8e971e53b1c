import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { Job, type Queue } from "bullmq";

type AdapterOptions = ConstructorParameters<typeof BullMQAdapter>[1];
type JobStatuses = Parameters<BullMQAdapter["getJobs"]>[0];

/**
 * Bull Board's BullMQ adapter, except that a job whose stored fields are not valid JSON (written by hand
 * or by a broken producer) is shown with its stored text instead of failing its page: BullMQ parses
 * `data`, `opts`, `progress` and `parent` as it reads a job and throws a SyntaxError on bad text, which
 * would answer 500 for the job and for every list page that holds it (failed jobs are kept for days).
 */
export class TolerantBullMQAdapter extends BullMQAdapter {
  constructor(
    private readonly source: Queue,
    options?: AdapterOptions,
  ) {
    super(source, options);
  }

  override async getJob(id: string): Promise<Job | undefined> {
    try {
      return (await super.getJob(id)) ?? undefined;
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      return readUnparseable(this.source, id, error);
    }
  }

  override async getJobs(statuses: JobStatuses, start?: number, end?: number): Promise<Job[]> {
    try {
      return (await super.getJobs(statuses, start, end)) as Job[];
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      // One job spoilt the page: read the page's jobs one by one, so only that one is shown as stored.
      // BullMQ 6 keeps no separate paused list (a paused queue's jobs stay waiting), so there is none to read.
      const types = statuses.filter((status): status is Exclude<typeof status, "paused"> => status !== "paused");
      const ids = await this.source.getRanges(types, start, end);
      const jobs = await Promise.all(ids.map((id) => this.getJob(id)));
      return jobs.filter((job): job is Job => job !== undefined);
    }
  }
}

/** The job as its raw Redis hash has it; `data` says why it could not be read and holds the stored text. */
async function readUnparseable(queue: Queue, id: string, error: SyntaxError): Promise<Job | undefined> {
  const client = await queue.getBackend().client;
  const stored = await client.hgetall(queue.toKey(id));
  if (Object.keys(stored).length === 0) return undefined;
  const data = {
    unparseable: `this job's stored fields are not valid JSON (${error.message}); shown as stored`,
    stored: { data: stored.data, opts: stored.opts, progress: stored.progress, parent: stored.parent },
  };
  const job = new Job(queue, stored.name ?? "", data, {}, id);
  job.timestamp = Number(stored.timestamp) || 0;
  job.attemptsMade = Number(stored.atm ?? stored.attemptsMade ?? 0);
  if (stored.processedOn) job.processedOn = Number(stored.processedOn);
  if (stored.finishedOn) job.finishedOn = Number(stored.finishedOn);
  if (stored.failedReason) job.failedReason = stored.failedReason;
  return job;
}
