import { describe, expect, it } from "vitest";
import type { Change } from "../src/session/reconcile.js";
import { describeChange, formatPl, formatReport, formatTime, formatUsd } from "../src/session/report.js";

const trade = { symbol: "AAPL", side: "long" as const, qty: 10, entryPrice: 100, tradeNo: 1 };

describe("reconciliation report", () => {
  it.each([
    { value: 48.8, usd: "$48.80", pl: "+$48.80" },
    { value: -12, usd: "-$12.00", pl: "-$12.00" },
    { value: 0, usd: "$0.00", pl: "+$0.00" },
    { value: 102_345.678, usd: "$102,345.68", pl: "+$102,345.68" },
    { value: 2.675, usd: "$2.68", pl: "+$2.68" },
    { value: -1_000_115.085, usd: "-$1,000,115.09", pl: "-$1,000,115.09" },
  ])("formats $value as $usd and as P&L $pl", ({ value, usd, pl }) => {
    expect(formatUsd(value)).toBe(usd);
    expect(formatPl(value)).toBe(pl);
    expect(formatUsd(value)).toBe(new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" }).format(value));
  });

  it("formats times in UTC to the second", () => {
    expect(formatTime("2025-11-08T10:45:23.456Z")).toBe("2025-11-08 10:45:23 UTC");
  });

  it.each<{ change: Change; line: string }>([
    { change: { kind: "entry_filled", symbol: "AAPL", tradeNo: 1, clientOrderId: "s:AAPL:1", side: "long", qty: 10, fillPrice: 100.5 }, line: "AAPL: entry s:AAPL:1 filled: long 10 @ 100.5" },
    { change: { kind: "entry_canceled", symbol: "AAPL", tradeNo: 1, clientOrderId: "s:AAPL:1", status: "expired" }, line: "AAPL: entry s:AAPL:1 ended expired without a fill; dropped" },
    {
      change: { kind: "order_recovered", symbol: "AAPL", tradeNo: 2, clientOrderId: "s:AAPL:2", status: "filled", filledQty: 10 },
      line: "AAPL: order s:AAPL:2 (filled, 10 filled) was placed but is missing from the checkpoint; recovered from the broker",
    },
    { change: { kind: "placement_not_found", symbol: "AAPL", clientOrderId: "s:AAPL:1" }, line: "AAPL: entry s:AAPL:1 got no answer and the broker has no such order; the next decision reuses its id" },
    {
      change: { kind: "position_closed", openedUnseen: false, trade: { ...trade, exitPrice: 104, realizedPl: 40, via: "take_profit" } },
      line: "AAPL: long 10 closed by its take-profit @ 104 (entry 100), realised +$40.00",
    },
    {
      change: { kind: "position_closed", openedUnseen: true, trade: { ...trade, exitPrice: 98, realizedPl: -20, via: "stop_loss" } },
      line: "AAPL: long 10 closed by its stop-loss @ 98 (entry 100), realised -$20.00; it opened and closed while the session was not watching",
    },
    {
      change: { kind: "position_closed", openedUnseen: false, trade: { ...trade, exitPrice: null, realizedPl: 0, via: "unknown" } },
      line: "AAPL: long 10 closed by no fill the broker shows at an unknown price (P&L not booked)",
    },
    {
      change: { kind: "position_closed", openedUnseen: false, trade: { ...trade, exitPrice: null, realizedPl: 12, via: "unknown" } },
      line: "AAPL: long 10 closed by no fill the broker shows at an unknown price (realised +$12.00 by the exit fills seen before)",
    },
    {
      change: { kind: "exit_partially_filled", symbol: "AAPL", tradeNo: 1, exitedQty: 6, realizedPl: 24 },
      line: "AAPL: exits of trade 1 have filled 6; realised +$24.00 more, the rest stays open",
    },
    {
      change: { kind: "position_adopted", symbol: "MSFT", side: "short", qty: 3, avgEntryPrice: 400 },
      line: "MSFT: held at the broker (short 3 @ 400) but unknown to the session; adopted without bracket protection",
    },
    {
      change: { kind: "quantity_corrected", symbol: "AAPL", local: { side: "long", qty: 10 }, broker: { side: "long", qty: 15 } },
      line: "AAPL: the session had long 10, the broker has long 15; took the broker's",
    },
    { change: { kind: "legs_attached", symbol: "AAPL", takeProfitId: "tp-1", stopLossId: null }, line: "AAPL: bracket legs re-attached (take-profit tp-1, stop-loss none)" },
    { change: { kind: "protection_lost", symbol: "AAPL", detail: "its exit legs are canceled" }, line: "AAPL: its exit legs are canceled" },
    {
      change: { kind: "other_session_entry_canceled", symbol: "MSFT", clientOrderId: "trader-old:MSFT:2", status: "canceled", filledQty: 4 },
      line: "MSFT: entry trader-old:MSFT:2 of another session was still working on the account, watched by nobody; canceled before reconciling (it ended canceled: 4 of it filled, which the session holds)",
    },
    {
      change: { kind: "other_session_entry_canceled", symbol: "AAPL", clientOrderId: "trader-old:AAPL:1", status: "canceled", filledQty: 0 },
      line: "AAPL: entry trader-old:AAPL:1 of another session was still working on the account, watched by nobody; canceled before reconciling (it ended canceled: nothing of it filled)",
    },
  ])("describes $change.kind in one line", ({ change, line }) => {
    expect(describeChange(change)).toBe(line);
  });

  const report = { sessionId: "s", accountId: "acct", checkedAt: "2026-01-05T15:30:00.000Z", positionsBefore: 1, brokerPositions: 0, positionsAfter: 0, closedTradesAdded: 1, realizedPlAdded: 40 };

  it("prints the report as --reconcile-only shows it", () => {
    const change: Change = { kind: "position_closed", openedUnseen: false, trade: { ...trade, exitPrice: 104, realizedPl: 40, via: "take_profit" } };
    expect(formatReport({ ...report, changes: [change] })).toBe(
      [
        "Reconciliation with the broker (account acct) at 2026-01-05 15:30:00 UTC",
        "  Session: s",
        "  Positions: 1 in the checkpoint, 0 at the broker, 0 after reconciling",
        "  Closed trades added: 1 (realised +$40.00)",
        "  1 discrepancies, each resolved:",
        "    - AAPL: long 10 closed by its take-profit @ 104 (entry 100), realised +$40.00",
      ].join("\n"),
    );
  });

  it("says when the session and the broker agree, and when there was no session", () => {
    const text = formatReport({ ...report, sessionId: null, changes: [] });
    expect(text).toContain("  Session: none checkpointed (compared with an empty session)");
    expect(text.split("\n").at(-1)).toBe("  No discrepancies: the session and the broker agree.");
  });
});
