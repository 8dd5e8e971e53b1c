import type { Decision } from "@savepoint/shared";
import { z } from "zod";
import type { JsonValue } from "../tools/agent-tool.js";
import type { Memory } from "../tools/memory-recall.js";
import type { Evaluation, Question, ThoughtStep, TradeOption } from "./thought-step.js";

/**
 * Everything a run has learned so far, folded from its steps. It is never stored whole: each checkpoint holds
 * one step, and a resumed run folds the stored steps back into this. Market data is not part of it; each
 * attempt reads the market afresh.
 */
export interface ThinkingState {
  steps: ThoughtStep[];
  /** Lessons recalled, each once, in the order first recalled. */
  memories: Memory[];
  /** Results of the market tools (analysis, position, memory), in order. */
  toolResults: Array<{ iteration: number; tool: string; result: JsonValue }>;
  questions: Array<Question & { iteration: number }>;
  /** The most recent set of options proposed. */
  options: TradeOption[];
  /** The latest evaluation of each current option, in the order evaluated. */
  evaluations: Evaluation[];
  decision?: Decision;
  /** Model calls (retries included) the steps cost. */
  modelCalls: number;
}

export const THINKING_TOOLS = new Set(["ask_question", "propose_options", "evaluate_option", "decide"]);

const recalledSchema = z.object({ memories: z.array(z.object({ id: z.string(), lesson: z.string(), tags: z.array(z.string()) })) });

export const emptyThinkingState = (): ThinkingState => ({
  steps: [],
  memories: [],
  toolResults: [],
  questions: [],
  options: [],
  evaluations: [],
  modelCalls: 0,
});

/** The state after `step`, which must be the next iteration. */
export function appendStep(state: ThinkingState, step: ThoughtStep): ThinkingState {
  const expected = state.steps.length + 1;
  if (step.iteration !== expected) {
    throw new Error(`step of iteration ${step.iteration} cannot follow ${state.steps.length} steps; expected iteration ${expected}`);
  }
  const next: ThinkingState = {
    ...state,
    steps: [...state.steps, step],
    modelCalls: state.modelCalls + step.model.calls,
  };
  for (const call of step.toolCalls) {
    if (call.isError || THINKING_TOOLS.has(call.name)) continue;
    next.toolResults = [...next.toolResults, { iteration: step.iteration, tool: call.name, result: call.result }];
    const recalled = call.name === "recall_memories" ? recalledSchema.safeParse(call.result) : undefined;
    if (recalled?.success) {
      const known = new Set(next.memories.map((memory) => memory.id));
      next.memories = [...next.memories, ...recalled.data.memories.filter((memory) => !known.has(memory.id))];
    }
  }
  if (step.question) next.questions = [...next.questions, { ...step.question, iteration: step.iteration }];
  if (step.options) {
    next.options = step.options;
    next.evaluations = [];
  }
  if (step.evaluation) {
    const { optionId } = step.evaluation;
    next.evaluations = [...next.evaluations.filter((evaluation) => evaluation.optionId !== optionId), step.evaluation];
  }
  if (step.decision) next.decision = step.decision;
  return next;
}

/** Folds steps 1..n (in any order, each iteration once) back into a thinking state. */
export function foldSteps(steps: ThoughtStep[]): ThinkingState {
  return [...steps].sort((a, b) => a.iteration - b.iteration).reduce(appendStep, emptyThinkingState());
}
