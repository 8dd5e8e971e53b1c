export interface MicroBatcherOptions {
  /** Most items handed to one flush. */
  maxBatchSize: number;
  /** Most flushes running at once; items arriving meanwhile wait and form the next batch. */
  maxConcurrentFlushes: number;
}

/** One result per item, in order; an Error fails only that item. */
export type FlushFn<I, O> = (items: I[]) => Promise<Array<O | Error>>;

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: Error) => void;
}

/**
 * Groups items submitted close together into batches. Nothing waits on a timer: an item submitted while no
 * flush is running goes out at once, alone; items that arrive while a flush is busy are sent together as soon
 * as a flush slot is free (on the next turn of the event loop, or when one finishes). So latency stays at one
 * flush when idle, and batches grow with load.
 */
export class MicroBatcher<I, O> {
  private readonly waiting: Array<Pending<I, O>> = [];
  private flushing = 0;
  private scheduled = false;

  constructor(
    private readonly flush: FlushFn<I, O>,
    private readonly options: MicroBatcherOptions,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.flushing === 0) {
        // Idle: waiting for company would only add latency; whatever comes during this flush forms the next batch.
        this.drain();
      } else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.drain();
        });
      }
    });
  }

  /** Items submitted and not yet answered. */
  get pending(): number {
    return this.waiting.length;
  }

  private drain(): void {
    while (this.flushing < this.options.maxConcurrentFlushes && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.options.maxBatchSize);
      this.flushing += 1;
      void this.run(batch).finally(() => {
        this.flushing -= 1;
        this.drain();
      });
    }
  }

  private async run(batch: Array<Pending<I, O>>): Promise<void> {
    try {
      const results = await this.flush(batch.map((entry) => entry.item));
      batch.forEach((entry, index) => {
        const result = results[index];
        if (result instanceof Error) entry.reject(result);
        else if (result === undefined) entry.reject(new Error("batch flush returned no result for this item"));
        else entry.resolve(result);
      });
    } catch (error) {
      for (const entry of batch) entry.reject(error as Error);
    }
  }
}
