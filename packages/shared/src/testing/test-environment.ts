import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";
import { migrate } from "../migrations.js";

/** Where the tests' Redis and Postgres are: REDIS_URL / DATABASE_URL when set, else this machine's. */
export const TEST_REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
export const TEST_DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/**
 * Hash partitions of `checkpoints` and `checkpoint_sessions` in every test database (migration
 * 1764200000001_hash-partitioning): TEST_CHECKPOINT_PARTITIONS=n, so any test file, or the whole suite, can run
 * on partitioned tables. Unset: plain tables, unless a test asks for partitions itself.
 */
export const TEST_CHECKPOINT_PARTITIONS = parsePartitions(process.env.TEST_CHECKPOINT_PARTITIONS);

function parsePartitions(value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  const partitions = Number(value);
  if (!Number.isInteger(partitions) || partitions < 2) {
    throw new Error(`TEST_CHECKPOINT_PARTITIONS must be an integer of at least 2, or unset (got ${JSON.stringify(value)})`);
  }
  return partitions;
}

export interface TestEnvironmentOptions {
  /** Hash partitions of the checkpoint tables (at least 2); default TEST_CHECKPOINT_PARTITIONS, else none. */
  checkpointPartitions?: number | undefined;
}

/** The two layouts the store's statements must work on, for tests that run once on each. */
export const CHECKPOINT_TABLE_LAYOUTS = [
  { layout: "plain tables", checkpointPartitions: undefined },
  { layout: "hash-partitioned tables", checkpointPartitions: 4 },
] as const satisfies ReadonlyArray<{ layout: string } & TestEnvironmentOptions>;

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

/** `databaseUrl` with the session setting that makes the partitioning migration partition the tables. */
function withPartitioning(databaseUrl: string, partitions: number): string {
  const parsed = new URL(databaseUrl);
  parsed.searchParams.set("options", `-c savepoint.checkpoint_partitions=${partitions}`);
  return parsed.toString();
}

export async function createTestEnvironment(label: string, options: TestEnvironmentOptions = {}): Promise<TestEnvironment> {
  const suffix = randomBytes(4).toString("hex");
  const safeLabel = label.toLowerCase().replace(/[^a-z0-9]+/g, "_").slice(0, 30);
  const databaseName = `sp_test_${safeLabel}_${suffix}`;
  const databaseUrl = withDatabase(TEST_DATABASE_URL, databaseName);
  const queuePrefix = `sptest-${safeLabel}-${suffix}`;
  // Through the migration itself, as `PGOPTIONS='-c savepoint.checkpoint_partitions=n' npm run migrate` does it.
  const partitions = "checkpointPartitions" in options ? options.checkpointPartitions : TEST_CHECKPOINT_PARTITIONS;
  await migrate({ databaseUrl: partitions === undefined ? databaseUrl : withPartitioning(databaseUrl, partitions), direction: "up" });
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
