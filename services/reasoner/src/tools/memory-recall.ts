import { createHash } from "node:crypto";
import { z } from "zod";
import type { AgentTool } from "./agent-tool.js";

export type Memory = { id: string; lesson: string; tags: string[] };

export interface MemoryQuery {
  agentId: string;
  symbol: string;
  query: string;
  limit: number;
}

/** An agent's long-term memory: lessons from earlier runs, recalled by relevance to a question. */
export interface MemoryStore {
  recall(query: MemoryQuery): Promise<Memory[]>;
}

const LESSONS: Memory[] = [
  { id: "m-trend-follow", lesson: "Entries with the prevailing trend worked far more often than entries against it.", tags: ["trend", "momentum", "entry"] },
  { id: "m-volume-confirm", lesson: "Breakouts on below-average volume usually faded within two sessions.", tags: ["volume", "breakout", "confirmation"] },
  { id: "m-volatility-size", lesson: "When volatility was elevated, smaller positions avoided stop-outs on noise.", tags: ["volatility", "risk", "size"] },
  { id: "m-cut-losers", lesson: "Positions down more than 2% rarely recovered before hitting the stop; closing early saved money.", tags: ["loss", "stop", "close", "position"] },
  { id: "m-let-winners", lesson: "Closing winners too early left most of the move on the table.", tags: ["profit", "winner", "hold", "position"] },
  { id: "m-gap-chase", lesson: "Chasing a large opening gap had a poor record; waiting for a pullback did better.", tags: ["gap", "change", "entry"] },
  { id: "m-flat-hold", lesson: "In flat, directionless markets, holding and waiting beat forcing a trade.", tags: ["flat", "range", "hold"] },
  { id: "m-short-squeeze", lesson: "Shorting into strong upward momentum led to the largest single losses.", tags: ["short", "momentum", "risk"] },
  { id: "m-mean-revert", lesson: "Prices far above their moving average tended to drift back toward it.", tags: ["average", "stretch", "reversion"] },
  { id: "m-confidence", lesson: "Low-confidence trades had the worst hit rate; below 0.55 confidence, holding was the better call.", tags: ["confidence", "hold", "decision"] },
];

const WORD = /[a-z]+/g;

/**
 * A fixed book of trading lessons, ranked by how many words of the query they share with the lesson and its
 * tags; ties break on a hash of agent, symbol and lesson, so each agent recalls in a stable order.
 */
export class LessonBook implements MemoryStore {
  constructor(private readonly lessons: Memory[] = LESSONS) {}

  async recall({ agentId, symbol, query, limit }: MemoryQuery): Promise<Memory[]> {
    const words = new Set(query.toLowerCase().match(WORD) ?? []);
    const ranked = this.lessons.map((memory) => {
      const vocabulary = new Set([...memory.tags, ...(memory.lesson.toLowerCase().match(WORD) ?? [])]);
      const score = [...words].filter((word) => word.length > 2 && vocabulary.has(word)).length;
      const tieBreak = createHash("sha256").update(`${agentId}|${symbol}|${memory.id}`).digest().readUInt32BE(0);
      return { memory, score, tieBreak };
    });
    ranked.sort((a, b) => b.score - a.score || a.tieBreak - b.tieBreak);
    return ranked.slice(0, limit).map((entry) => entry.memory);
  }
}

const input = z.strictObject({
  query: z.string().trim().min(1).max(300).describe("What you want to remember, e.g. 'trading against momentum'."),
  limit: z.number().int().min(1).max(5).default(3).describe("How many lessons to recall (1-5)."),
});

export function memoryRecallTool(store: MemoryStore): AgentTool<typeof input> {
  return {
    name: "recall_memories",
    description: "Recall lessons this agent learned in earlier runs that are relevant to a query.",
    input,
    run: async ({ query, limit }, { agentId, symbol }) => ({ memories: await store.recall({ agentId, symbol, query, limit }) }),
  };
}
