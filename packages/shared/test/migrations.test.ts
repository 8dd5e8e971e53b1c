import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../src/migrations.js";
import { createTestEnvironment, type TestEnvironment } from "../src/testing/index.js";

describe("migrations", () => {
  let env: TestEnvironment;

  beforeAll(async () => {
    env = await createTestEnvironment("migrations");
  });
  afterAll(async () => {
    await env?.dispose();
  });

  // The tables as queries name them: on a database partitioned by 1764200000001_hash-partitioning, not its partitions.
  const tables = async () =>
    (
      await env.query<{ t: string }>(
        `SELECT c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`,
      )
    ).rows.map((r) => r.t);

  it("are idempotent: applying again applies nothing", async () => {
    expect(await migrate({ databaseUrl: env.databaseUrl, direction: "up" })).toEqual([]);
    expect(await tables()).toEqual(["checkpoint_sessions", "checkpoints", "pgmigrations"]);
  });

  it("are reversible: down removes the tables, up brings them back", async () => {
    const reverted = await migrate({ databaseUrl: env.databaseUrl, direction: "down", count: Infinity });
    expect(reverted.length).toBeGreaterThan(0);
    expect(await tables()).toEqual(["pgmigrations"]);
    expect(await migrate({ databaseUrl: env.databaseUrl, direction: "up" })).toEqual(reverted.reverse());
    expect(await tables()).toEqual(["checkpoint_sessions", "checkpoints", "pgmigrations"]);
  });

  it("partition both tables by session when the migrating session sets savepoint.checkpoint_partitions", async () => {
    const partitioned = await createTestEnvironment("migrations-partitioned", { checkpointPartitions: 4 });
    try {
      const { rows } = await partitioned.query(
        `SELECT c.relname AS t, pg_get_partkeydef(c.oid) AS key, count(i.inhrelid)::int AS partitions
         FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid LEFT JOIN pg_inherits i ON i.inhparent = c.oid
         GROUP BY c.oid, c.relname ORDER BY 1`,
      );
      expect(rows).toEqual([
        { t: "checkpoint_sessions", key: "HASH (service, session_id)", partitions: 4 },
        { t: "checkpoints", key: "HASH (service, session_id)", partitions: 4 },
      ]);
    } finally {
      await partitioned.dispose();
    }
  });

  it("store states with lz4 compression", async () => {
    const { rows } = await env.query<{ c: string }>(
      "SELECT attcompression AS c FROM pg_attribute WHERE attrelid = 'checkpoints'::regclass AND attname = 'state'",
    );
    expect(rows).toEqual([{ c: "l" }]);
  });
});
