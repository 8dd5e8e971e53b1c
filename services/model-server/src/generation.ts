import { estimateTokens, type ResponseBlock, type StopReason } from "./messages-api.js";

export interface Generation {
  content: ResponseBlock[];
  stopReason: StopReason;
  stopSequence: string | null;
  outputTokens: number;
}

function firstStop(text: string, stopSequences: readonly string[]): { at: number; sequence: string } | undefined {
  let first: { at: number; sequence: string } | undefined;
  for (const sequence of stopSequences) {
    const at = text.indexOf(sequence);
    if (at >= 0 && (!first || at < first.at)) first = { at, sequence };
  }
  return first;
}

/**
 * What the model actually returns of the answer it means to give, written front to back the way a model
 * generates: at the first of `stopSequences` it writes, it stops, keeping the text before the sequence and
 * dropping everything after it (`stop_reason: "stop_sequence"`, `stop_sequence` set, as the Messages API
 * documents); past `maxTokens` output tokens it is cut off (`stop_reason: "max_tokens"`). Stop sequences are
 * matched in text only: a tool call's input is structured output, not text the model writes.
 */
export function generate(intended: { content: ResponseBlock[]; stopReason: StopReason }, limits: { maxTokens: number; stopSequences: readonly string[] }): Generation {
  const content: ResponseBlock[] = [];
  let stopReason = intended.stopReason;
  let stopSequence: string | null = null;
  for (const block of intended.content) {
    const stop = block.type === "text" ? firstStop(block.text, limits.stopSequences) : undefined;
    if (block.type === "text" && stop) {
      if (stop.at > 0) content.push({ ...block, text: block.text.slice(0, stop.at) });
      stopReason = "stop_sequence";
      stopSequence = stop.sequence;
      break;
    }
    content.push(block);
  }
  const outputTokens = estimateTokens(content);
  if (outputTokens <= limits.maxTokens) return { content, stopReason, stopSequence, outputTokens };
  const text = content.map((block) => (block.type === "text" ? block.text : "")).join(" ");
  return { content: [{ type: "text", text: text.slice(0, limits.maxTokens * 4), citations: null }], stopReason: "max_tokens", stopSequence: null, outputTokens: limits.maxTokens };
}
