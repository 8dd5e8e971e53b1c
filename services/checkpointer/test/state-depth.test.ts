import { CheckpointInputError, MAX_STATE_DEPTH, snapshotJobId, type SnapshotEnvelope } from "@savepoint/shared";
import { Job } from "bullmq";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { snapshot, storedPositions, useRunningCheckpointer } from "./support.js";

/** A state whose innermost object is `levels` objects deep (the state itself counts as one). */
function nested(levels: number): Record<string, unknown> {
  const state: Record<string, unknown> = {};
  let inner = state;
  for (let level = 1; level < levels; level++) {
    const next: Record<string, unknown> = {};
    inner.a = next;
    inner = next;
  }
  return state;
}

// A state nested past MAX_STATE_DEPTH is refused at once wherever it is met: by the client before anything is
// sent, and by the checkpointer for a job some other producer wrote, without retries.
describe("state depth limit", () => {
  const stack = useRunningCheckpointer("state-depth", { rawQueue: true });

  it.each([
    { levels: MAX_STATE_DEPTH + 1, what: "one level past the limit" },
    { levels: 6_000, what: "6,000 levels, too deep for JSON.stringify" },
  ])("the client refuses a state nested $what with CheckpointInputError naming state, and sends nothing", async ({ levels }) => {
    const envelope = snapshot({ sessionId: "too-deep-client", state: nested(levels) });
    const refused = stack.client.saveAndConfirm(envelope);
    await expect(refused).rejects.toThrow(CheckpointInputError);
    await expect(refused).rejects.toThrow(`state: `);
    await expect(refused).rejects.toThrow(`${MAX_STATE_DEPTH}-level limit`);
    expect(await stack.raw.queue.getJob(snapshotJobId(envelope))).toBeUndefined();
  });

  it("stores a state nested exactly to the limit", async () => {
    expect(await stack.client.saveAndConfirm(snapshot({ sessionId: "deep-enough", seq: 1, state: nested(MAX_STATE_DEPTH) }))).toEqual({
      outcome: "stored",
    });
  });

  /**
   * A job whose data is `text` as Redis holds it. No producer in this process can serialize a state this deep,
   * so the job is added delayed with placeholder data, its data replaced in Redis, then promoted.
   */
  async function addRawText(text: string): Promise<Job> {
    const job = await stack.raw.queue.add("snapshot", {}, { delay: 3_600_000 });
    const redis = new Redis(stack.env.redisUrl);
    try {
      await redis.hset(stack.raw.queue.toKey(job.id!), "data", text);
    } finally {
      redis.disconnect();
    }
    await job.promote();
    return job;
  }

  it.each([
    { layout: "laid out as the client writes envelopes (its state cut out as text)", separator: "," },
    { layout: "laid out otherwise (decoded whole)", separator: ", " },
  ])("the checkpointer fails a job with a state nested 20,000 deep, $layout, at once and without retry", async ({ separator }) => {
    const { state: _state, ...head } = snapshot({ sessionId: "too-deep-raw", seq: 1 }) as SnapshotEnvelope;
    const deep = `${"[".repeat(20_000)}${"]".repeat(20_000)}`;
    const job = await addRawText(`${JSON.stringify(head).slice(0, -1)}${separator}"state":{"a":${deep}}}`);
    await expect(job.waitUntilFinished(stack.raw.events, 10_000)).rejects.toThrow(/state: .*100-level limit/);
    const ended = await Job.fromId(stack.raw.queue, job.id!);
    expect({ state: await ended!.getState(), attemptsMade: ended!.attemptsMade }).toEqual({ state: "failed", attemptsMade: 1 });
    expect(job.opts.attempts).toBeGreaterThan(1);
    expect(await storedPositions(stack.env, "trader", "too-deep-raw")).toEqual([]);
  });
});
