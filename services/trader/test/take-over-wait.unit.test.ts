import { describe, expect, it } from "vitest";
import { takeOverSettleMs, traderEnvSchema } from "../src/config.js";
import { takeOverWaitMs } from "../src/session/account-lease.js";

const SETTLE_MS = 9_000;

describe("how long a trader waits after being granted its account's lease, before reading the broker", () => {
  it("waits out an order request and the margin after taking the account from another session whose lease was live", () => {
    expect(takeOverWaitMs({ owner: "trader-old", generation: 0, token: 4, expiresInMs: 12_000 }, "trader-new", SETTLE_MS)).toBe(SETTLE_MS);
  });

  it.each([
    { name: "nobody held the account", previous: null },
    { name: "the other session's lease had lapsed (its last check left an order request's time in it)", previous: { owner: "trader-old", generation: 0, token: 4, expiresInMs: 0 } },
    { name: "an earlier epoch of this session held it (its orders carry this session's client_order_ids)", previous: { owner: "trader-new", generation: 1, token: 4, expiresInMs: 12_000 } },
  ])("does not wait when $name", ({ previous }) => {
    expect(takeOverWaitMs(previous, "trader-new", SETTLE_MS)).toBe(0);
  });

  it("is BROKER_TIMEOUT_MS, the 2 s a rate-limited request may wait, and TRADER_TAKEOVER_MARGIN_MS (2 s unless set)", () => {
    const env = traderEnvSchema.parse({ BROKER_TIMEOUT_MS: "5000" });
    expect(env.TRADER_TAKEOVER_MARGIN_MS).toBe(2_000);
    expect(takeOverSettleMs(env.BROKER_TIMEOUT_MS, env.TRADER_TAKEOVER_MARGIN_MS)).toBe(9_000);
    expect(traderEnvSchema.safeParse({ TRADER_TAKEOVER_MARGIN_MS: "-1" }).success).toBe(false);
  });
});
