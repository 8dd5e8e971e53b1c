import { CheckpointClient, CheckpointTimeoutError, CheckpointUnavailableError } from "@savepoint/shared";
import { createTestEnvironment, RedisServer, type TestEnvironment } from "@savepoint/shared/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { confirmEventually, keysOf, SnapshotStream, storedKeys } from "./fault-support.js";
import { snapshot, startTestCheckpointer } from "./support.js";
import type { RunningCheckpointer } from "../src/checkpointer.js";

const CONFIRM_TIMEOUT_MS = 1_500;
const AFTER_RESTART = { withinMs: 20_000, retryMs: 100 };

describe("Redis killed while confirmations are in flight", () => {
  let env: TestEnvironment;
  let redis: RedisServer;
  let checkpointer: RunningCheckpointer;
  let client: CheckpointClient;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);

  beforeAll(async () => {
    process.on("unhandledRejection", onUnhandled);
    env = await createTestEnvironment("redis-crash");
    redis = await RedisServer.start();
    checkpointer = await startTestCheckpointer(env, { REDIS_URL: redis.url });
    client = await CheckpointClient.connect({
      redisUrl: redis.url,
      queuePrefix: env.queuePrefix,
      confirmTimeoutMs: CONFIRM_TIMEOUT_MS,
      requestTimeoutMs: CONFIRM_TIMEOUT_MS,
    });
  });
  afterAll(async () => {
    await client?.close();
    await checkpointer?.close();
    await redis?.stop();
    await env?.dispose();
    process.off("unhandledRejection", onUnhandled);
  });

  it("ends every wait with a typed error, raises no unhandled rejection, and confirms again once Redis is back", async () => {
    for (let trial = 0; trial < 3; trial++) {
      const sessions = [`crash-${trial}-a`, `crash-${trial}-b`];
      // A stream that works (after a restart, once every connection is back) is what the crash strikes.
      await confirmEventually(client, snapshot({ sessionId: `crash-${trial}-warm`, seq: 1 }), AFTER_RESTART);
      const stream = new SnapshotStream(client, { sessions, everyMs: 10, confirm: true }).start();
      const requests: Array<Promise<unknown>> = [];
      const inFlight = client.saveAndConfirm(snapshot({ sessionId: `crash-${trial}-warm`, seq: 2 }), {
        onQueued: () => {
          requests.push(client.latest({ service: "trader", sessionId: sessions[0]! }).catch((error: Error) => error));
          void redis.kill();
        },
      });
      const crashed = await inFlight.then(
        (receipt) => receipt,
        (error: Error) => error,
      );
      await stream.stop().catch(() => undefined);
      const receipts = await stream.confirmations();
      const outcomes = [crashed, ...receipts, ...(await Promise.all(requests))];

      const errors = outcomes.filter((outcome): outcome is Error => outcome instanceof Error);
      expect(errors.length).toBeGreaterThan(0);
      for (const error of errors) expect([CheckpointTimeoutError, CheckpointUnavailableError]).toContain(error.constructor);
      expect(errors.filter((error) => error instanceof CheckpointTimeoutError).map((error) => error.message)).toEqual(
        errors.filter((error) => error instanceof CheckpointTimeoutError).map(() => expect.stringMatching(/Redis is unreachable/)),
      );
      // While Redis is down, a new call fails at once, typed, naming what to do.
      await expect(client.saveAndConfirm(snapshot({ sessionId: `crash-${trial}-down` }))).rejects.toThrow(CheckpointUnavailableError);
      await expect(client.save(snapshot({ sessionId: `crash-${trial}-down` }))).rejects.toThrow(CheckpointUnavailableError);

      // Every confirmation that came was committed.
      const stored = new Set(await storedKeys(env));
      const confirmed = keysOf(stream.sent.filter((_, index) => !(receipts[index] instanceof Error)));
      expect(confirmed.filter((key) => !stored.has(key))).toEqual([]);

      await redis.restart();
      await expect(confirmEventually(client, snapshot({ sessionId: `crash-${trial}-after`, seq: 1 }), AFTER_RESTART)).resolves.toMatchObject({ outcome: "stored" });
      expect(unhandled).toEqual([]);
    }
    expect(await storedKeys(env)).toContain("trader/crash-2-after/0/1");
  });
});
