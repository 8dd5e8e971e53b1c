import type { Job, JobJson, Processor, Worker, WorkerOptions } from "bullmq";
import { bullmq } from "./commonjs.js";
import type { z } from "zod";
import { describeIssues, jobCatalog, JobRejectedError, type JobName, type JobPayload, type JobResult, type QueueName } from "./jobs.js";

/** One handler per job name of queue Q, each given its payload parsed by the catalog's schema. */
export type JobHandlers<Q extends QueueName> = {
  [J in JobName<Q>]: (payload: JobPayload<Q, J>, job: Job) => Promise<JobResult<Q, J>>;
};

/**
 * One handler per job name of queue Q, each given the job's data as the JSON text Redis held, to decode
 * itself against the catalog's schema (the checkpointer's snapshots, whose state goes to Postgres unparsed).
 */
export type TextJobHandlers<Q extends QueueName> = {
  [J in JobName<Q>]: (text: string, job: Job<string>) => Promise<JobResult<Q, J>>;
};

/**
 * A Worker whose jobs keep their data as the JSON text Redis held (BullMQ would parse it into objects): the
 * worker class of `createCatalogWorker`'s text handlers, or of a subclass of it.
 */
export class TextDataWorker extends bullmq.Worker<string> {
  protected override createJob(data: JobJson, jobId: string): Job<string> {
    const job = super.createJob({ ...data, data: "null" }, jobId);
    job.data = data.data;
    return job;
  }
}

type TextWorkerClass<W extends Worker<string>> = new (name: string, processor: Processor<string>, options: WorkerOptions) => W;

export interface CatalogWorkerOptions extends WorkerOptions {
  /** The BullMQ queue consumed, when it is one of the queues the catalog's queue is spread over (`checkpoints-confirmed-3`). */
  queueName?: string;
  /** Wraps the processor built from the handlers (the checkpointer answers on the reply path around it). */
  wrap?: <T>(processor: Processor<T>) => Processor<T>;
}

/**
 * The one way a service consumes a queue of the job catalog (docs/architecture.md, "Queues"): a Worker whose
 * processor has exactly one handler per job name of the queue. A job name without a handler, or a handler for
 * a job name the catalog does not have, throws here, so the service refuses to boot. At run time an unknown
 * job name, or (for parsed handlers) a payload that does not parse, fails that job at once, without retries,
 * with its refusal code.
 *
 * With `text`, a TextDataWorker class (or subclass), the handlers get the data as text instead.
 */
export function createCatalogWorker<Q extends QueueName, W extends TextDataWorker>(
  queue: Q,
  handlers: TextJobHandlers<Q>,
  options: CatalogWorkerOptions & { text: TextWorkerClass<W> },
): W;
export function createCatalogWorker<Q extends QueueName>(queue: Q, handlers: JobHandlers<Q>, options: CatalogWorkerOptions): Worker;
export function createCatalogWorker(
  queue: QueueName,
  handlers: Record<string, (data: never, job: Job) => Promise<unknown>>,
  { queueName = queue, wrap = (processor) => processor, text, ...workerOptions }: CatalogWorkerOptions & { text?: TextWorkerClass<Worker<string>> },
): Worker {
  const contracts: Record<string, { payload: z.ZodType }> = jobCatalog[queue];
  const expected = Object.keys(contracts).sort();
  const provided = Object.keys(handlers).sort();
  if (expected.join() !== provided.join()) {
    throw new Error(`queue "${queue}" needs exactly one handler per job name [${expected.join(", ")}]; got [${provided.join(", ")}]`);
  }
  const byName = handlers as Record<string, (data: unknown, job: Job) => Promise<unknown>>;
  // No abort signal parameter: BullMQ creates an AbortController for every job of a processor that takes one.
  const processor: Processor = async (job: Job) => {
    const contract = contracts[job.name];
    const handle = byName[job.name];
    if (!contract || !handle) {
      throw new JobRejectedError("unknown_job", `unknown job name "${job.name}" on queue "${queueName}"; expected one of: ${expected.join(", ")}`);
    }
    if (text) return handle(job.data, job);
    const parsed = contract.payload.safeParse(job.data);
    if (!parsed.success) throw new JobRejectedError("invalid", `invalid ${job.name} job: ${describeIssues(parsed.error)}`);
    return handle(parsed.data, job);
  };
  return text ? new text(queueName, wrap(processor), workerOptions) : new bullmq.Worker(queueName, wrap(processor), workerOptions);
}
