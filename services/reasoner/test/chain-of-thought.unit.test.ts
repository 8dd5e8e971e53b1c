import type { ToolResultBlockParam } from "@anthropic-ai/sdk/resources/messages";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ChainOfThought, RunInterruptedError, type RunHooks } from "../src/engine/chain-of-thought.js";
import { emptyThinkingState, foldSteps, type ThinkingState } from "../src/engine/thinking-state.js";
import type { ThoughtStep } from "../src/engine/thought-step.js";
import { ModelRequestError, type ModelTurnRequest } from "../src/model/reasoning-model.js";
import type { AgentTool } from "../src/tools/agent-tool.js";
import type { MarketSnapshot } from "../src/tools/market-data.js";
import { ScriptedModel, text, toolUse, usage, type ScriptedAnswer } from "./scripted-model.js";

/** The chain of thought on a scripted model: every branch of the loop without the model server. */

const NOW = new Date("2026-11-21T12:00:00.000Z");
const MARKET: MarketSnapshot = { source: "job", symbol: "AAPL", price: 190, recentCloses: [188, 189, 190], position: null, asOf: NOW.toISOString() };

const quoteTool: AgentTool = {
  name: "quote",
  description: "The last price.",
  input: z.strictObject({ symbol: z.string().optional() }),
  run: async (_input, context) => ({ price: context.market.price }),
};
const brokenTool: AgentTool = {
  name: "broken",
  description: "Always fails.",
  input: z.strictObject({}),
  run: async () => {
    throw new Error("the feed is down");
  },
};

const question = { question: "Is the trend up?", answer: "Yes, three higher closes." };
const options = {
  options: [
    { id: "A", action: "OPEN_LONG", thesis: "Ride the trend." },
    { id: "B", action: "HOLD", thesis: "Wait for confirmation." },
  ],
};
const evaluation = { optionId: "A", score: 0.7, pros: ["trend"], cons: [] };
const decision = { action: "OPEN_LONG", confidence: 0.7, rationale: "Three higher closes." };

/** A whole chain of the five kinds of step, the decision last. */
const WHOLE_CHAIN: ScriptedAnswer[] = [
  [toolUse("quote")],
  [text("Thinking about the trend."), toolUse("ask_question", question)],
  [toolUse("propose_options", options)],
  [toolUse("evaluate_option", evaluation)],
  [toolUse("decide", decision)],
];

interface Run {
  model: ScriptedModel;
  reported: ThoughtStep[];
  states: ThinkingState[];
}

function running(answers: ScriptedAnswer[], maxIterations = 5, restored = emptyThinkingState(), hooks: Partial<RunHooks> = {}) {
  const model = new ScriptedModel(answers);
  const run: Run = { model, reported: [], states: [] };
  const chain = new ChainOfThought(model, [quoteTool, brokenTool], () => NOW);
  const outcome = chain.run(
    { sessionId: "think.agent-7.1", agentId: "agent-7", symbol: "AAPL", maxIterations, market: MARKET, restored },
    {
      signal: new AbortController().signal,
      onStep: async (step, state) => {
        run.reported.push(step);
        run.states.push(state);
      },
      ...hooks,
    },
  );
  return { ...run, outcome };
}

async function runToEnd(answers: ScriptedAnswer[], maxIterations = 5, restored = emptyThinkingState()) {
  const run = running(answers, maxIterations, restored);
  return { ...run, outcome: await run.outcome };
}

/** The tool results the model was sent after the last step, in its next request. */
const lastToolResults = (request: ModelTurnRequest) =>
  (request.messages.at(-1)!.content as Array<{ type: string }>).filter((block): block is ToolResultBlockParam => block.type === "tool_result");

