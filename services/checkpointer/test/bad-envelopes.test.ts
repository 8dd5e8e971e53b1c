import type { SnapshotReceipt } from "@savepoint/shared";
import { Job } from "bullmq";
import { describe, expect, it } from "vitest";
import { snapshot, storedPositions, useRunningCheckpointer } from "./support.js";

const MAX_STATE_BYTES = 4096;

interface BadEnvelope {
  problem: string;
  /** Job name; "snapshot" unless the name itself is the problem. */
  name?: string;
  data: unknown;
  /** What the failure reason must contain to name the offending field. */
  names: string;
}

const valid = () => snapshot({ sessionId: "refused" }) as unknown as Record<string, unknown>;
const without = (field: string) => {
  const { [field]: _dropped, ...rest } = valid();
  return rest;
};
const withField = (field: string, value: unknown) => ({ ...valid(), [field]: value });

const BAD_ENVELOPES: BadEnvelope[] = [
  { problem: "missing v", data: without("v"), names: "v: " },
  { problem: "v: 2", data: withField("v", 2), names: "v: " },
  { problem: 'v: "1" (a string)', data: withField("v", "1"), names: "v: " },
  { problem: "missing service", data: without("service"), names: "service: " },
  { problem: "upper-case service", data: withField("service", "Trader"), names: "service: " },
  { problem: "service starting with a digit", data: withField("service", "1trader"), names: "service: " },
  { problem: "service over 32 characters", data: withField("service", `t${"x".repeat(32)}`), names: "service: " },
  { problem: "sessionId with ':'", data: withField("sessionId", "day:1"), names: "sessionId: " },
  { problem: "sessionId with '/'", data: withField("sessionId", "day/1"), names: "sessionId: " },
  { problem: "empty sessionId", data: withField("sessionId", ""), names: "sessionId: " },
  { problem: "sessionId over 128 characters", data: withField("sessionId", "s".repeat(129)), names: "sessionId: " },
  { problem: "ownerId with a space", data: withField("ownerId", "acct 7"), names: "ownerId: " },
  { problem: "ownerId a number", data: withField("ownerId", 7), names: "ownerId: " },
  { problem: "negative epoch", data: withField("epoch", -1), names: "epoch: " },
  { problem: "fractional epoch", data: withField("epoch", 1.5), names: "epoch: " },
  { problem: 'epoch "1" (a string)', data: withField("epoch", "1"), names: "epoch: " },
  { problem: "epoch null (NaN once serialized)", data: withField("epoch", Number.NaN), names: "epoch: " },
  { problem: "epoch beyond 2^53", data: withField("epoch", 2 ** 53 + 2), names: "epoch: " },
  { problem: "negative seq", data: withField("seq", -3), names: "seq: " },
  { problem: "missing seq", data: without("seq"), names: "seq: " },
  { problem: "unknown kind", data: withField("kind", "hourly"), names: "kind: " },
  { problem: "unknown status", data: withField("status", "paused"), names: "status: " },
  { problem: "fractional schemaVersion", data: withField("schemaVersion", 1.5), names: "schemaVersion: " },
  { problem: "schemaVersion beyond Postgres integer", data: withField("schemaVersion", 2 ** 31), names: "schemaVersion: " },
  { problem: "takenAt not a timestamp", data: withField("takenAt", "yesterday"), names: "takenAt: " },
  { problem: "takenAt without an offset", data: withField("takenAt", "2026-01-31T12:00:00"), names: "takenAt: " },
  { problem: "takenAt on a day that does not exist", data: withField("takenAt", "2026-02-30T12:00:00Z"), names: "takenAt: " },
  { problem: "takenAt in year 0000", data: withField("takenAt", "0000-06-01T12:00:00Z"), names: "takenAt: " },
  { problem: "takenAt a number", data: withField("takenAt", Date.now()), names: "takenAt: " },
  { problem: "missing state", data: without("state"), names: "state: " },
  { problem: "state an array", data: withField("state", [1, 2]), names: "state: " },
  { problem: "state null", data: withField("state", null), names: "state: " },
  { problem: "state a string", data: withField("state", '{"positions":[]}'), names: "state: " },
  { problem: "state over MAX_STATE_BYTES", data: withField("state", { blob: "x".repeat(MAX_STATE_BYTES) }), names: "state: " },
  { problem: "state with a NUL character", data: withField("state", { note: "a\u0000b" }), names: "state: " },
  { problem: "state with a NUL character in a key", data: withField("state", { "a\u0000": 1 }), names: "state: " },
  { problem: "state with a lone high surrogate", data: withField("state", { note: "a\ud83d" }), names: "state: " },
  { problem: "state with a lone low surrogate", data: withField("state", { note: "\ude00b" }), names: "state: " },
  { problem: "an extra top-level field", data: withField("priority", 1), names: '"priority"' },
  { problem: "unknown job name", name: "snapshots", data: valid(), names: 'job name "snapshots"' },
  { problem: "payload a string", data: "snapshot", names: "(payload): " },
  { problem: "payload an array", data: [valid()], names: "(payload): " },
  { problem: "payload a number", data: 42, names: "(payload): " },
  { problem: "payload null", data: null, names: "(payload): " },
  { problem: "payload empty", data: {}, names: "service: " },
];

