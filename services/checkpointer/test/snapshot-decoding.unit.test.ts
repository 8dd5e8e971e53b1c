import { JobRejectedError } from "@savepoint/shared";
import { describe, expect, it } from "vitest";
import { decodeSnapshot, splitEnvelopeText } from "../src/domain/snapshot-decoding.js";
import { snapshot } from "./snapshot-fixture.js";

const state = { positions: [{ symbol: "AAPL", qty: 3, note: 'a,"state":{ inside' }], nested: { state: { deep: true } } };

describe("splitEnvelopeText", () => {
  it("cuts the state out of an envelope laid out as CheckpointClient sends it, text for text", () => {
    const { state: _state, ...head } = snapshot({ state });
    const split = splitEnvelopeText(JSON.stringify({ ...head, state }));
    expect(split).toEqual({ head, stateJson: JSON.stringify(state) });
  });

  it.each([
    ["whitespace between members", (text: string) => JSON.stringify(JSON.parse(text), null, 2)],
    ["state first", (text: string) => { const { state: s, ...head } = JSON.parse(text); return JSON.stringify({ state: s, ...head }); }],
    ["state not an object", (text: string) => text.replace(/,"state":\{.*\}$/, ',"state":[1]}')],
    ["text after the envelope", (text: string) => `${text} `],
  ])("declines %s, leaving it to a full parse", (_case, layout) => {
    expect(splitEnvelopeText(layout(JSON.stringify(snapshot({ state }))))).toBeUndefined();
  });

  it("declines when the first state member it meets is not the envelope's", () => {
    expect(splitEnvelopeText('{"v":1,"meta":{"a":1,"state":{}},"state":{"x":1}}')).toBeUndefined();
    expect(splitEnvelopeText('{"state":1,"v":1,"state":{"x":1}}')).toBeUndefined();
  });

  it("cuts a text that is not JSON when a member follows the state, so it cannot be stored as a state", () => {
    const split = splitEnvelopeText(JSON.stringify({ ...snapshot({ state }), priority: 1 }));
    expect(() => JSON.parse(split!.stateJson)).toThrow();
  });
});

describe("decodeSnapshot", () => {
  it("decodes the state as text the same whether the text is cut or parsed", () => {
    const text = JSON.stringify(snapshot({ state }));
    const cut = decodeSnapshot(text, 1_000_000);
    const parsed = decodeSnapshot(text, 1_000_000, { parseState: true });
    expect(cut.stateCut).toBe(true);
    expect(parsed.stateCut).toBe(false);
    expect({ ...cut, stateCut: false }).toEqual(parsed);
  });

  it("refuses a bad member of the envelope by name, whichever way it is decoded", () => {
    const text = JSON.stringify({ ...snapshot({ state }), epoch: -1 });
    for (const parseState of [false, true]) {
      expect(() => decodeSnapshot(text, 1_000_000, { parseState })).toThrow(/^invalid snapshot job: epoch: /);
    }
  });

  it("refuses a state over the size limit or holding what Postgres cannot store, without parsing it", () => {
    const big = JSON.stringify(snapshot({ state: { blob: "x".repeat(200) } }));
    expect(() => decodeSnapshot(big, 100)).toThrow(expect.objectContaining({ code: "too_large" }) as JobRejectedError);
    const nul = JSON.stringify(snapshot({ state: { note: "a\u0000b" } }));
    expect(() => decodeSnapshot(nul, 1_000)).toThrow(expect.objectContaining({ code: "unstorable" }) as JobRejectedError);
  });

  it("refuses data that is not JSON", () => {
    expect(() => decodeSnapshot("{not json", 1_000)).toThrow(/^invalid snapshot job: \(payload\): not JSON/);
  });
});
