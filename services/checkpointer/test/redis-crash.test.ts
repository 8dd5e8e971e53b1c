import {
  CheckpointClient,
  CheckpointTimeoutError,
  CheckpointUnavailableError,
  type SnapshotReceipt,
} from "@savepoint/shared";
import { createTestEnvironment, RedisServer, type TestEnvironment } from "@savepoint/shared/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keysOf, SnapshotStream, storedKeys } from "./fault-support.js";
import { snapshot, startTestCheckpointer } from "./support.js";
import type { RunningCheckpointer } from "../src/checkpointer.js";

const CONFIRM_TIMEOUT_MS = 1_500;

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
      await waitForConfirmation(client, `crash-${trial}-warm`);
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
      await expect(waitForConfirmation(client, `crash-${trial}-after`)).resolves.toMatchObject({ outcome: "stored" });
      expect(unhandled).toEqual([]);
    }
    expect(await storedKeys(env)).toContain("trader/crash-2-after/0/1");
  });
});

/**
 * Saves until one is confirmed: the first tries after a restart may come before every connection is back
 * (the client has no event for that), so a failed try waits a little before the next.
 */
async function waitForConfirmation(client: CheckpointClient, sessionId: string): Promise<SnapshotReceipt> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await client.saveAndConfirm(snapshot({ sessionId, seq: 1 }));
    } catch (error) {
      if (Date.now() > deadline || !(error instanceof CheckpointTimeoutError || error instanceof CheckpointUnavailableError)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
