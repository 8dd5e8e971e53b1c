import { newId, type MessagesRequest, type ResponseBlock, type StopReason, type ToolResultBlock } from "./messages-api.js";

/**
 * The local model server's "model": a deterministic analyst driven only by the request. It reads the tools
 * offered, what it already called (and what came back) and the iteration budget the conversation states
 * ("Iteration k of N"), and makes the next move of a fixed plan sized to that budget: analyze the market,
 * look up the position, recall memories, ask questions, propose options, evaluate each, decide. The same
 * conversation always gets the same answer (but for its tool_use ids, unique like the API's), so an interrupted
 * and resumed run behaves like one that was not.
 */

interface PriorCall {
  name: string;
  input: Record<string, unknown>;
  result: unknown;
  isError: boolean;
}

type Analysis = { momentumPct?: number | null; vsAveragePct?: number | null; volatilityPct?: number | null; volumeRatio?: number | null; trend?: string; closesUsed?: number };
type Option = { id: string; action: string; thesis: string };

const DEFAULT_BUDGET = 12;
/** Beyond analyze, propose and decide, in order of priority when the budget is short. */
const OPTIONAL_MOVES = ["lookup_position", "evaluate_option", "recall_memories", "evaluate_option", "evaluate_option"];

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function resultText(block: ToolResultBlock): string {
  if (typeof block.content === "string") return block.content;
  return (block.content ?? []).map((part) => (part.type === "text" ? part.text : "")).join("");
}

function priorCalls(request: MessagesRequest): PriorCall[] {
  const results = new Map<string, { result: unknown; isError: boolean }>();
  for (const message of request.messages) {
    if (message.role !== "user") continue;
    for (const block of message.content) {
      if (block.type === "tool_result") results.set(block.tool_use_id, { result: parseJson(resultText(block)), isError: block.is_error === true });
    }
  }
  return request.messages
    .filter((message) => message.role === "assistant")
    .flatMap((message) => message.content)
    .flatMap((block) =>
      block.type === "tool_use" ? [{ name: block.name, input: block.input, ...(results.get(block.id) ?? { result: undefined, isError: true }) }] : [],
    );
}

/** The iteration under way and the budget, as the last user turn states them. */
export function iterationBudget(request: MessagesRequest): { iteration: number; of: number } {
  const last = [...request.messages].reverse().find((message) => message.role === "user");
  const text = (last?.content ?? []).map((block) => (block.type === "text" ? block.text : "")).join("\n");
  const match = [...text.matchAll(/Iteration (\d+) of (\d+)/g)].pop();
  if (match) return { iteration: Number(match[1]), of: Number(match[2]) };
  return { iteration: request.messages.filter((message) => message.role === "assistant").length + 1, of: DEFAULT_BUDGET };
}

/** The moves for a budget: the core three always, optional ones by priority, questions filling the rest. */
export function planFor(budget: number, offered: Set<string>): string[] {
  let slots = Math.max(budget, 1) - 1; // the decision
  const take = (name: string) => {
    if (slots <= 0 || !offered.has(name)) return false;
    slots -= 1;
    return true;
  };
  const analyze = take("analyze_market");
  const propose = take("propose_options");
  const chosen = OPTIONAL_MOVES.filter((name) => (name !== "evaluate_option" || propose) && take(name));
  const questions: string[] = [];
  while (take("ask_question")) questions.push("ask_question");
  return [
    ...(analyze ? ["analyze_market"] : []),
    ...chosen.filter((name) => name !== "evaluate_option"),
    ...questions,
    ...(propose ? ["propose_options"] : []),
    ...chosen.filter((name) => name === "evaluate_option"),
    "decide",
  ];
}

function nextMove(plan: string[], done: PriorCall[]): string {
  const remaining = new Map<string, number>();
  for (const call of done) if (!call.isError) remaining.set(call.name, (remaining.get(call.name) ?? 0) + 1);
  for (const move of plan) {
    const left = remaining.get(move) ?? 0;
    if (left === 0) return move;
    remaining.set(move, left - 1);
  }
  return "decide";
}

const QUESTIONS: Array<{ question: string; answer: (a: Analysis | undefined, position: string) => string }> = [
  {
    question: "Is the trend strong enough to act on?",
    answer: (a) =>
      a?.momentumPct == null
        ? "There is not enough price history to tell."
        : `Momentum is ${a.momentumPct}% over ${a.closesUsed} closes (${a.trend}); ${Math.abs(a.momentumPct) > 2 ? "that is a clear trend." : "that is a weak trend."}`,
  },
  {
    question: "Is volume confirming the move?",
    answer: (a) =>
      a?.volumeRatio == null
        ? "Volume is unknown, so the move is unconfirmed."
        : `Volume runs at ${a.volumeRatio}x its average; ${a.volumeRatio >= 1 ? "it confirms the move." : "it does not confirm the move."}`,
  },
  {
    question: "Is volatility elevated?",
    answer: (a) =>
      a?.volatilityPct == null
        ? "Volatility is unknown."
        : `Daily volatility is ${a.volatilityPct}%; ${a.volatilityPct > 2 ? "elevated, so size down." : "normal."}`,
  },
  {
    question: "How stretched is the price from its average?",
    answer: (a) => (a?.vsAveragePct == null ? "The average is unknown." : `The price is ${a.vsAveragePct}% from its moving average.`),
  },
  {
    question: "Does the current position change what I should do?",
    answer: (_a, position) => (position === "flat" ? "No position is open, so any entry starts fresh." : `A ${position} position is open; closing is an option.`),
  },
  {
    question: "What would prove this view wrong?",
    answer: (a) => `A reversal of the ${a?.momentumPct ?? 0}% momentum on rising volume.`,
  },
];

