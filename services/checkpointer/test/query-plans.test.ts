import { CHECKPOINT_TABLE_LAYOUTS, createTestEnvironment, type TestEnvironment } from "@savepoint/shared/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PendingSnapshot } from "../src/domain/snapshot-batch.js";
import {
  expiryCandidatesStatement,
  persistBatchStatement,
  persistOneStatement,
  historyStatement,
  latestByOwnerStatement,
  latestBySessionStatement,
  statsStatement,
  trimCandidatesStatement,
  trimStatement,
} from "../src/store/statements.js";

const SESSIONS = 2_000;
const SNAPSHOTS_PER_SESSION = 100;
const LONG_SESSION_SNAPSHOTS = 50_000;

/** A parameter as SQL text, for EXECUTE of a statement prepared from the store's own text. */
function literal(value: unknown): string {
  if (value === null || value === undefined) return "NULL";
  if (typeof value === "number") return String(value);
  if (value instanceof Date) return pg.escapeLiteral(value.toISOString());
  if (Buffer.isBuffer(value)) throw new Error("a binary parameter has no SQL literal; pass its values as an array");
  if (Array.isArray(value)) return pg.escapeLiteral(`{${value.map((item) => JSON.stringify(String(item))).join(",")}}`);
  return pg.escapeLiteral(String(value));
}

/**
 * The plans Postgres uses for one of the store's statements: the one made for these values (each unnamed
 * query, and a named one's first five runs on a connection) and the generic one a named statement may keep
 * afterwards, forced here.
 */
async function plansOf(client: pg.Client, statement: pg.QueryConfig): Promise<{ custom: string; generic: string }> {
  const options = "(ANALYZE, BUFFERS, COSTS OFF)";
  const asText = (rows: Array<Record<string, string>>) => rows.map((row) => row["QUERY PLAN"]).join("\n");
  const custom = asText((await client.query({ text: `EXPLAIN ${options} ${statement.text}`, values: statement.values })).rows);
  await client.query(`PREPARE store_statement AS ${statement.text}`);
  try {
    await client.query("SET plan_cache_mode = force_generic_plan");
    const values = (statement.values ?? []).map(literal).join(", ");
    const generic = asText((await client.query(`EXPLAIN ${options} EXECUTE store_statement(${values})`)).rows);
    return { custom, generic };
  } finally {
    await client.query("RESET plan_cache_mode");
    await client.query("DEALLOCATE store_statement");
  }
}

/** A sort node (not the "Sort Key" of a Merge Append over partitions), or a full scan. */
const SORT_OR_SEQ_SCAN = /(^|->)\s*(Incremental )?Sort\b(?! Key)|Seq Scan/m;
/** A scan of the snapshots table (or of one of its partitions, on a partitioned database). */
const ON_CHECKPOINTS = /on checkpoints(_p\d+)?( |$)/m;

const buffersOf = (plan: string) => Number(/Buffers: shared hit=(\d+)(?: read=(\d+))?/.exec(plan)?.slice(1).reduce((sum, n) => sum + Number(n ?? 0), 0) ?? Infinity);

