import { describe, expect, it } from "vitest";
import { closeClientOrderId, entryClientOrderId, otherSessionEntry, parseClientOrderId } from "../src/session/client-order-ids.js";

describe("client order ids", () => {
  it("name a session's trade: the entry, and the close after it", () => {
    expect(entryClientOrderId("trader-1", "BRK.B", 7)).toBe("trader-1:BRK.B:7");
    expect(closeClientOrderId("trader-1", "AAPL", 3)).toBe("trader-1:AAPL:3:close");
    expect(closeClientOrderId("trader-1", "AAPL", 3, 2)).toBe("trader-1:AAPL:3:close:2");
  });

  it.each([
    { clientOrderId: "trader-1:BRK.B:7", parsed: { symbol: "BRK.B", tradeNo: 7, role: "entry" } },
    { clientOrderId: "trader-1:AAPL:3:close", parsed: { symbol: "AAPL", tradeNo: 3, role: "close", attempt: 1 } },
    { clientOrderId: "trader-1:AAPL:3:close:12", parsed: { symbol: "AAPL", tradeNo: 3, role: "close", attempt: 12 } },
    { clientOrderId: "trader-1:AAPL:3:close:1", parsed: null },
    { clientOrderId: "trader-1:AAPL:3:close:02", parsed: null },
    { clientOrderId: "trader-1:BF-B:12", parsed: { symbol: "BF-B", tradeNo: 12, role: "entry" } },
    { clientOrderId: "trader-10:AAPL:1", parsed: null },
    { clientOrderId: "trader-1:AAPL:0", parsed: null },
    { clientOrderId: "trader-1:AAPL:01", parsed: null },
    { clientOrderId: "trader-1:aapl:1", parsed: null },
    { clientOrderId: "trader-1:AAPL:1:open", parsed: null },
    { clientOrderId: "trader-1:AAPL", parsed: null },
    { clientOrderId: "6a1f0c52-8f6e-4a38-9d4e-1d2b7a3e5c91", parsed: null },
  ])("reads $clientOrderId as $parsed", ({ clientOrderId, parsed }) => {
    expect(parseClientOrderId("trader-1", clientOrderId)).toEqual(parsed);
  });

  it("round-trips every id it makes", () => {
    for (const tradeNo of [1, 9, 10, 123]) {
      expect(parseClientOrderId("s", entryClientOrderId("s", "MSFT", tradeNo))).toEqual({ symbol: "MSFT", tradeNo, role: "entry" });
      expect(parseClientOrderId("s", closeClientOrderId("s", "MSFT", tradeNo))).toEqual({ symbol: "MSFT", tradeNo, role: "close", attempt: 1 });
      expect(parseClientOrderId("s", closeClientOrderId("s", "MSFT", tradeNo, 3))).toEqual({ symbol: "MSFT", tradeNo, role: "close", attempt: 3 });
    }
  });

  it.each([
    { clientOrderId: "trader-20260105-143000-aaaaaa:AAPL:3", entry: { sessionId: "trader-20260105-143000-aaaaaa", symbol: "AAPL", tradeNo: 3 } },
    { clientOrderId: "trader-old:BRK.B:12", entry: { sessionId: "trader-old", symbol: "BRK.B", tradeNo: 12 } },
    { clientOrderId: "trader-1:AAPL:3", entry: null },
    { clientOrderId: "trader-old:AAPL:3:close", entry: null },
    { clientOrderId: "trader-old:AAPL:3:close:2", entry: null },
    { clientOrderId: "6a1f0c52-8f6e-4a38-9d4e-1d2b7a3e5c91", entry: null },
    { clientOrderId: "someone:AAPL:1", entry: null },
  ])("reads $clientOrderId as another session's entry: $entry", ({ clientOrderId, entry }) => {
    expect(otherSessionEntry("trader-1", clientOrderId)).toEqual(entry);
  });
});
