import type { Job, JobJson } from "bullmq";
import { bullmq } from "./commonjs.js";

/**
 * A job whose data is already JSON text: it goes to Redis as it is. BullMQ would JSON.stringify the data
 * again, which for a string quotes and escapes it, and for an object serializes it a second time after the
 * producer did to check its size (an 8 KB state took 50-80 µs per stringify).
 */
class TextDataJob extends bullmq.Job<string> {
  override asJSON(): JobJson {
    const text = this.data;
    this.data = undefined as unknown as string; // serialized by BullMQ as "{}", replaced below
    try {
      return { ...super.asJSON(), data: text };
    } finally {
      this.data = text;
    }
  }
}

/**
 * A Queue whose jobs' data is JSON text the producer serialized, stored as Redis holds any job's data: a
 * worker reads the same job whichever way it was added (the producer's side of TextDataWorker).
 */
export class TextDataQueue extends bullmq.Queue<string> {
  protected override get Job(): typeof Job {
    return TextDataJob as typeof Job;
  }
}
