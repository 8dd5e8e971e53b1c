import { recordingLogger } from "@savepoint/shared/testing";
import { describe, expect, it } from "vitest";
import { cancelOtherSessionsEntries, StartupError } from "../src/trader.js";
import { bracketOrder, brokerOrder, ScriptedBroker } from "./scripted-broker.js";

const SESSION = "trader-20260105-153000-bbbbbb";
const OTHER = "trader-20260105-143000-aaaaaa";

/** Settles when `promise` does, or says it has not within `ms`. */
const within = <T>(promise: Promise<T>, ms: number) => Promise.race([promise.then(() => "settled" as const), new Promise<"pending">((resolve) => setTimeout(resolve, ms, "pending"))]);

function accountWithLeftovers(): ScriptedBroker {
  const broker = new ScriptedBroker();
  broker.orders.push(
    bracketOrder({ id: "unfilled", clientOrderId: `${OTHER}:AAPL:1`, symbol: "AAPL" }),
    bracketOrder({ id: "part-filled", clientOrderId: `${OTHER}:MSFT:2`, symbol: "MSFT", filledAt: 400, filledQty: 4 }),
    // Filled whole: a position its working legs protect, adopted with them; nothing to cancel.
    bracketOrder({ id: "filled", clientOrderId: `${OTHER}:NVDA:1`, symbol: "NVDA", filledAt: 180 }),
    // An exit of the other session's, this session's own entry, and an order placed outside any session.
    brokerOrder({ id: "close", clientOrderId: `${OTHER}:AMD:1:close`, symbol: "AMD", side: "sell" }),
    bracketOrder({ id: "own", clientOrderId: `${SESSION}:TSLA:1`, symbol: "TSLA" }),
    brokerOrder({ id: "manual", clientOrderId: "6a1f0c52-8f6e-4a38-9d4e-1d2b7a3e5c91", symbol: "GOOGL" }),
  );
  return broker;
}

describe("entry orders another session left working on the account", () => {
  it("are canceled, unfilled or part-filled, and waited for until the broker has completed each cancel; nothing else is touched", async () => {
    const broker = accountWithLeftovers();
    const { logger, lines } = recordingLogger<{ msg: string; event?: string; clientOrderId?: string }>();
    const canceling = cancelOtherSessionsEntries(broker, SESSION, logger);
    // Accepted, not done: pending_cancel until the broker completes it.
    expect(await within(canceling, 300)).toBe("pending");
    expect(broker.orders.filter((order) => order.status === "pending_cancel").map((order) => order.id)).toEqual(["unfilled", "part-filled"]);
    broker.completeChanges();
    // Canceling changed what is open: the listing is not handed on for reconciliation to reuse.
    expect(await canceling).toEqual({
      changes: [
        { kind: "other_session_entry_canceled", symbol: "AAPL", clientOrderId: `${OTHER}:AAPL:1`, status: "canceled", filledQty: 0 },
        { kind: "other_session_entry_canceled", symbol: "MSFT", clientOrderId: `${OTHER}:MSFT:2`, status: "canceled", filledQty: 4 },
      ],
    });
    expect(broker.calls.filter((call) => call === "cancelOrder")).toHaveLength(2);
    expect(broker.orders.filter((order) => order.status === "canceled").map((order) => order.id)).toEqual(["unfilled", "part-filled"]);
    // A bracket's legs go with its entry.
    expect(broker.orders.find((order) => order.id === "part-filled")!.legs.map((leg) => leg.status)).toEqual(["canceled", "canceled"]);
    expect(lines.filter((line) => line.event === "other_session_entry_canceled").map((line) => line.clientOrderId)).toEqual([`${OTHER}:AAPL:1`, `${OTHER}:MSFT:2`]);
  });

  it("that filled before its cancel is reported as it ended, filled", async () => {
    const broker = accountWithLeftovers();
    const canceling = cancelOtherSessionsEntries(broker, SESSION, recordingLogger().logger);
    await within(canceling, 100);
    const aapl = broker.orders.find((order) => order.id === "unfilled")!;
    Object.assign(aapl, { status: "filled", filledQty: 10, filledAvgPrice: 100 });
    broker.completeChanges();
    expect((await canceling).changes[0]).toEqual({ kind: "other_session_entry_canceled", symbol: "AAPL", clientOrderId: `${OTHER}:AAPL:1`, status: "filled", filledQty: 10 });
  });

  it("stop the start, nothing traded, when the broker does not complete a cancel in time", async () => {
    const broker = accountWithLeftovers();
    await expect(cancelOtherSessionsEntries(broker, SESSION, recordingLogger().logger, { timeoutMs: 300 })).rejects.toThrow(
      new StartupError(
        `the broker has not completed the cancel of ${OTHER}:AAPL:1, ${OTHER}:MSFT:2 (entry orders another session left working on the account) within 0.3 s. Nothing was traded: one could still fill. Start again once the broker has canceled or filled them.`,
      ),
    );
  });

  it("leave nothing to do on an account without any", async () => {
    const broker = new ScriptedBroker();
    expect(await cancelOtherSessionsEntries(broker, SESSION, recordingLogger().logger)).toEqual({ changes: [], stillOpen: [] });
    expect(broker.calls).toEqual(["openOrders"]);
  });

  it("hand on the open orders they listed when none of them was another session's entry, for reconciliation to reuse", async () => {
    const broker = new ScriptedBroker();
    broker.orders.push(bracketOrder({ id: "own", clientOrderId: `${SESSION}:TSLA:1`, symbol: "TSLA" }), brokerOrder({ id: "manual", clientOrderId: "manual-1", symbol: "GOOGL" }));
    const { changes, stillOpen } = await cancelOtherSessionsEntries(broker, SESSION, recordingLogger().logger);
    expect(changes).toEqual([]);
    expect(stillOpen?.map((order) => order.id)).toEqual(["own", "manual"]);
    expect(broker.calls).toEqual(["openOrders"]);
  });
});
