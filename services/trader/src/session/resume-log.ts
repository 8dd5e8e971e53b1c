import type { Logger } from "@savepoint/shared";
import type { RestoredSession } from "./checkpoints.js";
import type { ReconciliationReport } from "./report.js";
import { describeChange, formatPl, formatTime, formatUsd } from "./report.js";

/** The seed's resume lines, one log message each (readable as they are with LOG_FORMAT=pretty). */
export function logResume(logger: Logger, { snapshot, state }: RestoredSession): void {
  const at = { sessionId: snapshot.sessionId, epoch: snapshot.epoch, seq: snapshot.seq };
  const { identity } = state;
  logger.info({ ...at, status: snapshot.status }, `✓ Resumed session: ${snapshot.sessionId}`);
  logger.info({ ...at, startedAt: identity.sessionStartedAt }, `Started: ${formatTime(identity.sessionStartedAt)}`);
  logger.info({ ...at, symbols: identity.symbols }, `Symbols: ${identity.symbols.join(",")}`);
  logger.info({ ...at, positions: state.positions.size }, `✓ Loaded ${state.positions.size} positions from database`);
  logger.info({ ...at, takenAt: snapshot.takenAt }, `✓ Restored from checkpoint created at ${formatTime(snapshot.takenAt)}`);
  logger.info({ ...at, activePositions: state.positions.size }, `Active positions: ${state.positions.size}`);
  logger.info({ ...at, closedTrades: state.closedTrades }, `Closed trades: ${state.closedTrades}`);
  logger.info({ ...at, takenAt: snapshot.takenAt }, `Checkpoint: ${formatTime(snapshot.takenAt)}`);
  const value = state.account?.portfolioValue;
  logger.info({ ...at, portfolioValue: value ?? null }, `Last known portfolio value: ${value === undefined ? "unknown" : formatUsd(value)}`);
}

/** Every discrepancy as a warning of its own, then one summary line carrying the whole report. */
export function logReconciliation(logger: Logger, report: ReconciliationReport): void {
  for (const change of report.changes) logger.warn({ sessionId: report.sessionId, change }, `Reconciliation: ${describeChange(change)}`);
  logger.info(
    { report },
    report.changes.length === 0
      ? `✓ Reconciled with the broker: ${report.positionsAfter} positions, no discrepancies`
      : `✓ Reconciled with the broker: ${report.changes.length} discrepancies resolved, ${report.positionsAfter} positions, ${report.closedTradesAdded} trades booked (${formatPl(report.realizedPlAdded)})`,
  );
}
