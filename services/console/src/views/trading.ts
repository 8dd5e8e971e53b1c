import { z } from "zod";
import type { StoredState } from "../store.js";
import { handovers, type Handover } from "./resumes.js";

/** The trader's state version the console reads (services/trader/src/session/state.ts, TRADER_STATE_VERSION). */
export const TRADER_STATE_VERSION = 1;

/**
 * The fields of a trader snapshot's state that the console shows. Looser than the trader's own schema on
 * purpose: the console displays, it never resumes, so fields it does not show may change freely.
 */
const positionSchema = z.looseObject({
  symbol: z.string(),
  side: z.enum(["long", "short"]),
  qty: z.number(),
  entryPrice: z.number(),
  stopLoss: z.number().nullable(),
  takeProfit: z.number().nullable(),
  tradeNo: z.number().int(),
  origin: z.string(),
  openedAt: z.string().nullable(),
});
/**
 * A resume as the trader recorded it (services/trader/src/session/resume-record.ts): its reconciliation report,
 * each change with the line the trader logged for it, so the console shows it without knowing every kind.
 */
const storedResumeSchema = z.looseObject({
  epoch: z.number().int(),
  resumedAt: z.string(),
  restoredFrom: z.looseObject({ epoch: z.number().int(), seq: z.number().int(), takenAt: z.string() }),
  downtimeMs: z.number(),
  positions: z.looseObject({ before: z.number(), atBroker: z.number(), after: z.number() }),
  closedTradesAdded: z.number(),
  realizedPlAdded: z.number(),
  changes: z.array(z.looseObject({ category: z.string(), text: z.string(), change: z.looseObject({ kind: z.string() }) })),
});
export type StoredResume = z.infer<typeof storedResumeSchema>;

const traderStateSchema = z.looseObject({
  sessionStartedAt: z.string(),
  symbols: z.array(z.string()),
  strategy: z.looseObject({ kind: z.string() }),
  account: z.looseObject({ portfolioValue: z.number(), cash: z.number(), buyingPower: z.number(), asOf: z.string() }).nullable(),
  positions: z.array(positionSchema),
  closedTrades: z.number().int().min(0),
  realizedPl: z.number(),
  /** The trader's latest resumes; absent in snapshots from before it kept them. */
  resumes: z.array(storedResumeSchema).default([]),
});
type TraderState = z.infer<typeof traderStateSchema>;
export type Position = z.infer<typeof positionSchema>;

export interface EquityPoint {
  takenAt: string;
  epoch: number;
  seq: number;
  kind: string;
  /** The account's portfolio value at the snapshot; null when the trader had not read the account yet. */
  portfolioValue: number | null;
  realizedPl: number;
  openPositions: number;
}

/** Trades that closed between two snapshots: the positions that left, and what the session booked for them. */
export interface Closing {
  takenAt: string;
  epoch: number;
  seq: number;
  /** Closed-trade count added (trades that opened and closed between snapshots count too, with no position shown). */
  trades: number;
  realizedPl: number;
  positions: Position[];
}

/**
 * A resume, with what the new owner's reconciliation with the broker changed in the state it took over: the
 * trader's own report of it, and the difference between the two snapshots, all there is for resumes from before
 * the trader kept its reports (or older than the last it keeps).
 */
export interface TradingResume extends Handover {
  report: StoredResume | null;
  positionsOpened: string[];
  positionsClosed: string[];
  closedTradesAdded: number;
  realizedPlAdded: number;
}

export interface UnreadableSnapshot {
  epoch: number;
  seq: number;
  problem: string;
}

export interface TradingView {
  symbols: string[];
  strategy: string | null;
  startedAt: string | null;
  equity: EquityPoint[];
  positions: Position[];
  account: TraderState["account"];
  closedTrades: number;
  realizedPl: number;
  closings: Closing[];
  resumes: TradingResume[];
  unreadable: UnreadableSnapshot[];
}

interface Readable {
  snapshot: StoredState;
  state: TraderState;
}

const cents = (value: number) => Math.round(value * 100) / 100;
const key = (position: Position) => `${position.symbol}#${position.tradeNo}`;

/** A trading session's page, from its snapshots in (epoch, seq) order. */
export function tradingView(snapshots: readonly StoredState[]): TradingView {
  const readable: Readable[] = [];
  const unreadable: UnreadableSnapshot[] = [];
  for (const snapshot of snapshots) {
    if (snapshot.schemaVersion !== TRADER_STATE_VERSION) {
      unreadable.push({ epoch: snapshot.epoch, seq: snapshot.seq, problem: `schemaVersion ${snapshot.schemaVersion}; the console reads ${TRADER_STATE_VERSION}` });
      continue;
    }
    const parsed = traderStateSchema.safeParse(snapshot.state);
    if (parsed.success) readable.push({ snapshot, state: parsed.data });
    else unreadable.push({ epoch: snapshot.epoch, seq: snapshot.seq, problem: z.prettifyError(parsed.error).replaceAll("\n", " ") });
  }

  const closings: Closing[] = [];
  for (let i = 1; i < readable.length; i += 1) {
    const before = readable[i - 1]!.state;
    const { snapshot, state } = readable[i]!;
    const trades = state.closedTrades - before.closedTrades;
    if (trades <= 0) continue;
    const still = new Set(state.positions.map(key));
    closings.push({
      takenAt: snapshot.takenAt,
      epoch: snapshot.epoch,
      seq: snapshot.seq,
      trades,
      realizedPl: cents(state.realizedPl - before.realizedPl),
      positions: before.positions.filter((position) => !still.has(key(position))),
    });
  }

  const byPosition = new Map(readable.map((entry) => [`${entry.snapshot.epoch}.${entry.snapshot.seq}`, entry.state]));
  const reports = new Map((readable.at(-1)?.state.resumes ?? []).map((report) => [report.epoch, report]));
  const resumes = handovers(readable.map((entry) => entry.snapshot)).map((handover): TradingResume => {
    const before = byPosition.get(`${handover.lastBefore.epoch}.${handover.lastBefore.seq}`)!;
    const after = byPosition.get(`${handover.firstAfter.epoch}.${handover.firstAfter.seq}`)!;
    const held = new Set(before.positions.map(key));
    const holds = new Set(after.positions.map(key));
    return {
      ...handover,
      report: reports.get(handover.toEpoch) ?? null,
      positionsOpened: after.positions.filter((position) => !held.has(key(position))).map(key),
      positionsClosed: before.positions.filter((position) => !holds.has(key(position))).map(key),
      closedTradesAdded: after.closedTrades - before.closedTrades,
      realizedPlAdded: cents(after.realizedPl - before.realizedPl),
    };
  });

  const latest = readable.at(-1)?.state;
  return {
    symbols: latest?.symbols ?? [],
    strategy: latest?.strategy.kind ?? null,
    startedAt: latest?.sessionStartedAt ?? null,
    equity: readable.map(({ snapshot, state }) => ({
      takenAt: snapshot.takenAt,
      epoch: snapshot.epoch,
      seq: snapshot.seq,
      kind: snapshot.kind,
      portfolioValue: state.account?.portfolioValue ?? null,
      realizedPl: state.realizedPl,
      openPositions: state.positions.length,
    })),
    positions: latest?.positions ?? [],
    account: latest?.account ?? null,
    closedTrades: latest?.closedTrades ?? 0,
    realizedPl: latest?.realizedPl ?? 0,
    closings,
    resumes,
    unreadable,
  };
}
