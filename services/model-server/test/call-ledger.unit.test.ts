import { describe, expect, it } from "vitest";
import { CallLedger } from "../src/call-ledger.js";

describe("call ledger", () => {
  it("counts a session's calls as they arrive and as they end, and answers given twice for one iteration", () => {
    const ledger = new CallLedger();
    ledger.received("s1", false);
    expect(ledger.session("s1")).toMatchObject({ calls: 1, answered: 0 });
    ledger.settled("s1", 1, "answered");
    ledger.received("s1", true);
    ledger.settled("s1", 2, "aborted");
    ledger.received("s1", true);
    ledger.settled("s1", 2, "answered");
    ledger.received("s1", false);
    ledger.settled("s1", 2, "answered");
    ledger.received("s1", false);
    ledger.settled("s1", 3, "failed");

    expect(ledger.session("s1")).toEqual({ calls: 5, streamed: 2, answered: 3, aborted: 1, failed: 1, answeredByIteration: { 1: 1, 2: 2 }, repeated: 1 });
  });

  it("totals every session, and forgets them all on reset", () => {
    const ledger = new CallLedger();
    for (const session of ["s1", "s2"]) {
      ledger.received(session, false);
      ledger.settled(session, 1, "answered");
    }
    expect(ledger.all().total).toEqual({ calls: 2, streamed: 0, answered: 2, aborted: 0, failed: 0, repeated: 0 });
    expect(Object.keys(ledger.all().sessions)).toEqual(["s1", "s2"]);
    ledger.reset();
    expect(ledger.all().total.calls).toBe(0);
  });

  it("hands out copies, and zeros for a session it never saw", () => {
    const ledger = new CallLedger();
    ledger.received("s1", false);
    ledger.session("s1").calls = 99;
    expect(ledger.session("s1").calls).toBe(1);
    expect(ledger.session("unknown")).toEqual({ calls: 0, streamed: 0, answered: 0, aborted: 0, failed: 0, answeredByIteration: {}, repeated: 0 });
  });
});
