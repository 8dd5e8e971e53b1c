import type { ThinkResult } from "../schemas/reasoning.js";

/** A decision as the reasoner returns it: by default a HOLD after one iteration of a fresh run; `fields` say what a test needs. */
export const thinkResult = (fields: Partial<ThinkResult> = {}): ThinkResult => ({
  action: "HOLD",
  confidence: 0.5,
  rationale: "flat",
  sessionId: "think.agent-1.1",
  iterations: 1,
  resumed: false,
  resumedAtIteration: 0,
  modelCalls: 1,
  modelCallsSaved: 0,
  limitReached: false,
  ...fields,
});