// The store's statements (imported, never retyped) against a table of 250k snapshots, where reading every row
// of a session or of the table shows in the plan. The patterns also accept the partitions' names, so the file
// passes on a database partitioned by 1764200000001_hash-partitioning as well.
describe.each(CHECKPOINT_TABLE_LAYOUTS)("query plans of the store's statements on $layout", ({ checkpointPartitions }) => {
  let env: TestEnvironment;
  let client: pg.Client;

  beforeAll(async () => {
    env = await createTestEnvironment("query-plans", { checkpointPartitions });
    client = new pg.Client({ connectionString: env.databaseUrl });
    await client.connect();
    // Rows written in bulk, with the counters the store's writes would have kept, in one statement each.
    await client.query(
      `INSERT INTO checkpoints (service, session_id, epoch, seq, owner_id, kind, status, schema_version, taken_at, state, state_bytes)
       SELECT 'bulk', 'session-' || (g % $1::int), g % 3, g / $1::int, 'owner-' || (g % $1::int % 50), 'periodic', 'active', 1, now(), '{"n":1}', 7
       FROM generate_series(0, $1::int * $2::int - 1) g`,
      [SESSIONS, SNAPSHOTS_PER_SESSION],
    );
    await client.query(
      `INSERT INTO checkpoints (service, session_id, epoch, seq, owner_id, kind, status, schema_version, taken_at, state, state_bytes)
       SELECT 'bulk', 'long', g / 10000, g, 'owner-long', 'iteration', 'active', 1, now(), '{"n":1}', 7
       FROM generate_series(0, $1::int - 1) g`,
      [LONG_SESSION_SNAPSHOTS],
    );
    await client.query(
      `INSERT INTO checkpoint_sessions (service, session_id, owner_id, status, latest_epoch, latest_seq,
                                        snapshot_count, snapshot_bytes, oldest_persisted_at, newest_persisted_at, updated_at)
       SELECT service, session_id, min(owner_id), CASE WHEN hashtext(session_id) % 4 = 0 THEN 'completed' ELSE 'active' END,
              max(epoch), max(seq), count(*), sum(state_bytes), min(persisted_at), max(persisted_at),
              now() - (hashtext(session_id) % 1000) * interval '1 hour'
       FROM checkpoints GROUP BY service, session_id`,
    );
    await client.query("VACUUM ANALYZE checkpoints");
    await client.query("VACUUM ANALYZE checkpoint_sessions");
  });
  afterAll(async () => {
    await client?.end();
    await env?.dispose();
  });

  const walksThePrimaryKeyBackwards = (plan: string) => {
    expect(plan).toMatch(/Index Scan Backward using checkpoints(_p\d+)?_pkey on checkpoints/);
    expect(plan).not.toMatch(SORT_OR_SEQ_SCAN);
  };

  it("latest by session: one backward lookup of the primary key, even in a session of 50,000 snapshots", async () => {
    for (const sessionId of ["long", "session-7"]) {
      const plans = await plansOf(client, latestBySessionStatement("bulk", sessionId));
      for (const plan of [plans.custom, plans.generic]) {
        walksThePrimaryKeyBackwards(plan);
        expect(buffersOf(plan)).toBeLessThan(10);
      }
    }
  });

  it("history: the first page and a page from the middle of a long session read only their rows", async () => {
    const pages = [
      historyStatement("bulk", "long", 20),
      historyStatement("bulk", "long", 20, { epoch: 2, seq: 25_000 }),
      historyStatement("bulk", "long", 500, { epoch: 1, seq: 10_000 }),
    ];
    for (const statement of pages) {
      const plans = await plansOf(client, statement);
      for (const plan of [plans.custom, plans.generic]) {
        walksThePrimaryKeyBackwards(plan);
      }
      expect(buffersOf(plans.custom)).toBeLessThan(Number(statement.values!.at(-1)) / 2 + 20);
    }
  });

  it("latest by owner: the owner's sessions newest first, then one backward lookup in the session found", async () => {
    for (const statuses of [undefined, ["active" as const, "interrupted" as const]]) {
      const plans = await plansOf(client, latestByOwnerStatement("bulk", "owner-long", statuses));
      for (const plan of [plans.custom, plans.generic]) {
        expect(plan).toMatch(/Index Scan using checkpoint_sessions(_p\d+)?_owner_idx on checkpoint_sessions/);
        walksThePrimaryKeyBackwards(plan);
        expect(buffersOf(plan)).toBeLessThan(20);
      }
    }
  });

  it("stats reads the sessions' counters and never the snapshots", async () => {
    for (const filter of [{}, { service: "bulk" }, { service: "bulk", sessionId: "long" }]) {
      const { custom } = await plansOf(client, statsStatement(filter));
      expect(custom).toMatch(/on checkpoint_sessions/);
      expect(custom).not.toMatch(ON_CHECKPOINTS);
    }
    const { rows } = await client.query(statsStatement({}));
    expect(rows[0]).toMatchObject({ total: SESSIONS * SNAPSHOTS_PER_SESSION + LONG_SESSION_SNAPSHOTS, sessions: SESSIONS + 1 });
  });

  it("retention finds its candidates in the partial indexes of finished sessions, not by visiting every session", async () => {
    const trim = await plansOf(client, trimCandidatesStatement(100, { limit: 500 }));
    const expiry = await plansOf(client, expiryCandidatesStatement(new Date(Date.now() - 168 * 3_600_000), { limit: 500 }));
    for (const plan of [trim.custom, trim.generic]) expect(plan).toMatch(/(Index (Only )?Scan using|Bitmap Index Scan on) checkpoint_sessions(_p\d+)?_trim_idx/);
    for (const plan of [expiry.custom, expiry.generic]) expect(plan).toMatch(/(Index (Only )?Scan using|Bitmap Index Scan on) checkpoint_sessions(_p\d+)?_expiry_idx/);
    for (const plan of [trim.custom, expiry.custom]) {
      expect(plan).not.toMatch(/Seq Scan/);
      expect(plan).not.toMatch(ON_CHECKPOINTS);
    }
  });

  it("a write locks and reads each of its sessions through the primary key, never scanning the sessions", async () => {
    const pending = (sessionId: string, seq: number): PendingSnapshot => ({
      head: { v: 1, service: "bulk", sessionId, epoch: 2, seq, kind: "periodic", status: "active", schemaVersion: 1, takenAt: new Date().toISOString() },
      stateJson: `{"seq":${seq}}`,
    });
    const batch = Array.from({ length: 32 }, (_, index) => pending(`session-${index * 61}`, 1_000 + index));
    const batchStatement = persistBatchStatement(batch);
    // The states go as a binary json[] parameter, which EXECUTE cannot be given; the same texts as a text array.
    batchStatement.values![9] = batch.map((snapshot) => snapshot.stateJson);
    const statements = [persistOneStatement(pending("session-11", 1_000)), batchStatement];
    for (const statement of statements) {
      await client.query("BEGIN");
      try {
        const { custom, generic } = await plansOf(client, statement);
        for (const plan of [custom, generic]) {
          expect(plan).toMatch(/LockRows/);
          expect(plan).toMatch(/Index Scan using checkpoint_sessions(_p\d+)?_pkey on checkpoint_sessions/);
          // (A partition of this fixture is a few pages, which Postgres may well read whole.)
          expect(plan).not.toMatch(/Seq Scan on checkpoint_sessions /);
        }
      } finally {
        await client.query("ROLLBACK");
      }
    }
  });

  it("a trim finds the positions to delete once, through the primary key, then deletes each by its key", async () => {
    await client.query("BEGIN");
    try {
      const { custom, generic } = await plansOf(client, trimStatement([{ service: "bulk", session_id: "long", keep: 100, budget: 2_000 }], undefined));
      for (const plan of [custom, generic]) {
        expect(plan).toMatch(/CTE doomed/);
        expect(plan).toMatch(/Index Cond: \(\(service = d\.service\) AND \(session_id = d\.session_id\) AND \(epoch = d\.epoch\) AND \(seq = d\.seq\)\)/);
        expect(plan).not.toMatch(/Seq Scan on checkpoints|Rows Removed by Join Filter/);
        // Searching the positions again for every row of the session read millions of buffers here.
        expect(buffersOf(plan)).toBeLessThan(50_000);
      }
    } finally {
      await client.query("ROLLBACK");
    }
  });
});
