import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConfirmationsFirst } from "../src/domain/confirmations-first.js";

describe("ConfirmationsFirst", () => {
  let events: string[];
  let policy: ConfirmationsFirst;

  beforeEach(() => {
    vi.useFakeTimers();
    events = [];
    policy = new ConfirmationsFirst({ quietMs: 100, onYield: () => events.push("yield"), onRestore: () => events.push("restore") });
  });
  afterEach(() => {
    policy.close();
    vi.useRealTimers();
  });

  it("yields when the first confirmed save begins, once however many follow", () => {
    policy.begin();
    policy.begin();
    policy.end();
    policy.begin();
    expect(events).toEqual(["yield"]);
    expect(policy.isYielding).toBe(true);
  });

  it("stays yielded while a confirmed save is in flight, however long it takes", () => {
    policy.begin();
    policy.begin();
    policy.end();
    vi.advanceTimersByTime(10_000);
    expect(events).toEqual(["yield"]);
    policy.end();
    vi.advanceTimersByTime(99);
    expect(events).toEqual(["yield"]);
    vi.advanceTimersByTime(1);
    expect(events).toEqual(["yield", "restore"]);
  });

  it("restores quietMs after the last confirmed save settled, not after the first", () => {
    policy.begin();
    policy.end();
    vi.advanceTimersByTime(60);
    policy.begin();
    policy.end();
    vi.advanceTimersByTime(60);
    expect(events).toEqual(["yield"]);
    vi.advanceTimersByTime(40);
    expect(events).toEqual(["yield", "restore"]);
    expect(policy.isYielding).toBe(false);
  });

  it("yields again when confirmed saves come back after going quiet", () => {
    policy.begin();
    policy.end();
    vi.advanceTimersByTime(100);
    policy.begin();
    policy.end();
    vi.advanceTimersByTime(100);
    expect(events).toEqual(["yield", "restore", "yield", "restore"]);
  });

  it("restores nothing once closed", () => {
    policy.begin();
    policy.end();
    policy.close();
    vi.advanceTimersByTime(1_000);
    expect(events).toEqual(["yield"]);
  });
});
