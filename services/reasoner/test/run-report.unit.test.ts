import { describe, expect, it } from "vitest";
import type { ThoughtStep } from "../src/engine/thought-step.js";
import { describeMarket, describeStep } from "../src/run/run-report.js";
import type { MarketSnapshot } from "../src/tools/market-data.js";

const step = (fields: Partial<ThoughtStep>): ThoughtStep => ({
  iteration: 3,
  type: "tool",
  toolCalls: [],
  model: { model: "m", stopReason: "tool_use", calls: 1, retries: [], inputTokens: 0, outputTokens: 0, ms: 0 },
  finishedAt: "2026-11-21T12:00:00.000Z",
  ...fields,
});

describe("run report lines", () => {
  it.each([
    {
      name: "a decision",
      step: step({ type: "decision", decision: { action: "OPEN_LONG", confidence: 0.7, rationale: "trend" } }),
      line: "iteration 3 · decision: OPEN_LONG at confidence 0.7: trend",
    },
    {
      name: "an evaluation",
      step: step({ type: "evaluation", evaluation: { optionId: "A", score: 0.6, pros: ["trend", "volume"], cons: [] } }),
      line: "iteration 3 · evaluation of option A: score 0.6; pros: trend; volume; cons: none",
    },
    {
      name: "options",
      step: step({ type: "options", options: [{ id: "A", action: "OPEN_LONG", thesis: "ride it" }, { id: "B", action: "HOLD", thesis: "wait" }] }),
      line: "iteration 3 · options: A OPEN_LONG (ride it), B HOLD (wait)",
    },
    { name: "a question", step: step({ type: "question", question: { question: "Up?", answer: "Yes." } }), line: "iteration 3 · question: Up? Answer: Yes." },
    {
      name: "tool calls, failed or not",
      step: step({
        toolCalls: [
          { id: "t1", name: "analyze_market", input: { lookback: 5 }, result: { trend: "up" }, isError: false },
          { id: "t2", name: "lookup_position", input: {}, result: "no such symbol", isError: true },
        ],
      }),
      line: 'iteration 3 · tool: analyze_market({"lookback":5}) → {"trend":"up"}; lookup_position({}) failed: no such symbol',
    },
    { name: "a note", step: step({ type: "note", text: "Thinking." }), line: "iteration 3 · note: Thinking." },
    { name: "an empty turn", step: step({ type: "note" }), line: "iteration 3 · note: (no output)" },
  ])("describes $name in one line", ({ step: described, line }) => {
    expect(describeStep(described)).toBe(line);
  });

  it("cuts long values to 300 characters, the checkpoint keeping the whole", () => {
    const line = describeStep(step({ type: "note", text: "x".repeat(1_000) }));
    expect(line).toBe(`iteration 3 · note: ${"x".repeat(299)}…`);
  });

  it.each([
    {
      name: "the broker's, with a position",
      market: { source: "broker", symbol: "AAPL", price: 190, recentCloses: [1, 2], position: { side: "long", qty: 5, entryPrice: 180 }, quotedAt: "2026-11-21T11:59:00.000Z", asOf: "" },
      line: "market from the broker's market data (latest price, recent bars and the position the broker holds now): price 190 quoted at 2026-11-21T11:59:00.000Z, 2 recent closes, position long 5 @ 180",
    },
    {
      name: "the job's, flat",
      market: { source: "job", symbol: "AAPL", price: 190, recentCloses: [], position: null, asOf: "" },
      line: "market from the job's marketContext (no market data configured): price 190, 0 recent closes, position flat",
    },
  ])("says which market an attempt reasons on: $name", ({ market, line }) => {
    expect(describeMarket(market as MarketSnapshot)).toBe(line);
  });
});
