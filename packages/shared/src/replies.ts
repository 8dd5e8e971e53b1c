import { randomBytes } from "node:crypto";
import type { Job } from "bullmq";
import { z } from "zod";
import { REFUSAL_CODES, type RefusalCode } from "./jobs.js";
import { createRedisConnection, type RedisConnection, type RedisTarget } from "./redis.js";

/*
 * The reply path: how an answer (a confirmation after commit, a state request's result, a refusal's code)
 * reaches the one client waiting for it. Each client has an inbox, a Redis list only it reads; a job whose id
 * names an inbox gets its answer pushed there by the checkpointer, and the client pops it with a blocking read
 * on a connection of its own. So an answer costs the same however many producers are connected (BullMQ's
 * QueueEvents would deliver every event to every client), and a delivered answer is gone from Redis.
 *
 * The inbox is named in the job id (`Reply.<inbox>.<call>…`) rather than the data, so the payloads stay the
 * contracts docs/architecture.md states, and each call is its own job. Ids without that form (hand-built jobs) get no reply.
 */

const REPLY_ID = /^Reply\.([0-9a-f]{16})\.\d+(?:\.|$)/;
/** An inbox nobody reads any more (its client crashed) disappears this long after the last answer pushed. */
const INBOX_TTL_MS = 60_000;
/** Answers popped per blocking read, so a busy client takes many in one round trip. */
const ANSWERS_PER_READ = 256;

/** What the checkpointer answers: the job's result, or why it was refused. */
export const answerSchema = z.discriminatedUnion("ok", [
  z.strictObject({ job: z.string(), ok: z.literal(true), result: z.unknown() }),
  z.strictObject({ job: z.string(), ok: z.literal(false), code: z.enum(REFUSAL_CODES), message: z.string() }),
]);
export type Answer = z.infer<typeof answerSchema>;
export type Refusal = { code: RefusalCode; message: string };

/**
 * An inbox's list key. The inbox id is its own hash tag, so on a Redis Cluster inboxes spread over the
 * masters instead of all landing in the queue prefix's slot.
 */
export function inboxKey(queuePrefix: string, inbox: string): string {
  return `${queuePrefix.replace(/^\{|\}$/g, "")}:replies:{${inbox}}`;
}

/** The inbox a job's answer goes to, from its id; undefined for jobs nobody waits for on the reply path. */
export function inboxOf(jobId: string | undefined): string | undefined {
  return jobId === undefined ? undefined : REPLY_ID.exec(jobId)?.[1];
}

// KEYS[1] the inbox; ARGV[1] the answer; ARGV[2] the inbox's TTL in ms. One round trip, one slot.
const PUSH_ANSWER = `redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

type AnswerPusher = { pushAnswer(key: string, answer: string, ttlMs: number): Promise<number> };

/** The checkpointer's side: pushes each answer to the inbox its job names. */
export class AnswerSender {
  private readonly pusher: AnswerPusher;

  /** `connection` should retry through outages ("worker" role): an answer not pushed leaves its job unfinished. */
  constructor(
    connection: RedisConnection,
    private readonly queuePrefix: string,
  ) {
    connection.defineCommand("pushAnswer", { numberOfKeys: 1, lua: PUSH_ANSWER });
    this.pusher = connection as unknown as AnswerPusher;
  }

  /** Answers `job` if its id names an inbox; resolves once Redis holds the answer. */
  async answer(job: Pick<Job, "id">, answer: { result: unknown } | Refusal): Promise<void> {
    const inbox = inboxOf(job.id);
    if (!inbox) return;
    const body: Answer = "result" in answer ? { job: job.id!, ok: true, result: answer.result } : { job: job.id!, ok: false, ...answer };
    await this.pusher.pushAnswer(inboxKey(this.queuePrefix, inbox), JSON.stringify(body), INBOX_TTL_MS);
  }
}

interface Waiter {
  resolve: (answer: Answer) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A client's side: one inbox, read by a blocking pop on a connection of its own. `expect` hands out job ids
 * that name the inbox and waits for their answers. While Redis is down the read is resent once it is back;
 * waits end with their own timeout, so nothing in here rejects outside a caller's promise.
 */
export class ReplyInbox {
  readonly id = randomBytes(8).toString("hex");
  private readonly key: string;
  private readonly connection: RedisConnection;
  private readonly waiters = new Map<string, Waiter>();
  private calls = 0;
  private closed = false;
  private readonly reading: Promise<void>;

  constructor(target: RedisTarget, queuePrefix: string) {
    this.key = inboxKey(queuePrefix, this.id);
    this.connection = createRedisConnection(target, "worker", "checkpoint-client-inbox");
    // Connection errors surface as timeouts of the waits in flight; the connection reconnects by itself.
    this.connection.on("error", () => undefined);
    this.reading = this.read();
  }

  /** A job id whose answer comes to this inbox; `what` (a snapshot's own id) makes it readable on the board. */
  nextJobId(what?: string): string {
    this.calls += 1;
    return `Reply.${this.id}.${this.calls}${what ? `.${what}` : ""}`;
  }

  /**
   * Waits for the answer to `jobId`; after `timeoutMs`, rejects with `onTimeout(redisReachable)`. Call it before
   * the job is added, so an answer cannot arrive before anyone waits for it.
   */
  expect(jobId: string, timeoutMs: number, onTimeout: (redisReachable: boolean) => Error): { answer: Promise<Answer>; cancel: () => void } {
    let cancel = () => undefined as void;
    const answer = new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(jobId);
        reject(onTimeout(this.connection.status === "ready"));
      }, timeoutMs);
      this.waiters.set(jobId, { resolve, reject, timer });
      cancel = () => {
        clearTimeout(timer);
        this.waiters.delete(jobId);
      };
    });
    return { answer, cancel };
  }

  /** Stops reading; waits still pending reject with `reason`. The inbox's key expires by itself. */
  async close(reason: () => Error): Promise<void> {
    this.closed = true;
    for (const [jobId, waiter] of this.waiters) {
      clearTimeout(waiter.timer);
      this.waiters.delete(jobId);
      waiter.reject(reason());
    }
    this.connection.disconnect();
    await this.reading;
  }

  private async read(): Promise<void> {
    while (!this.closed) {
      let popped: [key: string, members: string[]] | null;
      try {
        popped = (await this.connection.blmpop(0, 1, this.key, "LEFT", "COUNT", ANSWERS_PER_READ)) as [string, string[]] | null;
      } catch {
        // Closed, or a fault the connection recovers from; pending waits end with their timeouts.
        if (this.closed) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      for (const text of popped?.[1] ?? []) this.deliver(text);
    }
  }

  private deliver(text: string): void {
    let parsed: Answer | undefined;
    try {
      parsed = answerSchema.safeParse(JSON.parse(text)).data;
    } catch {
      parsed = undefined;
    }
    // Something else in the inbox, or a late answer to a wait that timed out: nobody is waiting for it.
    const waiter = parsed && this.waiters.get(parsed.job);
    if (!parsed || !waiter) return;
    clearTimeout(waiter.timer);
    this.waiters.delete(parsed.job);
    waiter.resolve(parsed);
  }
}
