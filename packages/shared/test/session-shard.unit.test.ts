import { describe, expect, it } from "vitest";
import { sessionShard } from "../src/jobs.js";

describe("sessionShard", () => {
  it("always gives a session the same shard, and spreads sessions over every shard", () => {
    expect(sessionShard("trader", "session-7", 4)).toBe(sessionShard("trader", "session-7", 4));
    const used = new Set(Array.from({ length: 100 }, (_, index) => sessionShard("trader", `session-${index}`, 4)));
    expect([...used].sort()).toEqual([0, 1, 2, 3]);
    expect(sessionShard("a", "bc", 1000)).not.toBe(sessionShard("ab", "c", 1000));
  });
});
