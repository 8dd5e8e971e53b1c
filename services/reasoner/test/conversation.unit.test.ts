import { describe, expect, it } from "vitest";
import { buildMessages, iterationPrompt, toolChoiceFor } from "../src/engine/conversation.js";
import { emptyThinkingState, foldSteps } from "../src/engine/thinking-state.js";
import type { ThoughtStep } from "../src/engine/thought-step.js";
import type { MarketSnapshot } from "../src/tools/market-data.js";

const market: MarketSnapshot = { source: "job", symbol: "AAPL", price: 190, recentCloses: [188, 189], position: null, asOf: "2026-11-21T12:00:00.000Z" };

const step = (iteration: number, fields: Partial<ThoughtStep> = {}): ThoughtStep => ({
  iteration,
  type: "tool",
  toolCalls: [{ id: `toolu_${iteration}`, name: "analyze_market", input: {}, result: { trend: "up" }, isError: false }],
  model: { model: "m", stopReason: "tool_use", calls: 1, retries: [], inputTokens: 0, outputTokens: 0, ms: 0 },
  finishedAt: "2026-11-21T12:00:00.000Z",
  ...fields,
});

describe("conversation", () => {
  it.each([
    { iteration: 1, max: 3, choice: { type: "any", disable_parallel_tool_use: true }, prompt: "Iteration 1 of 3: call exactly one tool." },
    { iteration: 2, max: 3, choice: { type: "any", disable_parallel_tool_use: true }, prompt: "Iteration 2 of 3: call exactly one tool." },
    { iteration: 3, max: 3, choice: { type: "tool", name: "decide", disable_parallel_tool_use: true }, prompt: "Iteration 3 of 3, the last: call decide now." },
    { iteration: 1, max: 1, choice: { type: "tool", name: "decide", disable_parallel_tool_use: true }, prompt: "Iteration 1 of 1, the last: call decide now." },
  ])("iteration $iteration of $max asks for $choice.type", ({ iteration, max, choice, prompt }) => {
    expect(toolChoiceFor(iteration, max)).toEqual(choice);
    expect(iterationPrompt(iteration, max)).toBe(prompt);
  });

  it.each([
    { name: "flat, with the closes it has", market, says: ["Market as of 2026-11-21T12:00:00.000Z: price 190, 2 recent closes available.", "Position: none (flat)."] },
    {
      name: "with volume, previous close and a position",
      market: { ...market, previousClose: 187, volume: 1_000, averageVolume: 900, position: { side: "long", qty: 5, entryPrice: 180 } } as MarketSnapshot,
      says: ["price 190, previous close 187, volume 1000 (average 900), 2 recent closes available.", "Position: long 5 @ 180."],
    },
  ])("opens with the agent, the symbol and the market $name", ({ market: shown, says }) => {
    const [opening] = buildMessages({ agentId: "agent-7", symbol: "AAPL", maxIterations: 3, market: shown, state: emptyThinkingState() });
    expect(opening!.role).toBe("user");
    expect(opening!.content).toMatch(/^Decide what agent agent-7 should do in AAPL now\.\n/);
    for (const part of says) expect(opening!.content).toContain(part);
    expect(opening!.content).toMatch(/Iteration 1 of 3: call exactly one tool\.$/);
  });

  it("replays each step as the model's turn, then its tool results and the next iteration's prompt", () => {
    const failed = step(2, { text: "Checking.", toolCalls: [{ id: "toolu_2", name: "lookup_position", input: { symbol: "AAPL" }, result: "no such symbol", isError: true }] });
    const messages = buildMessages({ agentId: "a", symbol: "AAPL", maxIterations: 3, market, state: foldSteps([step(1), failed]) });
    expect(messages.slice(1)).toEqual([
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "analyze_market", input: {} }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: '{"trend":"up"}' }, { type: "text", text: "Iteration 2 of 3: call exactly one tool." }] },
      { role: "assistant", content: [{ type: "text", text: "Checking." }, { type: "tool_use", id: "toolu_2", name: "lookup_position", input: { symbol: "AAPL" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_2", content: "no such symbol", is_error: true }, { type: "text", text: "Iteration 3 of 3, the last: call decide now." }] },
    ]);
  });

  it("replays a turn that said nothing as a placeholder text", () => {
    const messages = buildMessages({ agentId: "a", symbol: "AAPL", maxIterations: 3, market, state: foldSteps([step(1, { type: "note", toolCalls: [] })]) });
    expect(messages[1]).toEqual({ role: "assistant", content: [{ type: "text", text: "(no output)" }] });
    expect(messages[2]).toEqual({ role: "user", content: [{ type: "text", text: "Iteration 2 of 3: call exactly one tool." }] });
  });
});
