import { decisionSchema, describeIssues, type Decision } from "@savepoint/shared";

export type DecisionParse = { ok: true; decision: Decision } | { ok: false; problem: string };

/** Validates what the model passed to `decide`; the problem names each wrong field, for the model to fix. */
export function parseDecision(input: unknown): DecisionParse {
  const parsed = decisionSchema.safeParse(input);
  if (parsed.success) return { ok: true, decision: parsed.data };
  return {
    ok: false,
    problem: `${describeIssues(parsed.error)}. Call decide with action (OPEN_LONG, OPEN_SHORT, CLOSE or HOLD), confidence between 0 and 1, and a rationale.`,
  };
}

/**
 * A decision written as JSON in prose ("... {"action": "HOLD", ...}"), as a model may answer when it ends
 * its turn without calling `decide`. Undefined when the text holds no valid decision.
 */
export function decisionFromText(text: string): Decision | undefined {
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  if (start < 0 || end <= start) return undefined;
  try {
    const parsed = parseDecision(JSON.parse(text.slice(start, end + 1)));
    return parsed.ok ? parsed.decision : undefined;
  } catch {
    return undefined;
  }
}

/** What a run returns when the model gave no valid decision within its iterations: stand still. */
export function fallbackDecision(maxIterations: number, problem: string | undefined): Decision {
  return {
    action: "HOLD",
    confidence: 0,
    rationale: `No valid decision within ${maxIterations} iterations${problem ? ` (last problem: ${problem})` : ""}; holding is the safe default.`,
  };
}
