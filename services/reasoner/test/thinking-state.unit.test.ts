import { describe, expect, it } from "vitest";
import { appendStep, emptyThinkingState, foldSteps } from "../src/engine/thinking-state.js";
import type { ThoughtStep, ToolCall } from "../src/engine/thought-step.js";

const call = (name: string, result: ToolCall["result"], isError = false): ToolCall => ({ id: `toolu_${name}`, name, input: {}, result, isError });
const recalled = (...ids: string[]) => ({ memories: ids.map((id) => ({ id, lesson: `lesson ${id}`, tags: ["trend"] })) });

function step(iteration: number, fields: Partial<ThoughtStep> = {}): ThoughtStep {
  return {
    iteration,
    type: "tool",
    toolCalls: [],
    model: { model: "m", stopReason: "tool_use", calls: 1, retries: [], inputTokens: 0, outputTokens: 0, ms: 0 },
    finishedAt: "2026-11-21T12:00:00.000Z",
    ...fields,
  };
}

const options = [
  { id: "A", action: "OPEN_LONG", thesis: "trend" },
  { id: "B", action: "HOLD", thesis: "wait" },
] as const;
const evaluation = (optionId: string, score: number) => ({ optionId, score, pros: [], cons: [] });

describe("thinking state", () => {
  it.each([
    {
      name: "keeps market tools' results in order, not the thinking tools' nor failed calls",
      steps: [
        step(1, { toolCalls: [call("analyze_market", { trend: "up" })] }),
        step(2, { toolCalls: [call("ask_question", { recorded: "question" })] }),
        step(3, { toolCalls: [call("lookup_position", "no such symbol", true)] }),
        step(4, { toolCalls: [call("lookup_position", { position: null })] }),
      ],
      expected: {
        toolResults: [
          { iteration: 1, tool: "analyze_market", result: { trend: "up" } },
          { iteration: 4, tool: "lookup_position", result: { position: null } },
        ],
      },
    },
    {
      name: "keeps each recalled memory once, in the order first recalled",
      steps: [step(1, { toolCalls: [call("recall_memories", recalled("m1", "m2"))] }), step(2, { toolCalls: [call("recall_memories", recalled("m2", "m3"))] })],
      expected: { memories: recalled("m1", "m2", "m3").memories },
    },
    {
      name: "ignores a recall result that is not a list of memories",
      steps: [step(1, { toolCalls: [call("recall_memories", { unexpected: true })] })],
      expected: { memories: [], toolResults: [{ iteration: 1, tool: "recall_memories", result: { unexpected: true } }] },
    },
    {
      name: "keeps questions with the iteration that asked them",
      steps: [step(1, { type: "question", question: { question: "Up?", answer: "Yes." } })],
      expected: { questions: [{ question: "Up?", answer: "Yes.", iteration: 1 }] },
    },
    {
      name: "keeps the latest evaluation of each option, in the order evaluated",
      steps: [
        step(1, { type: "options", options: [...options] }),
        step(2, { type: "evaluation", evaluation: evaluation("A", 0.5) }),
        step(3, { type: "evaluation", evaluation: evaluation("B", 0.4) }),
        step(4, { type: "evaluation", evaluation: evaluation("A", 0.8) }),
      ],
      expected: { options, evaluations: [evaluation("B", 0.4), evaluation("A", 0.8)] },
    },
    {
      name: "forgets the evaluations of options proposed again",
      steps: [step(1, { type: "options", options: [...options] }), step(2, { type: "evaluation", evaluation: evaluation("A", 0.5) }), step(3, { type: "options", options: [options[1]!, { id: "C", action: "CLOSE", thesis: "exit" }] })],
      expected: { evaluations: [], options: [options[1], { id: "C", action: "CLOSE", thesis: "exit" }] },
    },
    {
      name: "takes the decision and counts the model calls of every step",
      steps: [step(1, { model: { ...step(1).model, calls: 3 } }), step(2, { type: "decision", decision: { action: "HOLD", confidence: 0.5, rationale: "flat" } })],
      expected: { decision: { action: "HOLD", confidence: 0.5, rationale: "flat" }, modelCalls: 4 },
    },
  ])("$name", ({ steps, expected }) => {
    const state = steps.reduce(appendStep, emptyThinkingState());
    expect(state).toMatchObject({ steps, ...expected });
  });

  it("refuses a step that is not the next iteration, naming both", () => {
    expect(() => appendStep(emptyThinkingState(), step(2))).toThrow("step of iteration 2 cannot follow 0 steps; expected iteration 1");
    expect(() => appendStep(foldSteps([step(1)]), step(1))).toThrow("step of iteration 1 cannot follow 1 steps; expected iteration 2");
  });

  it("folds stored steps in any order into the state appending them gave", () => {
    const steps = [step(1, { toolCalls: [call("recall_memories", recalled("m1"))] }), step(2, { type: "options", options: [...options] }), step(3, { type: "evaluation", evaluation: evaluation("A", 0.5) })];
    expect(foldSteps([steps[2]!, steps[0]!, steps[1]!])).toEqual(steps.reduce(appendStep, emptyThinkingState()));
  });

  it("does not change the state it appends to", () => {
    const before = foldSteps([step(1)]);
    const copy = structuredClone(before);
    appendStep(before, step(2, { type: "options", options: [...options] }));
    expect(before).toEqual(copy);
  });
});