describe("chain of thought", () => {
  it("runs to a decision, one model turn per iteration, reporting each step and the state after it", async () => {
    const { outcome, reported, states, model } = await runToEnd(WHOLE_CHAIN);

    expect(reported.map((step) => [step.iteration, step.type])).toEqual([
      [1, "tool"],
      [2, "question"],
      [3, "options"],
      [4, "evaluation"],
      [5, "decision"],
    ]);
    expect(outcome).toEqual({ decision, state: states.at(-1), limitReached: false, modelCalls: 5 });
    expect(states.map((state) => state.steps.length)).toEqual([1, 2, 3, 4, 5]);
    expect(outcome.state).toMatchObject({ toolResults: [{ iteration: 1, tool: "quote", result: { price: 190 } }], questions: [{ ...question, iteration: 2 }], evaluations: [evaluation] });
    expect(reported[1]).toMatchObject({ text: "Thinking about the trend.", question, finishedAt: NOW.toISOString() });
    expect(model.remaining).toBe(0);
  });

  it("asks for any tool until the last iteration, and for decide on it", async () => {
    const { model } = await runToEnd(WHOLE_CHAIN);
    expect(model.requests.map((request) => request.toolChoice)).toEqual([
      ...Array(4).fill({ type: "any", disable_parallel_tool_use: true }),
      { type: "tool", name: "decide", disable_parallel_tool_use: true },
    ]);
    expect(model.requests[0]!.tools.map((tool) => tool.name)).toEqual(["quote", "broken", "ask_question", "propose_options", "evaluate_option", "decide"]);
    expect(new Set(model.requests.map((request) => request.sessionId))).toEqual(new Set(["think.agent-7.1"]));
  });

  it("sends the whole conversation each turn: the opening, then each step's turn and its tool results", async () => {
    const { model } = await runToEnd(WHOLE_CHAIN);
    expect(model.requests.map((request) => request.messages.length)).toEqual([1, 3, 5, 7, 9]);
    expect(model.requests[0]!.messages[0]).toMatchObject({ role: "user", content: expect.stringContaining("Decide what agent agent-7 should do in AAPL now.") });
    expect(lastToolResults(model.requests[1]!)).toEqual([{ type: "tool_result", tool_use_id: expect.any(String), content: '{"price":190}' }]);
  });

  it("resumes from restored steps with only the remaining turns, sending what an uninterrupted run sends", async () => {
    const whole = await runToEnd(WHOLE_CHAIN);
    const resumed = await runToEnd(WHOLE_CHAIN.slice(2), 5, foldSteps(whole.reported.slice(0, 2)));

    expect(resumed.reported.map((step) => step.iteration)).toEqual([3, 4, 5]);
    expect(resumed.outcome.modelCalls).toBe(3);
    expect(resumed.outcome.decision).toEqual(whole.outcome.decision);
    expect(resumed.model.requests).toEqual(whole.model.requests.slice(2).map((request) => ({ ...request, messages: expect.any(Array) })));
    // Tool-use ids differ between the two scripts; the turns' shape and order are the same.
    expect(resumed.model.requests[0]!.messages.map((message) => message.role)).toEqual(whole.model.requests[2]!.messages.map((message) => message.role));
  });

  it("makes no model call for a run restored with its decision", async () => {
    const whole = await runToEnd(WHOLE_CHAIN);
    const { outcome, model, reported } = await runToEnd([], 5, foldSteps(whole.reported));
    expect(outcome).toMatchObject({ decision, limitReached: false, modelCalls: 0 });
    expect([model.requests, reported]).toEqual([[], []]);
  });

  it("counts every model call an iteration cost, retries included", async () => {
    const { outcome, reported } = await runToEnd([{ content: [toolUse("decide", decision)], usage: usage({ calls: 3 }) }], 1);
    expect(outcome.modelCalls).toBe(3);
    expect(outcome.state.modelCalls).toBe(3);
    expect(reported[0]!.model.calls).toBe(3);
  });

  it.each([
    { name: "prose with a decision in JSON, no tool call", answer: [text(`I'd go with ${JSON.stringify(decision)}.`)], type: "decision", decided: decision },
    { name: "prose with a decision in JSON beside a tool call", answer: [text(JSON.stringify(decision)), toolUse("quote")], type: "tool", decided: undefined },
    { name: "prose alone", answer: [text("Let me think.")], type: "note", decided: undefined },
    { name: "a decision after options in the same turn", answer: [toolUse("propose_options", options), toolUse("decide", decision)], type: "decision", decided: decision },
    { name: "an evaluation of an option proposed in the same turn", answer: [toolUse("propose_options", options), toolUse("evaluate_option", evaluation)], type: "evaluation", decided: undefined },
    { name: "a question and a market tool", answer: [toolUse("quote"), toolUse("ask_question", question)], type: "question", decided: undefined },
  ])("types a turn of $name as $type", async ({ answer, type, decided }) => {
    const { reported, outcome } = await runToEnd([answer as ScriptedAnswer], 1);
    expect(reported[0]!.type).toBe(type);
    expect(reported[0]!.decision).toEqual(decided);
    expect(outcome.limitReached).toBe(decided === undefined);
  });

  it.each([
    { name: "an unknown tool", call: toolUse("trade_now"), problem: 'unknown tool "trade_now"; available tools: quote, broken, ask_question, propose_options, evaluate_option, decide' },
    { name: "a market tool's invalid input", call: toolUse("quote", { ticker: "AAPL" }), problem: /^quote: / },
    { name: "a market tool that fails", call: toolUse("broken"), problem: "broken failed: the feed is down" },
    { name: "a question without an answer", call: toolUse("ask_question", { question: "Why?" }), problem: /^ask_question: answer/ },
    { name: "a single option", call: toolUse("propose_options", { options: options.options.slice(0, 1) }), problem: /^propose_options: .*at least 2 options/ },
    { name: "an evaluation before any option", call: toolUse("evaluate_option", evaluation), problem: 'evaluate_option: no option "A" was proposed; propose options first with propose_options' },
    { name: "a confidence given as a percentage", call: toolUse("decide", { ...decision, confidence: 70 }), problem: /^decide: confidence: must be between 0 and 1\. Call decide with/ },
  ])("answers $name with an error result the model reads next turn, and records the step", async ({ call, problem }) => {
    const { model, reported, outcome } = await runToEnd([[call], [toolUse("decide", decision)]], 2);
    const [result] = lastToolResults(model.requests[1]!);
    expect(result).toMatchObject({ type: "tool_result", is_error: true });
    expect(result!.content).toMatch(problem);
    expect(reported[0]!.toolCalls[0]).toMatchObject({ name: call.type === "tool_use" ? call.name : "", isError: true, result: result!.content });
    expect(outcome.state.toolResults).toEqual([]);
    expect(outcome.decision).toEqual(decision);
  });

  it("names the proposed options when an evaluation names another", async () => {
    const { model } = await runToEnd([[toolUse("propose_options", options)], [toolUse("evaluate_option", { ...evaluation, optionId: "C" })], [toolUse("decide", decision)]], 3);
    expect(lastToolResults(model.requests[2]!)[0]!.content).toBe('evaluate_option: no option "C" was proposed; proposed options are A, B');
  });

  it.each([
    { name: "an invalid decision last", answers: [[toolUse("quote")], [toolUse("decide", { ...decision, action: "BUY" })]], rationale: /^No valid decision within 2 iterations \(last problem: decide: action: .*\); holding is the safe default\.$/ },
    { name: "a turn that called no tool", answers: [[toolUse("quote")], [text("hmm")]], rationale: "No valid decision within 2 iterations (last problem: iteration 2 called no tool); holding is the safe default." },
    { name: "no problem in the last turn", answers: [[toolUse("decide", { ...decision, action: "BUY" })], [toolUse("quote")]], rationale: "No valid decision within 2 iterations; holding is the safe default." },
  ])("falls back to HOLD with no confidence when no valid decision comes within maxIterations: $name", async ({ answers, rationale }) => {
    const { outcome } = await runToEnd(answers as ScriptedAnswer[], 2);
    expect(outcome).toMatchObject({ limitReached: true, decision: { action: "HOLD", confidence: 0 } });
    expect(outcome.decision.rationale).toMatch(rationale);
  });

  it("stops before the first iteration when already asked to stop, without calling the model", async () => {
    const controller = new AbortController();
    controller.abort(new Error("shutdown"));
    const { outcome, model } = running(WHOLE_CHAIN, 5, emptyThinkingState(), { signal: controller.signal });
    const error = await outcome.catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(RunInterruptedError);
    expect(error).toMatchObject({ atIteration: 1, reason: new Error("shutdown") });
    expect(model.requests).toEqual([]);
  });

  it("stops after the iteration in progress is reported when asked to stop between iterations", async () => {
    const controller = new AbortController();
    const run = running(WHOLE_CHAIN, 5, emptyThinkingState(), {
      signal: controller.signal,
      onStep: async (step) => {
        run.reported.push(step);
        if (step.iteration === 2) controller.abort(new Error("shutdown"));
      },
    });
    await expect(run.outcome).rejects.toMatchObject({ name: "RunInterruptedError", atIteration: 3 });
    expect(run.reported.map((step) => step.iteration)).toEqual([1, 2]);
    expect(run.model.requests).toHaveLength(2);
  });

  it("gives up the iteration in flight when its call is aborted, keeping the ones before it", async () => {
    const calls = new AbortController();
    const run = running([WHOLE_CHAIN[0]!, "hang"], 5, emptyThinkingState(), { signal: calls.signal });
    await expect.poll(() => run.model.requests.length).toBe(2);
    calls.abort(new Error("lost the job"));
    await expect(run.outcome).rejects.toMatchObject({ name: "RunInterruptedError", atIteration: 2, reason: new Error("lost the job") });
    expect(run.reported.map((step) => step.iteration)).toEqual([1]);
  });

  it("aborts the model call by the call signal, which a shutdown cuts later than the run's own", async () => {
    const stop = new AbortController();
    const calls = new AbortController();
    const run = running(["hang"], 5, emptyThinkingState(), { signal: stop.signal, callSignal: calls.signal });
    await expect.poll(() => run.model.requests.length).toBe(1);
    stop.abort(new Error("shutdown"));
    calls.abort(new Error("call grace over"));
    await expect(run.outcome).rejects.toMatchObject({ name: "RunInterruptedError", atIteration: 1, reason: new Error("shutdown") });
  });

  it("lets a refused request fail the run as it is", async () => {
    const refused = new ModelRequestError("status 401: check ANTHROPIC_API_KEY");
    const run = running([WHOLE_CHAIN[0]!, refused]);
    await expect(run.outcome).rejects.toBe(refused);
    expect(run.reported).toHaveLength(1);
  });
});
