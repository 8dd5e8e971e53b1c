#!/usr/bin/env node
/**
 * Item 8's backlog, queued from a process of its own: queued from the process that times the confirmations,
 * its bursts of saves would hold that event loop and be counted as confirmation latency.
 *
 *   node backlog-producer.mjs <redisUrl> <queuePrefix> <sessionPrefix> <count>
 *
 * Saves <count> fire-and-forget snapshots of 1 KB over 1,000 sessions named <sessionPrefix><n>, then exits 0.
 */
import { CheckpointClient } from "@savepoint/shared";

const [redisUrl, queuePrefix, sessionPrefix, countText] = process.argv.slice(2);
const count = Number(countText);
const state = { blob: "x".repeat(1024) };
let takenAt = 0;
const client = await CheckpointClient.connect({ redisUrl, queuePrefix });
try {
  for (let sent = 0; sent < count; sent += 1000) {
    await Promise.all(
      Array.from({ length: Math.min(1000, count - sent) }, (_, index) =>
        client.save({
          v: 1, service: "campaign", sessionId: `${sessionPrefix}${index}`, epoch: 0, seq: sent + index + 1, kind: "periodic", status: "active",
          schemaVersion: 1, takenAt: new Date(Date.now() + ++takenAt).toISOString(), state,
        }),
      ),
    );
  }
} finally {
  await client.close();
}
