import { describe, expect, it } from "vitest";
import { LessonBook, memoryRecallTool } from "../src/tools/memory-recall.js";

const book = new LessonBook();
const recall = (query: string, limit = 3, agentId = "agent-1") => book.recall({ agentId, symbol: "AAPL", query, limit });

describe("memory recall", () => {
  it.each([
    { query: "trading against momentum", first: ["m-short-squeeze", "m-trend-follow"] },
    { query: "volume on a breakout", first: ["m-volume-confirm"] },
    { query: "flat range, should I hold", first: ["m-flat-hold"] },
  ])("recalls first the lessons sharing most words with '$query'", async ({ query, first }) => {
    const ids = (await recall(query)).map((memory) => memory.id);
    expect(ids.slice(0, first.length).sort()).toEqual([...first].sort());
  });

  it("recalls at most the limit, and the same lessons in the same order for the same agent and symbol", async () => {
    expect(await recall("anything at all", 5)).toHaveLength(5);
    expect(await recall("position risk")).toEqual(await recall("position risk"));
  });

  it("breaks ties per agent, so agents do not all recall the same lessons for a question no lesson matches", async () => {
    const orders = await Promise.all(["agent-1", "agent-2", "agent-3", "agent-4"].map(async (agentId) => (await recall("xyz", 10, agentId)).map((memory) => memory.id).join()));
    expect(new Set(orders).size).toBeGreaterThan(1);
  });

  it("ignores words of two letters or fewer", async () => {
    expect((await recall("up on it", 10)).map((memory) => memory.id)).toEqual((await recall("", 10)).map((memory) => memory.id));
  });

  it("is the recall_memories tool, three lessons unless asked, one to five", async () => {
    const tool = memoryRecallTool(book);
    const result = await tool.run(tool.input.parse({ query: "trend" }), { agentId: "agent-1", symbol: "AAPL", market: { source: "job", symbol: "AAPL", price: 1, recentCloses: [], position: null, asOf: "" } });
    expect((result as { memories: unknown[] }).memories).toHaveLength(3);
    expect(tool.input.safeParse({ query: "trend", limit: 6 }).success).toBe(false);
    expect(tool.input.safeParse({ query: " " }).success).toBe(false);
  });
});
