import type { ModelUsage } from "../src/engine/thought-step.js";
import { ModelInterruptedError, type AssistantBlock, type ModelTurn, type ModelTurnRequest, type ReasoningModel } from "../src/model/reasoning-model.js";
import type { JsonValue } from "../src/tools/agent-tool.js";

/**
 * One scripted answer: the turn's content blocks (with usage defaulted), a whole turn, an error to throw,
 * or "hang", which answers nothing until the call's signal aborts (a call cut by a shutdown).
 */
export type ScriptedAnswer = AssistantBlock[] | ModelTurn | Error | "hang";

export const usage = (fields: Partial<ModelUsage> = {}): ModelUsage => ({
  model: "scripted",
  stopReason: "tool_use",
  calls: 1,
  retries: [],
  inputTokens: 0,
  outputTokens: 0,
  ms: 0,
  ...fields,
});

let toolUseIds = 0;
export const toolUse = (name: string, input: JsonValue = {}): AssistantBlock => ({ type: "tool_use", id: `toolu_scripted_${++toolUseIds}`, name, input });
export const text = (value: string): AssistantBlock => ({ type: "text", text: value });

/**
 * An in-memory `ReasoningModel` that answers each call with the next scripted answer and keeps every request
 * it was sent, for tests of the chain of thought without the model server. Running out of script is an
 * error naming the call, so a test never passes on answers it did not write.
 */
export class ScriptedModel implements ReasoningModel {
  readonly requests: ModelTurnRequest[] = [];
  private readonly answers: ScriptedAnswer[];

  constructor(answers: ScriptedAnswer[]) {
    this.answers = [...answers];
  }

  /** Answers not yet used. */
  get remaining(): number {
    return this.answers.length;
  }

  async next(request: ModelTurnRequest, signal: AbortSignal): Promise<ModelTurn> {
    this.requests.push(structuredClone(request));
    if (signal.aborted) throw new ModelInterruptedError("aborted before the call");
    const answer = this.answers.shift();
    if (answer === undefined) throw new Error(`the scripted model has no answer for call ${this.requests.length}`);
    if (answer === "hang") {
      return new Promise((_, reject) => {
        signal.addEventListener("abort", () => reject(new ModelInterruptedError("aborted during the call")), { once: true });
      });
    }
    if (answer instanceof Error) throw answer;
    return Array.isArray(answer) ? { content: answer, usage: usage() } : answer;
  }
}
