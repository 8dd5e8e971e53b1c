import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisLease } from "../src/lease.js";
import { createRedisConnection, hashTagOf, waitForRedis, type RedisConnection } from "../src/redis.js";
import { RedisCluster } from "../src/testing/redis-cluster.js";
import { TEST_REDIS_URL } from "../src/testing/test-environment.js";

describe("RedisLease", () => {
  let redis: Redis;
  const prefix = `sptest-lease-${randomBytes(4).toString("hex")}`;
  let leases = 0;
  const newLease = (ttlMs = 10_000) => new RedisLease(redis, `${prefix}:lease-${++leases}`, ttlMs);

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it("grants a free lease, refuses another owner naming the holder, and grants it again once released", async () => {
    const lease = newLease();
    const first = await lease.acquire({ owner: "session-a", generation: 0 });
    expect(first).toEqual({ granted: true, token: 1, previous: null });

    const refused = await lease.acquire({ owner: "session-b", generation: 0 });
    expect(refused).toMatchObject({ granted: false, holder: { owner: "session-a", generation: 0, token: 1 } });
    expect(refused.granted === false && refused.holder.expiresInMs).toBeGreaterThan(9_000);

    expect(await lease.release(1)).toBe(true);
    expect(await lease.acquire({ owner: "session-b", generation: 0 })).toEqual({ granted: true, token: 2, previous: null });
  });

  it("lets a later generation of the same owner supersede an earlier one, never the reverse", async () => {
    const lease = newLease();
    await lease.acquire({ owner: "session-a", generation: 1 });
    const later = await lease.acquire({ owner: "session-a", generation: 2 });
    expect(later).toMatchObject({ granted: true, token: 2, previous: { owner: "session-a", generation: 1, token: 1 } });
    expect(await lease.acquire({ owner: "session-a", generation: 1 })).toMatchObject({ granted: false, holder: { generation: 2, token: 2 } });
    // The superseded holder finds out on its next renewal, and cannot release the lease of the new one.
    expect(await lease.renew({ owner: "session-a", generation: 1 }, 1)).toMatchObject({ held: false, holder: { owner: "session-a", generation: 2 } });
    expect(await lease.release(1)).toBe(false);
    expect(await lease.renew({ owner: "session-a", generation: 2 }, 2)).toEqual({ held: true });
  });

  it("never grants an earlier generation the lease a later one of the same owner held and let lapse", async () => {
    const lease = newLease();
    await lease.acquire({ owner: "session-a", generation: 1 });
    await lease.acquire({ owner: "session-a", generation: 2 });
    // Generation 2's process stalls past the lease's time to live: the lease lapses (as its key expiring does).
    await redis.del(lease.key);
    expect(await lease.acquire({ owner: "session-a", generation: 1 })).toEqual({ granted: false, holder: { owner: "session-a", generation: 2, token: 2, expiresInMs: 0 } });
    expect(await lease.renew({ owner: "session-a", generation: 1 }, 1)).toEqual({ held: false, holder: null });
    // Generation 2 takes it up again, and a later generation or another owner may still be granted it.
    expect(await lease.renew({ owner: "session-a", generation: 2 }, 2)).toEqual({ held: true });
    expect(await lease.acquire({ owner: "session-a", generation: 3 })).toMatchObject({ granted: true, token: 3 });
    expect(await lease.release(3)).toBe(true);
    expect(await lease.acquire({ owner: "session-b", generation: 0 })).toMatchObject({ granted: true, token: 4 });
  });

  it("is taken over only when asked, with a new token that fences the old holder", async () => {
    const lease = newLease();
    await lease.acquire({ owner: "session-a", generation: 0 });
    const taken = await lease.acquire({ owner: "session-b", generation: 0 }, { takeOver: true });
    expect(taken).toMatchObject({ granted: true, token: 2, previous: { owner: "session-a", token: 1 } });
    expect(await lease.renew({ owner: "session-a", generation: 0 }, 1)).toMatchObject({ held: false, holder: { owner: "session-b", token: 2 } });
  });

  it("lapses when not renewed; the holder takes it up again only if nobody was granted it since", async () => {
    const lease = newLease(50);
    await lease.acquire({ owner: "session-a", generation: 0 });
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await lease.renew({ owner: "session-a", generation: 0 }, 1)).toEqual({ held: true });

    await new Promise((resolve) => setTimeout(resolve, 80));
    const other = await lease.acquire({ owner: "session-b", generation: 0 });
    expect(other).toMatchObject({ granted: true, token: 2, previous: null });
    expect(await lease.release(2)).toBe(true);
    // Free again, but session-a's token 1 is older than one granted since: it must not come back.
    expect(await lease.renew({ owner: "session-a", generation: 0 }, 1)).toEqual({ held: false, holder: null });
  });

  it("never grants two claimants at once when they race", async () => {
    const lease = newLease();
    const grants = await Promise.all(Array.from({ length: 20 }, (_, i) => lease.acquire({ owner: `session-${i}`, generation: 0 })));
    expect(grants.filter((grant) => grant.granted)).toHaveLength(1);
  });
});

describe("RedisLease on a 3-master Redis Cluster", () => {
  let cluster: RedisCluster;
  let redis: RedisConnection;

  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
    redis = createRedisConnection({ clusterNodes: cluster.clusterNodes }, "producer", "lease-test");
    await waitForRedis(redis);
  }, 60_000);
  afterAll(async () => {
    redis?.disconnect();
    await cluster?.stop();
  });

  it("refuses a key without a hash tag (its fence would be in another slot), and works with one", async () => {
    expect(() => new RedisLease(redis, "savepoint:trader-account-leases:acct-1", 10_000)).toThrow(
      'lease key "savepoint:trader-account-leases:acct-1" has no hash tag, so on a Redis Cluster it and its fence would be in different slots; put one in it, e.g. {savepoint}:…',
    );
    // The scripts touch the lease and its fence together: a CROSSSLOT refusal would fail every call here.
    const leases = ["{savepoint}:leases:a", "{savepoint}:leases:b", "{other}:leases:c"].map((key) => new RedisLease(redis, key, 10_000));
    for (const lease of leases) {
      expect(await lease.acquire({ owner: "session-a", generation: 0 })).toMatchObject({ granted: true, previous: null });
      expect(await lease.acquire({ owner: "session-b", generation: 0 })).toMatchObject({ granted: false, holder: { owner: "session-a" } });
      const token = (await lease.acquire({ owner: "session-a", generation: 1 })) as { token: number };
      expect(await lease.renew({ owner: "session-a", generation: 1 }, token.token)).toEqual({ held: true });
      expect(await lease.release(token.token)).toBe(true);
    }
  });
});

describe("hashTagOf", () => {
  it("reads the tag as Redis does: between the first { and the next }, when not empty", () => {
    expect(hashTagOf("{savepoint}:leases:a")).toBe("savepoint");
    expect(hashTagOf("a:{b}:{c}")).toBe("b");
    expect(hashTagOf("{}:{b}")).toBeUndefined();
    expect(hashTagOf("no-tag")).toBeUndefined();
    expect(hashTagOf("open{only")).toBeUndefined();
  });
});
