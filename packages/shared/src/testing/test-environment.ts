import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";
import { migrate } from "../migrations.js";

/** Where the tests' Redis and Postgres are: REDIS_URL / DATABASE_URL when set, else this machine's. */
export const TEST_REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const TEST_DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** An isolated place for one test file: its own migrated database and its own queue prefix. */
export interface TestEnvironment {
  redisUrl: string;
  databaseUrl: string;
  queuePrefix: string;
  /** Environment variables that point a service at this place. */
  env: Record<string, string>;
  /** A query on the test database (for assertions; services never write around the checkpointer). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Drops the database and deletes every Redis key under the prefix. */
  dispose(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export async function createTestEnvironment(label: string): Promise<TestEnvironment> {
  const suffix = randomBytes(4).toString("hex");
  const safeLabel = label.toLowerCase().replace(/[^a-z0-9]+/g, "_").slice(0, 30);
  const databaseName = `sp_test_${safeLabel}_${suffix}`;
  const databaseUrl = withDatabase(TEST_DATABASE_URL, databaseName);
  const queuePrefix = `sptest-${safeLabel}-${suffix}`;
  await migrate({ databaseUrl, direction: "up" });
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  // pool.end() resolves before its connections have closed; DROP DATABASE ... WITH (FORCE) in dispose() may
  // then terminate one, and that error must not crash the test run.
  pool.on("error", () => undefined);
  return {
    redisUrl: TEST_REDIS_URL,
    databaseUrl,
    queuePrefix,
    env: { REDIS_URL: TEST_REDIS_URL, DATABASE_URL: databaseUrl, QUEUE_PREFIX: queuePrefix },
    query: (sql, params) => pool.query(sql, params),
    async dispose() {
      await pool.end();
      const admin = new pg.Client({ connectionString: withDatabase(TEST_DATABASE_URL, "postgres") });
      await admin.connect();
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(databaseName)} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
      await deleteKeys(TEST_REDIS_URL, `${queuePrefix}:*`);
    },
  };
}

async function deleteKeys(redisUrl: string, pattern: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}
