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
});
