import type { ContentBlockParam, MessageParam, ToolChoice } from "@anthropic-ai/sdk/resources/messages";
import type { MarketSnapshot } from "../tools/market-data.js";
import type { ThinkingState } from "./thinking-state.js";
import type { ThoughtStep } from "./thought-step.js";

export const SYSTEM_PROMPT = `You are a disciplined trading analyst deciding what one trading agent should do in one symbol.
Think step by step, one tool call per turn; each turn is one iteration of a fixed budget.
1. Gather evidence: analyze_market, lookup_position, recall_memories.
2. Ask yourself the questions that matter and answer them from the evidence (ask_question).
3. Propose two to four concrete options (propose_options), then evaluate each one (evaluate_option).
4. Decide (decide): OPEN_LONG, OPEN_SHORT, CLOSE or HOLD, a confidence between 0 and 1, and a rationale that cites the evidence.
Never invent market data; use the tools. You must decide by the last iteration.`;

/** The instruction closing each user turn; the iteration numbers tell the model how much budget is left. */
export function iterationPrompt(iteration: number, maxIterations: number): string {
  return iteration >= maxIterations
    ? `Iteration ${iteration} of ${maxIterations}, the last: call decide now.`
    : `Iteration ${iteration} of ${maxIterations}: call exactly one tool.`;
}

function describeMarket(market: MarketSnapshot): string {
  const facts = [`price ${market.price}`];
  if (market.previousClose !== undefined) facts.push(`previous close ${market.previousClose}`);
  if (market.volume !== undefined) {
    facts.push(`volume ${market.volume}${market.averageVolume === undefined ? "" : ` (average ${market.averageVolume})`}`);
  }
  facts.push(`${market.recentCloses.length} recent closes available`);
  const position = market.position
    ? `${market.position.side} ${market.position.qty} @ ${market.position.entryPrice}`
    : "none (flat)";
  return `Market as of ${market.asOf}: ${facts.join(", ")}.\nPosition: ${position}.`;
}

function assistantTurn(step: ThoughtStep): MessageParam {
  const content: ContentBlockParam[] = [];
  if (step.text) content.push({ type: "text", text: step.text });
  for (const call of step.toolCalls) content.push({ type: "tool_use", id: call.id, name: call.name, input: call.input });
  if (content.length === 0) content.push({ type: "text", text: "(no output)" });
  return { role: "assistant", content };
}

function userTurnAfter(step: ThoughtStep, maxIterations: number): MessageParam {
  const content: ContentBlockParam[] = step.toolCalls.map((call) => ({
    type: "tool_result",
    tool_use_id: call.id,
    content: typeof call.result === "string" ? call.result : JSON.stringify(call.result),
    ...(call.isError ? { is_error: true } : {}),
  }));
  content.push({ type: "text", text: iterationPrompt(step.iteration + 1, maxIterations) });
  return { role: "user", content };
}

export interface ConversationInput {
  agentId: string;
  symbol: string;
  maxIterations: number;
  market: MarketSnapshot;
  state: ThinkingState;
}

/**
 * The whole conversation for the next iteration, rebuilt from the steps: the opening turn (with the market
 * as read by this attempt), then each step's model turn and its tool results. A resumed run sends exactly
 * what an uninterrupted one would have, except for the refreshed market.
 */
export function buildMessages({ agentId, symbol, maxIterations, market, state }: ConversationInput): MessageParam[] {
  const opening: MessageParam = {
    role: "user",
    content: `Decide what agent ${agentId} should do in ${symbol} now.\n${describeMarket(market)}\n${iterationPrompt(1, maxIterations)}`,
  };
  return [opening, ...state.steps.flatMap((step) => [assistantTurn(step), userTurnAfter(step, maxIterations)])];
}

/** Any one tool per turn; on the last iteration, `decide` and nothing else. */
export function toolChoiceFor(iteration: number, maxIterations: number): ToolChoice {
  return iteration >= maxIterations
    ? { type: "tool", name: "decide", disable_parallel_tool_use: true }
    : { type: "any", disable_parallel_tool_use: true };
}