// Raw jobs, so nothing is checked before the checkpointer sees them (the client would refuse all of these).
describe("bad envelopes", () => {
  const stack = useRunningCheckpointer("bad-envelopes", { overrides: { MAX_STATE_BYTES: String(MAX_STATE_BYTES) }, rawQueue: true });

  const addBad = (bad: BadEnvelope) => stack.raw.queue.add(bad.name ?? "snapshot", bad.data);

  /** Awaits a job that must fail, then reads back how it ended. */
  async function failureOf(job: Job) {
    await expect(job.waitUntilFinished(stack.raw.events, 10_000)).rejects.toThrow();
    const ended = await Job.fromId(stack.raw.queue, job.id!);
    return { state: await ended!.getState(), attemptsMade: ended!.attemptsMade, failedReason: ended!.failedReason };
  }

  it.each(BAD_ENVELOPES)("fails a job with $problem at once, without retry or delay, naming the field", async (bad) => {
    const job = await addBad(bad);
    const failure = await failureOf(job);
    expect(failure.state).toBe("failed");
    expect(failure.attemptsMade).toBe(1);
    expect(job.opts.attempts).toBeGreaterThan(1);
    expect(failure.failedReason).toContain(bad.names);
  });

  it("stores every valid snapshot interleaved with bad envelopes while the bad ones fail", async () => {
    const validSnapshots = BAD_ENVELOPES.map((_, index) =>
      snapshot({
        sessionId: "valid-flow",
        seq: index + 1,
        // Valid content close to the refused kinds: an escaped "\u0000" as text, a surrogate pair, size near the limit.
        state: { note: index % 3 === 0 ? "\\u0000 is how JSON writes NUL 😀" : "ok", pad: "p".repeat(index * 50) },
      }),
    );
    const jobs = await stack.raw.queue.addBulk(
      BAD_ENVELOPES.flatMap((bad, index) => [
        { name: bad.name ?? "snapshot", data: bad.data },
        { name: "snapshot", data: validSnapshots[index] },
      ]),
    );
    const badJobs = jobs.filter((_, index) => index % 2 === 0);
    const validJobs = jobs.filter((_, index) => index % 2 === 1);

    const answers = await Promise.all(validJobs.map((job) => job.waitUntilFinished(stack.raw.events, 10_000) as Promise<SnapshotReceipt>));
    expect(answers).toEqual(validJobs.map(() => ({ outcome: "stored" })));
    const failures = await Promise.all(badJobs.map(failureOf));
    expect(failures.map((failure) => [failure.state, failure.attemptsMade])).toEqual(badJobs.map(() => ["failed", 1]));
    expect(await storedPositions(stack.env, "trader", "valid-flow")).toHaveLength(validSnapshots.length);
  });
});
