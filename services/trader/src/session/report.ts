import type { Change } from "./reconcile.js";
import type { ExitVia } from "./state.js";

/** What reconciling with the broker found and did, for the log and for --reconcile-only. */
export interface ReconciliationReport {
  /** Null when no checkpointed session was found and the broker was compared with an empty session. */
  sessionId: string | null;
  accountId: string;
  checkedAt: string;
  positionsBefore: number;
  brokerPositions: number;
  positionsAfter: number;
  closedTradesAdded: number;
  realizedPlAdded: number;
  changes: Change[];
}

/**
 * $102,345.67, -$12.00: what Intl.NumberFormat's en-US currency format writes, without building one, which
 * loads the locale's data and cost a resume more than ten milliseconds before its first line.
 */
export function formatUsd(value: number): string {
  // Rounded half up from the number's decimal digits, as Intl rounds (2.675 is $2.68, though 2.675 * 100 is 267.4999…).
  const cents = Math.round(Number(`${Math.abs(value)}e2`)) || 0;
  const whole = String(Math.floor(cents / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${value < 0 || Object.is(value, -0) ? "-" : ""}$${whole}.${String(cents % 100).padStart(2, "0")}`;
}
/** +$48.80 / -$12.00 */
export const formatPl = (value: number) => `${value < 0 ? "-" : "+"}${formatUsd(Math.abs(value))}`;
/** 2025-11-08 10:45:23 UTC */
export const formatTime = (iso: string) => `${iso.replace("T", " ").slice(0, 19)} UTC`;

const VIA: Record<ExitVia, string> = {
  take_profit: "its take-profit",
  stop_loss: "its stop-loss",
  close_order: "the session's exit",
  other_order: "an order placed outside the session",
  unknown: "no fill the broker shows",
};

/** One line per change, naming the symbol first. */
export function describeChange(change: Change): string {
  switch (change.kind) {
    case "entry_filled":
      return `${change.symbol}: entry ${change.clientOrderId} filled: ${change.side} ${change.qty} @ ${change.fillPrice}`;
    case "entry_partially_filled":
      return `${change.symbol}: entry ${change.clientOrderId} partly filled: ${change.side} ${change.qty} of ${change.ordered} @ ${change.fillPrice}; the position is what filled`;
    case "entry_canceled":
      return `${change.symbol}: entry ${change.clientOrderId} ended ${change.status} without a fill; dropped`;
    case "order_recovered":
      return `${change.symbol}: order ${change.clientOrderId} (${change.status}, ${change.filledQty} filled) was placed but is missing from the checkpoint; recovered from the broker`;
    case "placement_not_found":
      return `${change.symbol}: entry ${change.clientOrderId} got no answer and the broker has no such order; the next decision reuses its id`;
    case "exit_ended":
      return `${change.symbol}: exit ${change.clientOrderId} ended ${change.status} with ${change.filledQty} filled; the position stays open and its next exit takes a new id`;
    case "exit_partially_filled":
      return `${change.symbol}: exits of trade ${change.tradeNo} have filled ${change.exitedQty}; realised ${formatPl(change.realizedPl)} more, the rest stays open`;
    case "position_closed": {
      const { trade } = change;
      const unpriced = trade.realizedPl === 0 ? "at an unknown price (P&L not booked)" : `at an unknown price (realised ${formatPl(trade.realizedPl)} by the exit fills seen before)`;
      const exit = trade.exitPrice === null ? unpriced : `@ ${trade.exitPrice} (entry ${trade.entryPrice}), realised ${formatPl(trade.realizedPl)}`;
      const unseen = change.openedUnseen ? "; it opened and closed while the session was not watching" : "";
      return `${trade.symbol}: ${trade.side} ${trade.qty} closed by ${VIA[trade.via]} ${exit}${unseen}`;
    }
    case "position_adopted":
      return `${change.symbol}: held at the broker (${change.side} ${change.qty} @ ${change.avgEntryPrice}) but unknown to the session; adopted without bracket protection`;
    case "quantity_corrected":
      return `${change.symbol}: the session had ${change.local.side} ${change.local.qty}, the broker has ${change.broker.side} ${change.broker.qty}; took the broker's`;
    case "legs_attached":
      return `${change.symbol}: bracket legs re-attached (take-profit ${change.takeProfitId ?? "none"}, stop-loss ${change.stopLossId ?? "none"})`;
    case "protection_lost":
      return `${change.symbol}: ${change.detail}`;
    case "other_session_entry_canceled": {
      const outcome = change.filledQty > 0 ? `${change.filledQty} of it filled, which the session holds` : "nothing of it filled";
      return `${change.symbol}: entry ${change.clientOrderId} of another session was still working on the account, watched by nobody; canceled before reconciling (it ended ${change.status}: ${outcome})`;
    }
  }
}

/** The report as text, the way --reconcile-only prints it. */
export function formatReport(report: ReconciliationReport): string {
  const lines = [
    `Reconciliation with the broker (account ${report.accountId}) at ${formatTime(report.checkedAt)}`,
    `  Session: ${report.sessionId ?? "none checkpointed (compared with an empty session)"}`,
    `  Positions: ${report.positionsBefore} in the checkpoint, ${report.brokerPositions} at the broker, ${report.positionsAfter} after reconciling`,
    `  Closed trades added: ${report.closedTradesAdded} (realised ${formatPl(report.realizedPlAdded)})`,
  ];
  if (report.changes.length === 0) lines.push("  No discrepancies: the session and the broker agree.");
  else lines.push(`  ${report.changes.length} discrepancies, each resolved:`, ...report.changes.map((change) => `    - ${describeChange(change)}`));
  return lines.join("\n");
}
