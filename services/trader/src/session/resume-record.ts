import { z } from "zod";
import type { Change } from "./reconcile.js";
import { describeChange, type ReconciliationReport } from "./report.js";

/**
 * Resumes kept in the state, newest last. The state is written whole on every checkpoint (every second or so),
 * so each record is paid for on every snapshot; 50 covers any session resumed by hand or by a supervisor's
 * restarts, and a session resumed more often than that is crash-looping, where the latest resumes are the ones
 * to read (older ones are still in older snapshots, until retention deletes them).
 */
export const RESUMES_KEPT = 50;

const iso = z.iso.datetime({ offset: true, error: "must be an ISO-8601 timestamp" });
const side = z.enum(["long", "short"]);
const holding = z.strictObject({ side, qty: z.number() });

/**
 * Each kind of Change (reconcile.ts) as stored, by kind: a kind missing here, or stored without a field it
 * requires, fails to compile, since a record the schema refused would leave the session unable to resume.
 */
const CHANGE_SCHEMAS: { [K in Change["kind"]]: z.ZodType<Extract<Change, { kind: K }>> } = {
  entry_filled: z.strictObject({ kind: z.literal("entry_filled"), symbol: z.string(), tradeNo: z.number(), clientOrderId: z.string(), side, qty: z.number(), fillPrice: z.number() }),
  entry_partially_filled: z.strictObject({
    kind: z.literal("entry_partially_filled"),
    symbol: z.string(),
    tradeNo: z.number(),
    clientOrderId: z.string(),
    side,
    qty: z.number(),
    ordered: z.number(),
    fillPrice: z.number(),
  }),
  entry_canceled: z.strictObject({ kind: z.literal("entry_canceled"), symbol: z.string(), tradeNo: z.number(), clientOrderId: z.string(), status: z.string() }),
  order_recovered: z.strictObject({ kind: z.literal("order_recovered"), symbol: z.string(), tradeNo: z.number(), clientOrderId: z.string(), status: z.string(), filledQty: z.number() }),
  placement_not_found: z.strictObject({ kind: z.literal("placement_not_found"), symbol: z.string(), clientOrderId: z.string() }),
  exit_ended: z.strictObject({ kind: z.literal("exit_ended"), symbol: z.string(), tradeNo: z.number(), clientOrderId: z.string(), status: z.string(), filledQty: z.number() }),
  exit_partially_filled: z.strictObject({ kind: z.literal("exit_partially_filled"), symbol: z.string(), tradeNo: z.number(), exitedQty: z.number(), realizedPl: z.number() }),
  position_closed: z.strictObject({
    kind: z.literal("position_closed"),
    trade: z.strictObject({
      symbol: z.string(),
      side,
      qty: z.number(),
      entryPrice: z.number(),
      exitPrice: z.number().nullable(),
      realizedPl: z.number(),
      via: z.enum(["take_profit", "stop_loss", "close_order", "other_order", "unknown"]),
      tradeNo: z.number(),
    }),
    openedUnseen: z.boolean(),
  }),
  position_adopted: z.strictObject({ kind: z.literal("position_adopted"), symbol: z.string(), side, qty: z.number(), avgEntryPrice: z.number() }),
  quantity_corrected: z.strictObject({ kind: z.literal("quantity_corrected"), symbol: z.string(), local: holding, broker: holding }),
  legs_attached: z.strictObject({ kind: z.literal("legs_attached"), symbol: z.string(), takeProfitId: z.string().nullable(), stopLossId: z.string().nullable() }),
  protection_lost: z.strictObject({ kind: z.literal("protection_lost"), symbol: z.string(), detail: z.string() }),
  other_session_entry_canceled: z.strictObject({
    kind: z.literal("other_session_entry_canceled"),
    symbol: z.string(),
    clientOrderId: z.string(),
    status: z.string(),
    filledQty: z.number(),
  }),
};
const changeSchema = z.union(Object.values(CHANGE_SCHEMAS)) as z.ZodType<Change>;

/**
 * What a change was about, for readers who look for one thing (the console's headings):
 * - positions: held at the broker but unknown to the session (adopted), or held in another quantity (corrected);
 * - trades: a position gone at the broker, its trade booked with its P&L, or part of one exited and booked;
 * - orders: orders of the session the broker filled, ended (canceled, expired, rejected), or holds unknown to
 *   the checkpoint (pending or filled), bracket legs found replaced, and other sessions' entries canceled;
 * - client_order_ids: placements that got no answer and are not at the broker, their ids free to use again;
 * - protection: positions the broker holds no stop-loss or take-profit for.
 */
export const CHANGE_CATEGORIES = ["positions", "trades", "orders", "client_order_ids", "protection"] as const;
export type ChangeCategory = (typeof CHANGE_CATEGORIES)[number];

const CATEGORY: Record<Change["kind"], ChangeCategory> = {
  position_adopted: "positions",
  quantity_corrected: "positions",
  position_closed: "trades",
  exit_partially_filled: "trades",
  entry_filled: "orders",
  entry_partially_filled: "orders",
  entry_canceled: "orders",
  order_recovered: "orders",
  exit_ended: "orders",
  legs_attached: "orders",
  other_session_entry_canceled: "orders",
  placement_not_found: "client_order_ids",
  protection_lost: "protection",
};

export const resumeRecordSchema = z.strictObject({
  /** The resuming trader's epoch. */
  epoch: z.number().int().min(0),
  /** When the broker was read for the reconciliation. */
  resumedAt: iso,
  /** The checkpoint the session was resumed from: the previous owner's last. */
  restoredFrom: z.strictObject({ epoch: z.number().int().min(0), seq: z.number().int().min(0), takenAt: iso }),
  /** From that checkpoint to resumedAt: the most the session can have been down. */
  downtimeMs: z.number().int().min(0),
  positions: z.strictObject({ before: z.number().int().min(0), atBroker: z.number().int().min(0), after: z.number().int().min(0) }),
  closedTradesAdded: z.number().int().min(0),
  realizedPlAdded: z.number(),
  /** The report's changes in its order, each with the line the log gave it, so a reader need not know every kind. */
  changes: z.array(z.strictObject({ category: z.enum(CHANGE_CATEGORIES), text: z.string(), change: changeSchema })),
});
export type ResumeRecord = z.infer<typeof resumeRecordSchema>;

/** The record of a resume: its reconciliation report, under the epoch that resumed from the checkpoint `restoredFrom`. */
export function resumeRecord(report: ReconciliationReport, epoch: number, restoredFrom: ResumeRecord["restoredFrom"]): ResumeRecord {
  return {
    epoch,
    resumedAt: report.checkedAt,
    restoredFrom,
    downtimeMs: Math.max(0, Date.parse(report.checkedAt) - Date.parse(restoredFrom.takenAt)),
    positions: { before: report.positionsBefore, atBroker: report.brokerPositions, after: report.positionsAfter },
    closedTradesAdded: report.closedTradesAdded,
    realizedPlAdded: report.realizedPlAdded,
    changes: report.changes.map((change) => ({ category: CATEGORY[change.kind], text: describeChange(change), change })),
  };
}
