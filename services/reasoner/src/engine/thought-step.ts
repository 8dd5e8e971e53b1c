import { decisionActionSchema, decisionSchema } from "@savepoint/shared";
import { z } from "zod";

/** What an iteration did, from its most telling tool call (a decision outranks an evaluation, and so on). */
export const STEP_TYPES = ["tool", "question", "options", "evaluation", "decision", "note"] as const;
export type StepType = (typeof STEP_TYPES)[number];

const text = (max: number) => z.string().trim().min(1, "must not be empty").max(max, `must be at most ${max} characters`);
const score = z.number().min(0, "must be between 0 and 1").max(1, "must be between 0 and 1");

export const tradeOptionSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,16}$/, "must be a short id such as A, B or long-1"),
  action: decisionActionSchema,
  thesis: text(1_000).describe("Why this could be the right move."),
});
export type TradeOption = z.infer<typeof tradeOptionSchema>;

// Inputs of the thinking tools, validated like any tool input; their JSON schemas are what the model sees.
export const askQuestionInputSchema = z.strictObject({
  question: text(500).describe("A question whose answer matters for this decision."),
  answer: text(2_000).describe("Your answer, from the evidence gathered so far."),
});
export const proposeOptionsInputSchema = z.strictObject({
  options: z
    .array(tradeOptionSchema)
    .min(2, "must list at least 2 options")
    .max(5, "must list at most 5 options")
    .refine((options) => new Set(options.map((option) => option.id)).size === options.length, "option ids must be unique"),
});
export const evaluateOptionInputSchema = z.strictObject({
  optionId: z.string().min(1).describe("The id of a proposed option."),
  score: score.describe("How good the option is now, 0 (bad) to 1 (excellent)."),
  pros: z.array(text(500)).max(6).default([]),
  cons: z.array(text(500)).max(6).default([]),
});
export const decideInputSchema = decisionSchema;

export type Question = z.infer<typeof askQuestionInputSchema>;
export type Evaluation = z.output<typeof evaluateOptionInputSchema>;

const json = z.json();

/** One tool call of an iteration with what it returned; enough to replay the conversation on resume. */
export const toolCallSchema = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1),
  input: json,
  result: json,
  isError: z.boolean(),
});
export type ToolCall = z.infer<typeof toolCallSchema>;

export const RETRY_REASONS = ["rate_limited", "overloaded", "server_error", "timeout", "connection"] as const;

/** A model call that failed and was tried again. */
export const retryRecordSchema = z.strictObject({
  attempt: z.number().int().min(1),
  reason: z.enum(RETRY_REASONS),
  status: z.number().int().nullable(),
  requestId: z.string().nullable(),
  waitMs: z.number().int().min(0),
});
export type RetryRecord = z.infer<typeof retryRecordSchema>;

const tokens = z.number().int().min(0);

export const modelUsageSchema = z.strictObject({
  model: z.string(),
  stopReason: z.string().nullable(),
  /** HTTP calls this iteration cost: 1 plus its retries. */
  calls: z.number().int().min(1),
  retries: z.array(retryRecordSchema),
  inputTokens: tokens,
  outputTokens: tokens,
  ms: z.number().int().min(0),
});
export type ModelUsage = z.infer<typeof modelUsageSchema>;

/** One iteration of a chain of thought: one model turn and the tool calls it made. */
export const thoughtStepSchema = z.strictObject({
  iteration: z.number().int().min(1),
  type: z.enum(STEP_TYPES),
  /** The model's prose alongside its tool calls, if any. */
  text: z.string().optional(),
  toolCalls: z.array(toolCallSchema),
  question: askQuestionInputSchema.optional(),
  options: z.array(tradeOptionSchema).optional(),
  evaluation: evaluateOptionInputSchema.optional(),
  decision: decisionSchema.optional(),
  model: modelUsageSchema,
  finishedAt: z.iso.datetime({ offset: true }),
});
export type ThoughtStep = z.infer<typeof thoughtStepSchema>;
