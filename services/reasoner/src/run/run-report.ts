import type { Job } from "bullmq";
import type { Logger } from "@savepoint/shared";
import type { ThoughtStep, ToolCall } from "../engine/thought-step.js";
import type { MarketSnapshot } from "../tools/market-data.js";

/** Where a run stands, as its job's progress shows it. */
export type RunPhase = "reading market" | "thinking" | "interrupted" | "completed" | "dead-lettered";

/** The job's progress (Bull Board shows it as JSON): one update per iteration and per change of phase. */
export interface RunProgress {
  phase: RunPhase;
  /** Iterations done so far, across every attempt. */
  iteration: number;
  of: number;
  /** Iterations restored from checkpoints when this attempt began (0 on a fresh start). */
  resumedAt: number;
  /** Model calls this attempt made, and those its restored iterations had cost and were not paid again. */
  modelCalls: { made: number; saved: number };
  /** What the latest iteration did (tool, question, options, evaluation, decision, note). */
  lastStep?: ThoughtStep["type"];
  attempt: number;
}

/** Longest rendering of one tool input or result in a log line; the checkpoint keeps the whole of it. */
const MAX_VALUE_CHARS = 300;

function compact(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 1)}…` : text;
}

function describeCall(call: ToolCall): string {
  return `${call.name}(${compact(call.input)}) ${call.isError ? "failed: " : "→ "}${compact(call.result)}`;
}

/** One job-log line for an iteration: what the model did, in the step's own terms. */
export function describeStep(step: ThoughtStep): string {
  const head = `iteration ${step.iteration} · ${step.type}`;
  if (step.decision) {
    return `${head}: ${step.decision.action} at confidence ${step.decision.confidence}: ${compact(step.decision.rationale)}`;
  }
  if (step.evaluation) {
    const { optionId, score, pros, cons } = step.evaluation;
    return `${head} of option ${optionId}: score ${score}; pros: ${pros.join("; ") || "none"}; cons: ${cons.join("; ") || "none"}`;
  }
  if (step.options) {
    return `${head}: ${step.options.map((option) => `${option.id} ${option.action} (${compact(option.thesis)})`).join(", ")}`;
  }
  if (step.question) return `${head}: ${step.question.question} Answer: ${compact(step.question.answer)}`;
  if (step.toolCalls.length) return `${head}: ${step.toolCalls.map(describeCall).join("; ")}`;
  return `${head}: ${compact(step.text ?? "(no output)")}`;
}

/** One job-log line saying which market an attempt reasons on. */
export function describeMarket(market: MarketSnapshot): string {
  const position = market.position ? `${market.position.side} ${market.position.qty} @ ${market.position.entryPrice}` : "flat";
  const quoted = market.quotedAt ? ` quoted at ${market.quotedAt}` : "";
  const source =
    market.source === "broker"
      ? "the broker's market data (latest price, recent bars and the position the broker holds now)"
      : "the job's marketContext (no market data configured)";
  return `market from ${source}: price ${market.price}${quoted}, ${market.recentCloses.length} recent closes, position ${position}`;
}

/**
 * A run as Bull Board shows it: the job's progress and one job-log line per thought step, interruption and
 * resume. Writing them is best effort: a Redis hiccup costs a log line, never the run (the checkpoints are
 * the record; this is the window onto it).
 */
export class RunReport {
  private progress: RunProgress;

  constructor(
    private readonly job: Job,
    private readonly logger: Logger,
    start: Pick<RunProgress, "of" | "attempt">,
    /** Progress a previous attempt left on the job, carried over where this one does not say. */
    earlier: object = {},
  ) {
    this.progress = {
      phase: "reading market",
      iteration: 0,
      resumedAt: 0,
      modelCalls: { made: 0, saved: 0 },
      ...(earlier as Partial<RunProgress>),
      of: start.of,
      attempt: start.attempt,
    };
  }

  /** Appends lines to the job's log and sets its progress, in one round trip. */
  async write(lines: string[], progress: Partial<RunProgress> = {}): Promise<void> {
    this.progress = { ...this.progress, ...progress };
    try {
      await Promise.all([...lines.map((line) => this.job.log(line)), this.job.updateProgress({ ...this.progress })]);
    } catch (error) {
      this.logger.warn({ err: error }, "could not update the job's progress or log");
    }
  }

  step(step: ThoughtStep, modelCalls: number): Promise<void> {
    return this.write([describeStep(step)], {
      phase: "thinking",
      iteration: step.iteration,
      lastStep: step.type,
      modelCalls: { made: modelCalls, saved: this.progress.modelCalls.saved },
    });
  }

  get current(): Readonly<RunProgress> {
    return this.progress;
  }
}
