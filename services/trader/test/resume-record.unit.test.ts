import { InMemoryCheckpoints } from "@savepoint/shared/testing";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { SessionCheckpoints, TRADER_SERVICE } from "../src/session/checkpoints.js";
import { entryClientOrderId } from "../src/session/client-order-ids.js";
import { reconcile } from "../src/session/reconcile.js";
import type { ReconciliationReport } from "../src/session/report.js";
import { RESUMES_KEPT, resumeRecord } from "../src/session/resume-record.js";
import { TRADER_STATE_VERSION, TradingState } from "../src/session/state.js";
import { bracketOrder, brokerAccount, brokerPosition, openPosition, SUBMITTED_AT } from "./scripted-broker.js";

/** A resume's record built from a reconciliation of an in-memory state with a broker view built by hand. */

const SESSION = "trader-1";
const CHECKPOINT = { epoch: 0, seq: 41, takenAt: "2026-01-05T15:50:00.000Z" };
const READ_AT = new Date("2026-01-05T16:00:00.000Z");
const entryId = (symbol: string) => entryClientOrderId(SESSION, symbol, 1);

const newState = () =>
  new TradingState({
    sessionStartedAt: SUBMITTED_AT.toISOString(),
    brokerSessionStartedAt: SUBMITTED_AT.toISOString(),
    symbols: ["AAPL", "GOOGL", "MSFT"],
    strategy: { kind: "rule", stopLossPct: 10, takeProfitPct: 10, positionSize: 1_000, lookbackBars: 5, entryThresholdPct: 0 },
  });

/**
 * The checkpoint held AAPL (long 10 @ 100), an expiring GOOGL entry and an MSFT entry whose placement got no
 * answer; while the trader was down AAPL's take-profit filled at 110, GOOGL's entry expired, MSFT's never
 * reached the broker and someone bought NVDA by hand. Reconciled the way the trader does on resume.
 */
function reconciled(): { state: TradingState; report: ReconciliationReport } {
  const state = newState();
  state.open(openPosition("AAPL"));
  const pending = { side: "long" as const, qty: 10, tradeNo: 1, takeProfit: 110, stopLoss: 90, submittedAt: SUBMITTED_AT.toISOString() };
  state.pendingEntries.set("GOOGL", { ...pending, symbol: "GOOGL", clientOrderId: entryId("GOOGL"), orderId: "entry-2", confirmed: true });
  state.pendingEntries.set("MSFT", { ...pending, symbol: "MSFT", clientOrderId: entryId("MSFT"), orderId: null, confirmed: false });
  const orders = [
    bracketOrder({ id: "entry-1", clientOrderId: entryId("AAPL"), symbol: "AAPL", filledAt: 100, takeProfitLeg: { id: "tp-1", filledAt: 110 }, stopLossLeg: { id: "sl-1", status: "canceled" } }),
    bracketOrder({ id: "entry-2", clientOrderId: entryId("GOOGL"), symbol: "GOOGL", status: "expired", takeProfitLeg: { status: "canceled" }, stopLossLeg: { status: "canceled" } }),
  ];
  const positions = [brokerPosition("NVDA", 3, 180)];
  const before = { positions: state.positions.size, closedTrades: state.closedTrades, realizedPl: state.realizedPl };
  const changes = reconcile(state, { account: brokerAccount(), positions, orders, complete: true, examined: new Set(), readAt: READ_AT }, SESSION);
  const report: ReconciliationReport = {
    sessionId: SESSION,
    accountId: "account-1",
    checkedAt: READ_AT.toISOString(),
    positionsBefore: before.positions,
    brokerPositions: positions.length,
    positionsAfter: state.positions.size,
    closedTradesAdded: state.closedTrades - before.closedTrades,
    realizedPlAdded: state.realizedPl - before.realizedPl,
    changes,
  };
  return { state, report };
}

describe("resume record", () => {
  it("holds the resume's epoch, time, downtime since the checkpoint it resumed from, and every change of the report by category", () => {
    const { report } = reconciled();
    const record = resumeRecord(report, 1, CHECKPOINT);

    expect(record).toEqual({
      epoch: 1,
      resumedAt: "2026-01-05T16:00:00.000Z",
      restoredFrom: CHECKPOINT,
      downtimeMs: 10 * 60_000,
      positions: { before: 1, atBroker: 1, after: 1 },
      closedTradesAdded: 1,
      realizedPlAdded: 100,
      changes: [
        {
          category: "client_order_ids",
          text: `MSFT: entry ${entryId("MSFT")} got no answer and the broker has no such order; the next decision reuses its id`,
          change: { kind: "placement_not_found", symbol: "MSFT", clientOrderId: entryId("MSFT") },
        },
        {
          category: "trades",
          text: "AAPL: long 10 closed by its take-profit @ 110 (entry 100), realised +$100.00",
          change: {
            kind: "position_closed",
            openedUnseen: false,
            trade: { symbol: "AAPL", side: "long", qty: 10, entryPrice: 100, exitPrice: 110, realizedPl: 100, via: "take_profit", tradeNo: 1 },
          },
        },
        {
          category: "orders",
          text: `GOOGL: entry ${entryId("GOOGL")} ended expired without a fill; dropped`,
          change: { kind: "entry_canceled", symbol: "GOOGL", tradeNo: 1, clientOrderId: entryId("GOOGL"), status: "expired" },
        },
        {
          category: "positions",
          text: "NVDA: held at the broker (long 3 @ 180) but unknown to the session; adopted without bracket protection",
          change: { kind: "position_adopted", symbol: "NVDA", side: "long", qty: 3, avgEntryPrice: 180 },
        },
      ],
    });
    expect(record.changes.map((item) => item.change)).toEqual(report.changes);
  });

  it("is in the first checkpoint after the resume and restored with the session, the oldest dropped beyond the last 50", async () => {
    const { state, report } = reconciled();
    for (let epoch = 1; epoch <= RESUMES_KEPT + 1; epoch += 1) state.recordResume(resumeRecord(report, epoch, CHECKPOINT));
    const store = new InMemoryCheckpoints();
    const checkpoints = new SessionCheckpoints(store, { sessionId: SESSION, ownerId: "account-1", epoch: RESUMES_KEPT + 1 }, pino({ level: "silent" }));
    await checkpoints.createConfirmedCheckpoint(state, "event", "active");

    const restored = await SessionCheckpoints.restoreFromLatestCheckpoint(store, { sessionId: SESSION });
    expect(restored!.state.resumes.map((record) => record.epoch)).toEqual(Array.from({ length: RESUMES_KEPT }, (_, i) => i + 2));
    expect(restored!.state.resumes.at(-1)).toEqual(resumeRecord(report, RESUMES_KEPT + 1, CHECKPOINT));
  });

  it("restores a snapshot from before resumes were kept with none", async () => {
    const { resumes: _, ...older } = newState().toSnapshot(READ_AT);
    const store = new InMemoryCheckpoints();
    await store.saveAndConfirm({ v: 1, service: TRADER_SERVICE, sessionId: SESSION, epoch: 0, seq: 0, kind: "periodic", status: "active", schemaVersion: TRADER_STATE_VERSION, takenAt: READ_AT.toISOString(), state: older });

    const restored = await SessionCheckpoints.restoreFromLatestCheckpoint(store, { sessionId: SESSION });
    expect(restored!.state.resumes).toEqual([]);
  });
});
