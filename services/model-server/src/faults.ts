import { z } from "zod";

/** An error (or a stall) the next matching call gets instead of an answer. */
export const faultSchema = z
  .strictObject({
    /** HTTP status to answer with, in the API's error shape. */
    status: z.union([z.literal(429), z.literal(500), z.literal(529)]).optional(),
    /**
     * With `status`: a streamed call (`stream: true`) gets the error as an `error` event after the answer has
     * begun (`message_start` and part of the first block), as the API reports errors that arise mid-stream; a
     * call that is not streamed gets it as the HTTP status, as without this flag.
     */
    midStream: z.boolean().default(false),
    /** Hold the call this long before answering (normally), to make the client time out. */
    hangMs: z.number().int().min(1).max(600_000).optional(),
    /**
     * With `hangMs`: a streamed call stalls for `hangMs` just before this event, after the ones before it were
     * sent (a connection that goes quiet mid-answer); without it, a streamed call is held before its first byte.
     * A call that is not streamed is held before its answer either way.
     */
    stallBefore: z.enum(["content_block_start", "content_block_delta", "message_delta", "message_stop"]).optional(),
    /** How many calls get it. */
    count: z.number().int().min(1).max(10_000).default(1),
    retryAfterMs: z.number().int().min(0).optional(),
    retryAfterSeconds: z.number().min(0).optional(),
    /** Only calls of this session (metadata.user_id); any call when absent. */
    sessionId: z.string().optional(),
  })
  .refine((fault) => (fault.status === undefined) !== (fault.hangMs === undefined), "give exactly one of status or hangMs")
  .refine((fault) => !fault.midStream || fault.status !== undefined, "midStream needs a status")
  .refine((fault) => fault.stallBefore === undefined || fault.hangMs !== undefined, "stallBefore needs hangMs");
export type Fault = z.infer<typeof faultSchema>;
/** A fault as given, defaults left out. */
export type FaultRequest = z.input<typeof faultSchema>;

/** Faults waiting for calls, first in first out. */
export class FaultQueue {
  private readonly pending: Fault[] = [];

  /** Queues a fault (checked like one posted to the admin route; a bad one throws). */
  add(fault: FaultRequest): void {
    this.pending.push(faultSchema.parse(fault));
  }

  /** The fault the call of `sessionId` gets, if any (one use of it). */
  take(sessionId: string): Fault | undefined {
    const index = this.pending.findIndex((fault) => fault.sessionId === undefined || fault.sessionId === sessionId);
    if (index < 0) return undefined;
    const fault = this.pending[index]!;
    fault.count -= 1;
    if (fault.count === 0) this.pending.splice(index, 1);
    return fault;
  }

  list(): Fault[] {
    return this.pending.map((fault) => ({ ...fault }));
  }

  clear(): void {
    this.pending.length = 0;
  }
}
