import { describe, expect, it } from "vitest";
import { jsonDepthExceeds, MAX_STATE_DEPTH, serializeState } from "../src/schemas/snapshot.js";

describe("jsonDepthExceeds", () => {
  it.each([
    { json: "{}", limit: 1, deeper: false },
    { json: '{"a":{}}', limit: 1, deeper: true },
    { json: '{"a":[[1]]}', limit: 3, deeper: false },
    { json: '{"a":[[[1]]]}', limit: 3, deeper: true },
    { json: '{"a":[1],"b":[2],"c":{"d":[3]}}', limit: 3, deeper: false },
    { json: '{"s":"[[[[[[[[{{{{"}', limit: 1, deeper: false },
    { json: '{"s":"a\\"[[[[[[[["}', limit: 1, deeper: false },
    { json: '{"s":"a\\\\","t":[[[[1]]]]}', limit: 3, deeper: true },
  ])("$json deeper than $limit: $deeper", ({ json, limit, deeper }) => {
    expect(jsonDepthExceeds(json, limit)).toBe(deeper);
  });

  it("counts depth, not brackets: many shallow objects are within the limit", () => {
    const json = JSON.stringify({ rows: Array.from({ length: 5_000 }, (_, index) => ({ index, tags: ["a", "b"] })) });
    expect(jsonDepthExceeds(json, 4)).toBe(false);
    expect(jsonDepthExceeds(json, 3)).toBe(true);
  });
});

describe("serializeState", () => {
  const nested = (levels: number) => {
    let state: Record<string, unknown> = {};
    for (let level = 1; level < levels; level++) state = { a: state };
    return state;
  };

  it("refuses a state past MAX_STATE_DEPTH, and one too deep to serialize, as too_deep instead of throwing", () => {
    expect(serializeState(nested(MAX_STATE_DEPTH), 1 << 20)).toMatchObject({ bytes: expect.any(Number) });
    expect(serializeState(nested(MAX_STATE_DEPTH + 1), 1 << 20)).toMatchObject({ field: "state", reason: "too_deep" });
    expect(serializeState(nested(20_000), 1 << 20)).toMatchObject({ field: "state", reason: "too_deep" });
  });

  it("refuses a state JSON cannot represent instead of throwing", () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(serializeState(circular, 1 << 20)).toMatchObject({ field: "state", reason: "unstorable" });
  });
});
