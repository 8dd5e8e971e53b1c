import type { Tool } from "@anthropic-ai/sdk/resources/messages";
import { z } from "zod";
import type { MarketSnapshot } from "./market-data.js";

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** What a tool may look at: the run it serves and the market as refreshed for this attempt. */
export interface ToolContext {
  agentId: string;
  symbol: string;
  market: MarketSnapshot;
}

/** A tool the model can call: its input is validated with `input` before `run` sees it. */
export interface AgentTool<S extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  input: S;
  run(input: z.output<S>, context: ToolContext): Promise<JsonValue>;
}

/** The tool as the Messages API wants it, its input schema generated from the zod schema. */
export function toolDefinition(tool: Pick<AgentTool, "name" | "description" | "input">): Tool {
  const { $schema: _dialect, ...schema } = z.toJSONSchema(tool.input, { io: "input" }) as Record<string, unknown>;
  return { name: tool.name, description: tool.description, input_schema: { ...schema, type: "object" } };
}

/** Rounds for tool results: enough precision to reason with, few bytes in every later request. */
export function round(value: number, digits = 4): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
