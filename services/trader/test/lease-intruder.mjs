/**
 * Another session taking a trader's account the moment its lease lapses, from a thread of its own, so it acts
 * while the test's trader is stalled (its event loop blocked). workerData: the Redis URL, the lease's key and
 * time to live, and a shared Int32 flag: 0 until the trader stalls (it stores 1), then 2 once this session holds
 * the account.
 */
import { workerData } from "node:worker_threads";
import { setTimeout as delay } from "node:timers/promises";
import { Redis } from "ioredis";
import { RedisLease } from "@savepoint/shared";

const { redisUrl, key, ttlMs, flag } = workerData;
const stalled = new Int32Array(flag);
const redis = new Redis(redisUrl);
const lease = new RedisLease(redis, key, ttlMs);
Atomics.wait(stalled, 0, 0);
// The trader renews nothing while stalled: the lease lapses within its time to live, and is then free.
while (!(await lease.acquire({ owner: "intruding-session", generation: 0 })).granted) await delay(20);
Atomics.store(stalled, 0, 2);
Atomics.notify(stalled, 0);
redis.disconnect();
