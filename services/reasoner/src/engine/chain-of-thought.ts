import type { Tool } from "@anthropic-ai/sdk/resources/messages";
import { describeIssues, type Decision } from "@savepoint/shared";
import type { z } from "zod";
import { ModelInterruptedError, type ModelTurn, type ReasoningModel } from "../model/reasoning-model.js";
import { toolDefinition, type AgentTool, type JsonValue, type ToolContext } from "../tools/agent-tool.js";
import type { MarketSnapshot } from "../tools/market-data.js";
import { buildMessages, SYSTEM_PROMPT, toolChoiceFor } from "./conversation.js";
import { decisionFromText, fallbackDecision, parseDecision } from "./decision.js";
import { appendStep, type ThinkingState } from "./thinking-state.js";
import {
  askQuestionInputSchema,
  decideInputSchema,
  evaluateOptionInputSchema,
  proposeOptionsInputSchema,
  type Evaluation,
  type Question,
  type StepType,
  type ThoughtStep,
  type ToolCall,
  type TradeOption,
} from "./thought-step.js";

const THINKING_TOOL_DEFINITIONS: Tool[] = [
  toolDefinition({
    name: "ask_question",
    description: "Pose a question that matters for this decision and answer it from the evidence gathered so far.",
    input: askQuestionInputSchema,
  }),
  toolDefinition({
    name: "propose_options",
    description: "Propose two to five concrete options (each an action with its thesis) to evaluate before deciding.",
    input: proposeOptionsInputSchema,
  }),
  toolDefinition({
    name: "evaluate_option",
    description: "Evaluate one proposed option: a score from 0 to 1 with its pros and cons.",
    input: evaluateOptionInputSchema,
  }),
  toolDefinition({
    name: "decide",
    description:
      "Make the final decision and end the reasoning: action OPEN_LONG, OPEN_SHORT, CLOSE or HOLD, confidence from 0 to 1, and a rationale citing the evidence.",
    input: decideInputSchema,
  }),
];

/** The run was asked to stop (shutdown, lost job) before or during `atIteration`, which did not happen. */
export class RunInterruptedError extends Error {
  override name = "RunInterruptedError";
  constructor(
    readonly atIteration: number,
    readonly reason: unknown,
  ) {
    super(`run interrupted at iteration ${atIteration}`);
  }
}

export interface RunInput {
  sessionId: string;
  agentId: string;
  symbol: string;
  maxIterations: number;
  /** The market as read by this attempt. */
  market: MarketSnapshot;
  /** Where the run stands: empty when fresh, folded from the checkpoint when resumed. */
  restored: ThinkingState;
}

export interface RunHooks {
  /** Aborting stops the run: no further iteration starts once the one under way is done and saved. */
  signal: AbortSignal;
  /**
   * Aborting cancels the model call in flight. Defaults to `signal`; a shutdown aborts it later than `signal`,
   * so an answer already on its way back is kept and checkpointed instead of being paid for twice.
   */
  callSignal?: AbortSignal;
  /** Called after each iteration, before the next starts; the run waits for it (that is where it is saved). */
  onStep(step: ThoughtStep, state: ThinkingState): Promise<void>;
}

export interface RunOutcome {
  decision: Decision;
  state: ThinkingState;
  /** No valid decision came within maxIterations; `decision` is the safe default. */
  limitReached: boolean;
  /** Model calls this run made (retries included); restored iterations cost none. */
  modelCalls: number;
}

interface ToolOutcome {
  result: JsonValue;
  isError: boolean;
  question?: Question;
  options?: TradeOption[];
  evaluation?: Evaluation;
  decision?: Decision;
  problem?: string;
}

const error = (message: string): ToolOutcome => ({ result: message, isError: true, problem: message });

/**
 * The iteration loop: each iteration is one model turn (one tool call: a market tool, a question, options,
 * an evaluation, or the decision), bounded by maxIterations, the last of which must be a decision.
 */
export class ChainOfThought {
  private readonly marketTools: Map<string, AgentTool>;
  private readonly definitions: Tool[];

  constructor(
    private readonly model: ReasoningModel,
    marketTools: AgentTool[],
    private readonly now: () => Date = () => new Date(),
  ) {
    this.marketTools = new Map(marketTools.map((tool) => [tool.name, tool]));
    this.definitions = [...marketTools.map(toolDefinition), ...THINKING_TOOL_DEFINITIONS];
  }