function bullishness(analysis: Analysis | undefined): number {
  const momentum = analysis?.momentumPct ?? 0;
  const stretch = analysis?.vsAveragePct ?? 0;
  return Math.min(0.95, Math.max(0.05, 0.5 + momentum / 10 + stretch / 20));
}

function score(action: string, analysis: Analysis | undefined, position: string): number {
  const bull = bullishness(analysis);
  const raw =
    action === "OPEN_LONG"
      ? bull
      : action === "OPEN_SHORT"
        ? 1 - bull
        : action === "CLOSE"
          ? position === "long"
            ? 1 - bull
            : position === "short"
              ? bull
              : 0.1
          : 0.55 - Math.abs(bull - 0.5);
  return Math.round(Math.min(1, Math.max(0, raw)) * 100) / 100;
}

function optionsFor(position: string): Option[] {
  if (position === "flat") {
    return [
      { id: "A", action: "OPEN_LONG", thesis: "Buy to ride the trend up." },
      { id: "B", action: "OPEN_SHORT", thesis: "Sell short to ride the trend down." },
      { id: "C", action: "HOLD", thesis: "Stay flat until the picture is clearer." },
    ];
  }
  return [
    { id: "A", action: "HOLD", thesis: `Keep the ${position} position.` },
    { id: "B", action: "CLOSE", thesis: `Close the ${position} position.` },
  ];
}

interface Move {
  name: string;
  preface: string;
  input: Record<string, unknown>;
}

function makeMove(name: string, done: PriorCall[]): Move {
  const succeeded = done.filter((call) => !call.isError);
  const latest = (tool: string) => [...succeeded].reverse().find((call) => call.name === tool);
  const analysis = latest("analyze_market")?.result as Analysis | undefined;
  const looked = latest("lookup_position")?.result as { position?: { side?: string } | null } | undefined;
  const position = looked?.position?.side ?? "flat";
  const proposed = (latest("propose_options")?.input.options as Option[] | undefined) ?? [];
  const evaluations = succeeded.filter((call) => call.name === "evaluate_option").map((call) => call.input as { optionId: string; score: number });
  switch (name) {
    case "analyze_market":
      return { name, preface: "Let me look at the market first.", input: { lookback: 20 } };
    case "lookup_position":
      return { name, preface: "Next, the position I already hold.", input: {} };
    case "recall_memories": {
      const query = analysis?.trend === "up" ? "entries with the trend and momentum" : analysis?.trend === "down" ? "shorting into momentum risk" : "flat market hold";
      return { name, preface: "What have I learned before in markets like this?", input: { query, limit: 3 } };
    }
    case "ask_question": {
      const asked = succeeded.filter((call) => call.name === "ask_question").length;
      const entry = QUESTIONS[asked % QUESTIONS.length]!;
      const round = Math.floor(asked / QUESTIONS.length);
      return {
        name,
        preface: "A question worth answering before choosing.",
        input: { question: round ? `${entry.question} (revisited, round ${round + 1})` : entry.question, answer: entry.answer(analysis, position) },
      };
    }
    case "propose_options":
      return { name, preface: "Here are the options I see.", input: { options: optionsFor(position) } };
    case "evaluate_option": {
      const pending = proposed.find((option) => !evaluations.some((evaluation) => evaluation.optionId === option.id)) ?? proposed[0];
      if (!pending) return makeMove("propose_options", done);
      const value = score(pending.action, analysis, position);
      return {
        name,
        preface: `Weighing option ${pending.id}.`,
        input: {
          optionId: pending.id,
          score: value,
          pros: [value >= 0.5 ? `fits the ${analysis?.trend ?? "unknown"} trend` : "limits risk"],
          cons: [value >= 0.5 ? "the trend may reverse" : `goes against the ${analysis?.trend ?? "unknown"} trend`],
        },
      };
    }
    default: {
      const best = [...evaluations].sort((a, b) => b.score - a.score)[0];
      const option = proposed.find((candidate) => candidate.id === best?.optionId);
      const action = option?.action ?? "HOLD";
      const confidence = best?.score ?? 0.5;
      const questions = succeeded.filter((call) => call.name === "ask_question").length;
      return {
        name: "decide",
        preface: "Time to decide.",
        input: {
          action,
          confidence,
          rationale: option
            ? `Option ${option.id} (${action}) scored best at ${confidence} of ${evaluations.length} evaluated, after ${questions} questions; trend ${analysis?.trend ?? "unknown"}, momentum ${analysis?.momentumPct ?? "unknown"}%.`
            : "No option was evaluated; holding is the careful default.",
        },
      };
    }
  }
}

export interface AnalystAnswer {
  content: ResponseBlock[];
  stopReason: StopReason;
  iteration: number;
}

export function answer(request: MessagesRequest): AnalystAnswer {
  const { iteration, of } = iterationBudget(request);
  const offered = new Set((request.tools ?? []).map((tool) => tool.name));
  const choice = request.tool_choice;
  if (offered.size === 0 || choice?.type === "none") {
    return {
      content: [{ type: "text", text: "I need the analysis tools to reason about this trade.", citations: null }],
      stopReason: "end_turn",
      iteration,
    };
  }
  const done = priorCalls(request);
  let name = choice?.type === "tool" && choice.name ? choice.name : nextMove(planFor(of, offered), done);
  if (!offered.has(name)) name = offered.has("decide") ? "decide" : [...offered][0]!;
  const move = makeMove(name, done);
  return {
    content: [
      { type: "text", text: move.preface, citations: null },
      { type: "tool_use", id: newId("toolu"), name: move.name, input: move.input, caller: { type: "direct" } },
    ],
    stopReason: "tool_use",
    iteration,
  };
}
