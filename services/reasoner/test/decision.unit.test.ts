import { describe, expect, it } from "vitest";
import { decisionFromText, fallbackDecision, parseDecision } from "../src/engine/decision.js";

describe("decisions", () => {
  it.each([
    { name: "a valid decision", input: { action: "OPEN_LONG", confidence: 0.82, rationale: "strong trend" }, problem: undefined },
    { name: "the edges of confidence", input: { action: "HOLD", confidence: 0, rationale: "flat" }, problem: undefined },
    { name: "a confidence given as a percentage", input: { action: "OPEN_LONG", confidence: 82, rationale: "strong trend" }, problem: /^confidence: must be between 0 and 1\. Call decide with action \(OPEN_LONG, OPEN_SHORT, CLOSE or HOLD\)/ },
    { name: "an unknown action", input: { action: "BUY", confidence: 0.6, rationale: "x" }, problem: /^action: / },
    { name: "a missing rationale", input: { action: "HOLD", confidence: 0.6 }, problem: /^rationale: / },
    { name: "no object at all", input: "HOLD", problem: /Call decide with/ },
  ])("parses $name", ({ input, problem }) => {
    const parsed = parseDecision(input);
    if (problem === undefined) expect(parsed).toEqual({ ok: true, decision: input });
    else expect(parsed).toEqual({ ok: false, problem: expect.stringMatching(problem) });
  });

  it.each([
    { name: "JSON in prose", text: 'I would go with {"action": "HOLD", "confidence": 0.55, "rationale": "flat market"} here.', decision: { action: "HOLD", confidence: 0.55, rationale: "flat market" } },
    { name: "bare JSON", text: '{"action":"CLOSE","confidence":1,"rationale":"target hit"}', decision: { action: "CLOSE", confidence: 1, rationale: "target hit" } },
    { name: "prose without JSON", text: "no decision here", decision: undefined },
    { name: "JSON that is not a decision", text: 'as said {"action": "BUY", "confidence": 0.5, "rationale": "x"}', decision: undefined },
    { name: "JSON that does not parse", text: "{action: HOLD}", decision: undefined },
    { name: "a closing brace before the opening one", text: "} then {", decision: undefined },
  ])("reads a decision from $name", ({ text, decision }) => {
    expect(decisionFromText(text)).toEqual(decision);
  });

  it("falls back to HOLD with no confidence, saying why", () => {
    expect(fallbackDecision(12, "decide: confidence: must be between 0 and 1")).toEqual({
      action: "HOLD",
      confidence: 0,
      rationale: "No valid decision within 12 iterations (last problem: decide: confidence: must be between 0 and 1); holding is the safe default.",
    });
    expect(fallbackDecision(3, undefined).rationale).toBe("No valid decision within 3 iterations; holding is the safe default.");
  });
});
