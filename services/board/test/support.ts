import { catalogQueues, createRedisConnection, waitForRedis } from "@savepoint/shared";
import { startWebService, type RunningWebService, type TestEnvironment } from "@savepoint/shared/testing";
import { Queue } from "bullmq";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

export const USER = "operator";
export const PASSWORD = "correct horse battery staple";

/** Starts the built board as a real process on a free port and resolves once it serves. */
export function startBoard(env: TestEnvironment, settings: Record<string, string> = {}): Promise<RunningWebService> {
  return startWebService(MAIN, { ...env.env, BULL_BOARD_USER: USER, BULL_BOARD_PASSWORD: PASSWORD, ...settings }, { starting: "bull-board starting", serving: "Bull Board on" });
}

/** A snapshot as a trader sends it. */
export const SNAPSHOT = {
  v: 1, service: "trader", sessionId: "session-1", ownerId: "account-1", epoch: 0, seq: 1, kind: "periodic",
  status: "active", schemaVersion: 1, takenAt: "2026-01-05T15:00:00.000Z", state: { positions: [] },
} as const;

/** The queues the board shows on one Redis, by name (the catalog's; names do not depend on the prefix). */
export const BOARD_QUEUES = catalogQueues("savepoint", false).map(({ name }) => name);

/** One job of each kind a producer sends, none consumed (no consumer runs in these tests). */
const SEED: Array<[string, string, object]> = [
  ["checkpoints", "snapshot", SNAPSHOT],
  ["checkpoints-confirmed", "snapshot", { ...SNAPSHOT, seq: 2 }],
  ["checkpoint-requests", "latest", { service: "trader", sessionId: "session-1" }],
  ["checkpoint-maintenance", "cleanup", { keepCount: 100 }],
  ["reasoning", "think", { agentId: "agent-1", symbol: "AAPL", marketContext: { price: 187.2 } }],
  ["reasoning", "think", { agentId: "agent-2", symbol: "MSFT", marketContext: { price: 410.5 } }],
];

/** How many jobs seedJobs leaves waiting on each queue. */
export const SEEDED_JOBS: Record<string, number> = Object.fromEntries(BOARD_QUEUES.map((name) => [name, SEED.filter(([queue]) => queue === name).length]));

/** The agents whose think jobs seedJobs adds. */
export const SEEDED_AGENTS = SEED.filter(([queue]) => queue === "reasoning").map(([, , data]) => (data as { agentId: string }).agentId);

export async function seedJobs(env: TestEnvironment): Promise<void> {
  const connection = createRedisConnection(env.redisUrl, "producer", "board-test-seed");
  try {
    await waitForRedis(connection);
    for (const [queue, name, data] of SEED) {
      const handle = new Queue(queue, { connection, prefix: env.queuePrefix });
      await handle.add(name, data);
      await handle.close();
    }
  } finally {
    connection.disconnect();
  }
}
