import { Redis } from "ioredis";
import { createTestEnvironment, type TestEnvironment } from "@savepoint/shared/testing";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ConfirmationsBeacon } from "../src/queues/confirmations-beacon.js";

const TTL_MS = 400;

describe("ConfirmationsBeacon", () => {
  let env: TestEnvironment;
  let redis: Redis;
  const beacons: ConfirmationsBeacon[] = [];
  const beacon = () => {
    const made = new ConfirmationsBeacon(redis, env.queuePrefix, TTL_MS);
    beacons.push(made);
    return made;
  };
  beforeAll(async () => {
    env = await createTestEnvironment("confirmations-beacon");
    redis = new Redis(env.redisUrl);
  });
  afterAll(async () => {
    for (const made of beacons) made.close();
    redis?.disconnect();
    await env?.dispose();
  });

  it("tells another checkpointer when confirmations start flowing here and when they have stopped, never this one", async () => {
    const confirming = beacon();
    const watching = beacon();
    const heard: string[] = [];
    const heardHere: string[] = [];
    watching.watch({ begin: () => heard.push("begin"), end: () => heard.push("end") });
    confirming.watch({ begin: () => heardHere.push("begin"), end: () => heardHere.push("end") });

    confirming.shine();
    await vi.waitFor(() => expect(heard).toEqual(["begin"]), { timeout: 5_000, interval: 20 });
    expect(await redis.pttl(`${env.queuePrefix}:confirmations-flowing`)).toBeGreaterThan(0);

    // Nothing shines any more: the key lapses on Redis's clock and the watcher hears the end.
    await vi.waitFor(() => expect(heard).toEqual(["begin", "end"]), { timeout: 5_000, interval: 20 });
    expect(heardHere).toEqual([]);
  });
});
