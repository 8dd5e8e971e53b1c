import { describe, expect, it } from "vitest";
import { snapshot, useRunningCheckpointer } from "./support.js";

describe("storage", () => {
  const stack = useRunningCheckpointer("storage");

  it("stores a large state compressed", async () => {
    const positions = Array.from({ length: 200 }, (_, i) => ({ symbol: `SYM${i % 20}`, qty: 10, side: "long", entryPrice: 100 + i }));
    await stack.client.saveAndConfirm(snapshot({ sessionId: "large", seq: 1, state: { positions } }));
    const { rows } = await stack.env.query<{ stored: number; raw: number }>(
      "SELECT pg_column_size(state) AS stored, octet_length(state::text) AS raw FROM checkpoints WHERE session_id = 'large'",
    );
    expect(rows[0]!.raw).toBeGreaterThan(10_000);
    expect(rows[0]!.stored).toBeLessThan(rows[0]!.raw / 2);
  });

  it("stores a state exactly as the producer serialized it, escapes and key order included", async () => {
    const state = { z: 1, a: "line\nbreak, tab\t, quote \" and ✓", nested: { "\\u0041 is text": [1.5, null, true] } };
    await stack.client.saveAndConfirm(snapshot({ sessionId: "verbatim", seq: 1, state }));
    const { rows } = await stack.env.query<{ text: string }>("SELECT state::text AS text FROM checkpoints WHERE session_id = 'verbatim'");
    expect(rows[0]!.text).toBe(JSON.stringify(state));
    expect((await stack.client.latest({ service: "trader", sessionId: "verbatim" }))?.state).toEqual(state);
  });

  it("answers latest with one backward index lookup when the table holds many sessions", async () => {
    // A fixture of 200k rows written straight into the test database, to give the planner a real table.
    await stack.env.query(`
      INSERT INTO checkpoints (service, session_id, epoch, seq, kind, status, schema_version, taken_at, state)
      SELECT 'bulk', 'session-' || (g % 2000), 0, g, 'periodic', 'active', 1, now(), '{}'::json
      FROM generate_series(1, 200000) g`);
    await stack.env.query("ANALYZE checkpoints");
    const { rows } = await stack.env.query<{ "QUERY PLAN": string }>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT)
       SELECT * FROM checkpoints c WHERE service = 'bulk' AND session_id = 'session-7' ORDER BY epoch DESC, seq DESC LIMIT 1`,
    );
    const plan = rows.map((row) => row["QUERY PLAN"]).join("\n");
    expect(plan).toMatch(/Index Scan Backward using checkpoints_pkey/);
    expect(plan).not.toMatch(/Sort|Seq Scan/);
    const buffers = Number(/Buffers: shared hit=(\d+)/.exec(plan)?.[1] ?? Infinity);
    expect(buffers).toBeLessThan(10);
  });
});