  async run(input: RunInput, hooks: RunHooks): Promise<RunOutcome> {
    let state = input.restored;
    let modelCalls = 0;
    let lastProblem: string | undefined;
    const context: ToolContext = { agentId: input.agentId, symbol: input.symbol, market: input.market };
    while (!state.decision && state.steps.length < input.maxIterations) {
      const iteration = state.steps.length + 1;
      if (hooks.signal.aborted) throw new RunInterruptedError(iteration, hooks.signal.reason);
      let turn: ModelTurn;
      try {
        turn = await this.model.next(
          {
            system: SYSTEM_PROMPT,
            messages: buildMessages({ ...input, state }),
            tools: this.definitions,
            toolChoice: toolChoiceFor(iteration, input.maxIterations),
            sessionId: input.sessionId,
          },
          hooks.callSignal ?? hooks.signal,
        );
      } catch (failure) {
        if (failure instanceof ModelInterruptedError) throw new RunInterruptedError(iteration, hooks.signal.reason ?? hooks.callSignal?.reason);
        throw failure;
      }
      modelCalls += turn.usage.calls;
      const { step, problem } = await this.interpret(turn, iteration, context, state);
      lastProblem = problem;
      state = appendStep(state, step);
      await hooks.onStep(step, state);
    }
    if (state.decision) return { decision: state.decision, state, limitReached: false, modelCalls };
    return { decision: fallbackDecision(input.maxIterations, lastProblem), state, limitReached: true, modelCalls };
  }

  private async interpret(
    turn: ModelTurn,
    iteration: number,
    context: ToolContext,
    state: ThinkingState,
  ): Promise<{ step: ThoughtStep; problem: string | undefined }> {
    const text = turn.content
      .flatMap((block) => (block.type === "text" ? [block.text] : []))
      .join("\n")
      .trim();
    const toolCalls: ToolCall[] = [];
    // What the turn's calls produced; with several calls of a kind (parallel tool use), the last one counts.
    let found: Omit<ToolOutcome, "result" | "isError"> = {};
    let options = state.options;
    for (const block of turn.content) {
      if (block.type !== "tool_use") continue;
      const { result, isError, ...produced } = await this.execute(block.name, block.input, context, options);
      toolCalls.push({ id: block.id, name: block.name, input: block.input, result, isError });
      if (produced.options) options = produced.options;
      found = { ...found, ...produced };
    }
    const decision = found.decision ?? (toolCalls.length === 0 && text ? decisionFromText(text) : undefined);
    const type: StepType = decision
      ? "decision"
      : found.evaluation
        ? "evaluation"
        : found.options
          ? "options"
          : found.question
            ? "question"
            : toolCalls.length
              ? "tool"
              : "note";
    const step: ThoughtStep = {
      iteration,
      type,
      ...(text ? { text } : {}),
      toolCalls,
      ...(found.question ? { question: found.question } : {}),
      ...(found.options ? { options: found.options } : {}),
      ...(found.evaluation ? { evaluation: found.evaluation } : {}),
      ...(decision ? { decision } : {}),
      model: turn.usage,
      finishedAt: this.now().toISOString(),
    };
    const problem = found.problem ?? (toolCalls.length === 0 && !decision ? `iteration ${iteration} called no tool` : undefined);
    return { step, problem };
  }

  private async execute(name: string, input: JsonValue, context: ToolContext, options: TradeOption[]): Promise<ToolOutcome> {
    switch (name) {
      case "ask_question": {
        const parsed = askQuestionInputSchema.safeParse(input);
        if (!parsed.success) return error(`ask_question: ${describeIssues(parsed.error)}`);
        return { result: { recorded: "question" }, isError: false, question: parsed.data };
      }
      case "propose_options": {
        const parsed = proposeOptionsInputSchema.safeParse(input);
        if (!parsed.success) return error(`propose_options: ${describeIssues(parsed.error)}`);
        const ids = parsed.data.options.map((option) => option.id).join(", ");
        return { result: { recorded: `options ${ids}`, next: "evaluate each option with evaluate_option" }, isError: false, options: parsed.data.options };
      }
      case "evaluate_option": {
        const parsed = evaluateOptionInputSchema.safeParse(input);
        if (!parsed.success) return error(`evaluate_option: ${describeIssues(parsed.error)}`);
        if (!options.some((option) => option.id === parsed.data.optionId)) {
          const known = options.map((option) => option.id).join(", ");
          return error(
            `evaluate_option: no option "${parsed.data.optionId}" was proposed; ${known ? `proposed options are ${known}` : "propose options first with propose_options"}`,
          );
        }
        return { result: { recorded: `evaluation of ${parsed.data.optionId}` }, isError: false, evaluation: parsed.data };
      }
      case "decide": {
        const parsed = parseDecision(input);
        if (!parsed.ok) return error(`decide: ${parsed.problem}`);
        return { result: { recorded: "decision" }, isError: false, decision: parsed.decision };
      }
    }
    const tool = this.marketTools.get(name);
    if (!tool) return error(`unknown tool "${name}"; available tools: ${this.definitions.map((definition) => definition.name).join(", ")}`);
    const parsed = (tool.input as z.ZodType).safeParse(input ?? {});
    if (!parsed.success) return error(`${name}: ${describeIssues(parsed.error)}`);
    try {
      return { result: await tool.run(parsed.data, context), isError: false };
    } catch (failure) {
      return error(`${name} failed: ${(failure as Error).message}`);
    }
  }
}
