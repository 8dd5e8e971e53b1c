import { describe, expect, it } from "vitest";
import type { BrokerOrder, BrokerPosition } from "../src/broker/types.js";
import { closeClientOrderId, entryClientOrderId } from "../src/session/client-order-ids.js";
import { reconcile, ReconciliationError, type BrokerView, type Change } from "../src/session/reconcile.js";
import { TradingState, type ClosedTrade, type PendingEntry, type TraderState } from "../src/session/state.js";
import { bracketOrder, brokerAccount, brokerOrder, brokerPosition, openPosition, SUBMITTED_AT } from "./scripted-broker.js";

/**
 * Every case of `reconcile(state, view)` as one row: the session's state before, what the broker says, the
 * changes reported and the state after. The broker's answers are built by hand, so each row states exactly
 * the picture it reconciles; reconcile.test.ts checks the same logic on answers read from the simulator.
 */

const SESSION = "trader-1";
const READ_AT = new Date("2026-01-05T16:00:00.000Z");
const entryId = (symbol: string, tradeNo = 1) => entryClientOrderId(SESSION, symbol, tradeNo);
const LATER = new Date(SUBMITTED_AT.getTime() + 10 * 60_000);

const newState = () =>
  new TradingState({
    sessionStartedAt: SUBMITTED_AT.toISOString(),
    brokerSessionStartedAt: SUBMITTED_AT.toISOString(),
    symbols: ["AAPL", "MSFT"],
    strategy: { kind: "rule", stopLossPct: 10, takeProfitPct: 10, positionSize: 1_000, lookbackBars: 5, entryThresholdPct: 0 },
  });

const pending = (symbol: string, fields: Partial<PendingEntry> = {}): PendingEntry => ({
  symbol,
  side: "long",
  qty: 10,
  tradeNo: 1,
  clientOrderId: entryId(symbol, fields.tradeNo),
  orderId: "entry-1",
  takeProfit: 110,
  stopLoss: 90,
  submittedAt: SUBMITTED_AT.toISOString(),
  confirmed: true,
  ...fields,
});


/** The session's AAPL bracket `entry-1` with legs `tp-1` (110) and `sl-1` (90). */
const aaplBracket = (script: Partial<Parameters<typeof bracketOrder>[0]> = {}) =>
  bracketOrder({
    id: "entry-1",
    clientOrderId: entryId("AAPL"),
    symbol: "AAPL",
    ...script,
    takeProfitLeg: { id: "tp-1", ...script.takeProfitLeg },
    stopLossLeg: { id: "sl-1", ...script.stopLossLeg },
  });

const canceledLegs = { takeProfitLeg: { status: "canceled" }, stopLossLeg: { status: "canceled" } };
/** The AAPL trade's first exit, asked for and not answered yet. */
const EXIT = { clientOrderId: closeClientOrderId(SESSION, "AAPL", 1), orderId: null, method: "replace_take_profit" as const, requestedAt: SUBMITTED_AT.toISOString() };

/**
 * AAPL 4 whose bracket ended with its legs canceled, guarded instead by `stop-1`: a protective stop (sell 4 at 90)
 * under the trade's first close id, as a session's end while the market was closed placed it.
 */
const PROTECTIVE_STOP_ID = closeClientOrderId(SESSION, "AAPL", 1);
/** That position with the stop as its exit (`method` when asked for at `requestedAt`), or with no exit. */
const stopGuarded = (exit: { method: "protective_stop" | "cancel_protection"; requestedAt: Date } | null) =>
  openPosition("AAPL", {
    qty: 4,
    ...(exit === null ? { exit: null } : { exit: { clientOrderId: PROTECTIVE_STOP_ID, orderId: "stop-1", method: exit.method, requestedAt: exit.requestedAt.toISOString() } }),
    closeAttempts: 1,
    orders: { entryId: "entry-1", entryClientOrderId: entryId("AAPL"), takeProfitId: null, stopLossId: null },
  });
const stopGuardedOrders = (stopStatus: BrokerOrder["status"]) => [
  aaplBracket({ status: "canceled", filledAt: 100, filledQty: 4, ...canceledLegs }),
  brokerOrder({ id: "stop-1", clientOrderId: PROTECTIVE_STOP_ID, symbol: "AAPL", side: "sell", type: "stop", qty: 4, stopPrice: 90, status: stopStatus }),
];

interface Row {
  name: string;
  given?: (state: TradingState) => void;
  orders?: BrokerOrder[];
  positions?: BrokerPosition[];
  /** A live sync's view (only the symbols in `examined` had their orders read) instead of a resume's. */
  examined?: string[];
  changes: Change[];
  after: Partial<TraderState>;
}

/** An AAPL trade #1 of 10 shares entered long at 100, closed as `fields` say. */
const trade = (fields: Pick<ClosedTrade, "exitPrice" | "realizedPl" | "via"> & Partial<ClosedTrade>): ClosedTrade => ({
  symbol: "AAPL",
  side: "long",
  qty: 10,
  entryPrice: 100,
  tradeNo: 1,
  ...fields,
});

const rows: Row[] = [
  // Pending entries.
  {
    name: "drops an entry whose placement got no answer and never reached the broker, without using up its trade number",
    given: (state) => state.pendingEntries.set("MSFT", pending("MSFT", { orderId: null, confirmed: false })),
    changes: [{ kind: "placement_not_found", symbol: "MSFT", clientOrderId: entryId("MSFT") }],
    after: { pendingEntries: [], nextTradeNo: {} },
  },
  {
    name: "confirms an entry whose placement got no answer but is working at the broker, with the broker's order id",
    given: (state) => state.pendingEntries.set("AAPL", pending("AAPL", { orderId: null, confirmed: false })),
    orders: [aaplBracket()],
    changes: [],
    after: { pendingEntries: [pending("AAPL", { orderId: "entry-1", confirmed: true })], nextTradeNo: { AAPL: 2 } },
  },
  {
    name: "drops an entry the broker canceled unfilled, its trade number used",
    given: (state) => state.pendingEntries.set("AAPL", pending("AAPL")),
    orders: [aaplBracket({ status: "canceled", ...canceledLegs })],
    changes: [{ kind: "entry_canceled", symbol: "AAPL", tradeNo: 1, clientOrderId: entryId("AAPL"), status: "canceled" }],
    after: { pendingEntries: [], positions: [], nextTradeNo: { AAPL: 2 } },
  },
  {
    name: "drops an entry that expired unfilled",
    given: (state) => state.pendingEntries.set("AAPL", pending("AAPL")),
    orders: [aaplBracket({ status: "expired", ...canceledLegs })],
    changes: [{ kind: "entry_canceled", symbol: "AAPL", tradeNo: 1, clientOrderId: entryId("AAPL"), status: "expired" }],
    after: { pendingEntries: [] },
  },
  {
    name: "opens the position of a pending entry that filled, with its bracket's legs and the broker's fill time",
    given: (state) => state.pendingEntries.set("AAPL", pending("AAPL")),
    orders: [aaplBracket({ filledAt: 100.5 })],
    positions: [brokerPosition("AAPL", 10, 100.5)],
    changes: [{ kind: "entry_filled", symbol: "AAPL", tradeNo: 1, clientOrderId: entryId("AAPL"), side: "long", qty: 10, fillPrice: 100.5 }],
    after: { pendingEntries: [], positions: [openPosition("AAPL", { entryPrice: 100.5 })], nextTradeNo: { AAPL: 2 } },
  },
  {
    name: "opens a short from a sell entry, its take-profit below and its stop-loss above",
    given: (state) => state.pendingEntries.set("AAPL", pending("AAPL", { side: "short", takeProfit: 90, stopLoss: 110 })),
    orders: [aaplBracket({ side: "sell", filledAt: 100, takeProfit: 90, stopLoss: 110 })],
    positions: [brokerPosition("AAPL", -10, 100)],
    changes: [{ kind: "entry_filled", symbol: "AAPL", tradeNo: 1, clientOrderId: entryId("AAPL"), side: "short", qty: 10, fillPrice: 100 }],
    after: { positions: [openPosition("AAPL", { side: "short", takeProfit: 90, stopLoss: 110 })] },
  },
  {
    name: "leaves a broker position behind a still-pending entry to the next sync (it filled after its order was read)",
    given: (state) => state.pendingEntries.set("AAPL", pending("AAPL")),
    orders: [aaplBracket()],
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [],
    after: { pendingEntries: [pending("AAPL")], positions: [] },
  },

  // Orders of this session the state does not know (placed after the last checkpoint).
  {
    name: "recovers a working entry placed after the checkpoint as pending",
    orders: [aaplBracket()],
    changes: [{ kind: "order_recovered", symbol: "AAPL", tradeNo: 1, clientOrderId: entryId("AAPL"), status: "new", filledQty: 0 }],
    after: { pendingEntries: [pending("AAPL")], nextTradeNo: { AAPL: 2 } },
  },
  {
    name: "recovers a filled entry placed after the checkpoint as an open position",
    orders: [aaplBracket({ filledAt: 100 })],
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [{ kind: "order_recovered", symbol: "AAPL", tradeNo: 1, clientOrderId: entryId("AAPL"), status: "filled", filledQty: 10 }],
    after: { positions: [openPosition("AAPL")], nextTradeNo: { AAPL: 2 } },
  },
  {
    name: "books what the exits of a recovered entry filled already, though the position stays open (a fill while down)",
    orders: [aaplBracket({ filledAt: 100, stopLossLeg: { filledAt: 90, filledQty: 3 } })],
    positions: [brokerPosition("AAPL", 7, 100)],
    changes: [
      { kind: "order_recovered", symbol: "AAPL", tradeNo: 1, clientOrderId: entryId("AAPL"), status: "filled", filledQty: 10 },
      { kind: "exit_partially_filled", symbol: "AAPL", tradeNo: 1, exitedQty: 3, realizedPl: -30 },
      { kind: "quantity_corrected", symbol: "AAPL", local: { side: "long", qty: 10 }, broker: { side: "long", qty: 7 } },
    ],
    after: { positions: [openPosition("AAPL", { qty: 7, exitFills: { "sl-1": { qty: 3, price: 90, realizedPl: -30 } } })], realizedPl: -30, closedTrades: 0 },
  },
  {
    name: "records that an unknown entry canceled unfilled used its trade number, and nothing else",
    orders: [aaplBracket({ status: "canceled", ...canceledLegs })],
    changes: [{ kind: "order_recovered", symbol: "AAPL", tradeNo: 1, clientOrderId: entryId("AAPL"), status: "canceled", filledQty: 0 }],
    after: { positions: [], pendingEntries: [], nextTradeNo: { AAPL: 2 } },
  },
  {
    name: "ignores a known entry that was canceled long ago",
    given: (state) => state.markTradeNoUsed("AAPL", 1),
    orders: [aaplBracket({ status: "canceled", ...canceledLegs })],
    changes: [],
    after: { positions: [], pendingEntries: [], nextTradeNo: { AAPL: 2 } },
  },
  {
    name: "books a whole trade that opened and closed while the session was down",
    orders: [aaplBracket({ filledAt: 100, stopLossLeg: { filledAt: 90 }, takeProfitLeg: { status: "canceled" } })],
    changes: [{ kind: "position_closed", openedUnseen: true, trade: trade({ exitPrice: 90, realizedPl: -100, via: "stop_loss" }) }],
    after: { positions: [], closedTrades: 1, realizedPl: -100, nextTradeNo: { AAPL: 2 } },
  },
  {
    name: "books a pending entry that filled and exited while the session was down, and drops it",
    given: (state) => state.pendingEntries.set("AAPL", pending("AAPL")),
    orders: [aaplBracket({ filledAt: 100, takeProfitLeg: { filledAt: 110 }, stopLossLeg: { status: "canceled" } })],
    changes: [{ kind: "position_closed", openedUnseen: true, trade: trade({ exitPrice: 110, realizedPl: 100, via: "take_profit" }) }],
    after: { pendingEntries: [], positions: [], closedTrades: 1, realizedPl: 100 },
  },
  {
    name: "does not book again a trade the state already closed",
    given: (state) => state.markTradeNoUsed("AAPL", 1),
    orders: [aaplBracket({ filledAt: 100, stopLossLeg: { filledAt: 90 }, takeProfitLeg: { status: "canceled" } })],
    changes: [],
    after: { closedTrades: 0, realizedPl: 0 },
  },

  // Positions the session holds.
  {
    name: "closes a position whose take-profit filled, with the P&L of its own fills",
    given: (state) => state.open(openPosition("AAPL")),
    orders: [aaplBracket({ filledAt: 100, takeProfitLeg: { filledAt: 110.5 }, stopLossLeg: { status: "canceled" } })],
    changes: [{ kind: "position_closed", openedUnseen: false, trade: trade({ exitPrice: 110.5, realizedPl: 105, via: "take_profit" }) }],
    after: { positions: [], closedTrades: 1, realizedPl: 105 },
  },
  {
    name: "closes a position whose stop-loss filled, at the entry's fill price rather than the session's",
    given: (state) => state.open(openPosition("AAPL", { entryPrice: 99 })),
    orders: [aaplBracket({ filledAt: 100, stopLossLeg: { filledAt: 89.9 }, takeProfitLeg: { status: "canceled" } })],
    changes: [{ kind: "position_closed", openedUnseen: false, trade: trade({ exitPrice: 89.9, realizedPl: -101, via: "stop_loss" }) }],
    after: { positions: [], realizedPl: -101 },
  },
  {
    name: "closes a short whose stop-loss filled, at a loss",
    given: (state) => state.open(openPosition("AAPL", { side: "short", takeProfit: 90, stopLoss: 110 })),
    orders: [aaplBracket({ side: "sell", filledAt: 100, takeProfit: 90, stopLoss: 110, stopLossLeg: { filledAt: 105 }, takeProfitLeg: { status: "canceled" } })],
    changes: [{ kind: "position_closed", openedUnseen: false, trade: trade({ side: "short", exitPrice: 105, realizedPl: -50, via: "stop_loss" }) }],
    after: { positions: [], realizedPl: -50 },
  },
  {
    name: "closes a position by this session's own close order",
    given: (state) => state.open(openPosition("AAPL")),
    orders: [
      aaplBracket({ filledAt: 100, ...canceledLegs }),
      brokerOrder({ clientOrderId: closeClientOrderId(SESSION, "AAPL", 1), symbol: "AAPL", side: "sell", status: "filled", filledQty: 10, filledAvgPrice: 103, filledAt: LATER }),
    ],
    changes: [{ kind: "position_closed", openedUnseen: false, trade: trade({ exitPrice: 103, realizedPl: 30, via: "close_order" }) }],
    after: { positions: [], closedTrades: 1, realizedPl: 30 },
  },
  {
    name: "closes a position gone at the broker by its close order even when that order is all the broker shows",
    given: (state) => state.open(openPosition("AAPL")),
    orders: [brokerOrder({ clientOrderId: closeClientOrderId(SESSION, "AAPL", 1), symbol: "AAPL", side: "sell", status: "filled", filledQty: 10, filledAvgPrice: 97, filledAt: LATER })],
    changes: [{ kind: "position_closed", openedUnseen: false, trade: trade({ exitPrice: 97, realizedPl: -30, via: "close_order" }) }],
    after: { positions: [], realizedPl: -30 },
  },
  {
    name: "closes a position closed by someone else's orders at their average fill",
    given: (state) => state.open(openPosition("AAPL")),
    orders: [
      aaplBracket({ filledAt: 100, ...canceledLegs }),
      brokerOrder({ clientOrderId: "closed-by-hand-1", symbol: "AAPL", side: "sell", qty: 4, status: "filled", filledQty: 4, filledAvgPrice: 95, filledAt: LATER }),
      brokerOrder({ clientOrderId: "closed-by-hand-2", symbol: "AAPL", side: "sell", qty: 6, status: "filled", filledQty: 6, filledAvgPrice: 96, filledAt: LATER }),
      brokerOrder({ clientOrderId: "bought-elsewhere", symbol: "MSFT", side: "sell", status: "filled", filledQty: 10, filledAvgPrice: 400, filledAt: LATER }),
    ],
    changes: [{ kind: "position_closed", openedUnseen: false, trade: trade({ exitPrice: 95.6, realizedPl: -44, via: "other_order" }) }],
    after: { positions: [], realizedPl: -44 },
  },
  {
    name: "does not take a fill from before the position opened as its exit; the exit price is then unknown",
    given: (state) => state.open(openPosition("AAPL", { openedAt: LATER.toISOString() })),
    orders: [brokerOrder({ clientOrderId: "closed-by-hand", symbol: "AAPL", side: "sell", status: "filled", filledQty: 10, filledAvgPrice: 95, filledAt: SUBMITTED_AT })],
    changes: [{ kind: "position_closed", openedUnseen: false, trade: trade({ exitPrice: null, realizedPl: 0, via: "unknown" }) }],
    after: { positions: [], closedTrades: 1, realizedPl: 0 },
  },
  {
    name: "does not take a fill on the entry's side as an exit",
    given: (state) => state.open(openPosition("AAPL")),
    orders: [brokerOrder({ clientOrderId: "bought-by-hand", symbol: "AAPL", side: "buy", status: "filled", filledQty: 10, filledAvgPrice: 95, filledAt: LATER })],
    changes: [{ kind: "position_closed", openedUnseen: false, trade: trade({ exitPrice: null, realizedPl: 0, via: "unknown" }) }],
    after: { positions: [] },
  },
  {
    name: "leaves a position a live sync did not examine to the next sync, even when the broker no longer lists it",
    given: (state) => state.open(openPosition("AAPL")),
    examined: [],
    changes: [],
    after: { positions: [openPosition("AAPL")] },
  },
  {
    name: "closes a position a live sync examined and the broker no longer lists",
    given: (state) => state.open(openPosition("AAPL")),
    examined: ["AAPL"],
    changes: [{ kind: "position_closed", openedUnseen: false, trade: trade({ exitPrice: null, realizedPl: 0, via: "unknown" }) }],
    after: { positions: [] },
  },
  {
    name: "takes the broker's quantity and average price when they differ from the session's",
    given: (state) => state.open(openPosition("AAPL")),
    positions: [brokerPosition("AAPL", 15, 101)],
    changes: [{ kind: "quantity_corrected", symbol: "AAPL", local: { side: "long", qty: 10 }, broker: { side: "long", qty: 15 } }],
    after: { positions: [openPosition("AAPL", { qty: 15, entryPrice: 101 })] },
  },
  {
    name: "takes the broker's side when the position flipped",
    given: (state) => state.open(openPosition("AAPL")),
    positions: [brokerPosition("AAPL", -5, 98)],
    changes: [{ kind: "quantity_corrected", symbol: "AAPL", local: { side: "long", qty: 10 }, broker: { side: "short", qty: 5 } }],
    after: { positions: [openPosition("AAPL", { side: "short", qty: 5, entryPrice: 98 })] },
  },
  {
    name: "changes nothing when the broker holds what the session holds",
    given: (state) => state.open(openPosition("AAPL")),
    orders: [aaplBracket({ filledAt: 100 })],
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [],
    after: { positions: [openPosition("AAPL")] },
  },
  {
    name: "re-attaches legs replaced at the broker, taking their prices",
    given: (state) => state.open(openPosition("AAPL")),
    orders: [aaplBracket({ filledAt: 100, stopLoss: 95, stopLossLeg: { id: "sl-2" } })],
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [{ kind: "legs_attached", symbol: "AAPL", takeProfitId: "tp-1", stopLossId: "sl-2" }],
    after: { positions: [openPosition("AAPL", { stopLoss: 95, orders: { entryId: "entry-1", entryClientOrderId: entryId("AAPL"), takeProfitId: "tp-1", stopLossId: "sl-2" } })] },
  },
  {
    name: "attaches the legs of a position restored without them",
    given: (state) => state.open(openPosition("AAPL", { orders: { entryId: null, entryClientOrderId: entryId("AAPL"), takeProfitId: null, stopLossId: null } })),
    orders: [aaplBracket({ filledAt: 100 })],
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [{ kind: "legs_attached", symbol: "AAPL", takeProfitId: "tp-1", stopLossId: "sl-1" }],
    after: { positions: [openPosition("AAPL")] },
  },
  {
    name: "reports a position whose exit legs were canceled without a fill as unprotected",
    given: (state) => state.open(openPosition("AAPL")),
    orders: [aaplBracket({ filledAt: 100, ...canceledLegs })],
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [
      {
        kind: "protection_lost",
        symbol: "AAPL",
        detail: "its exit legs are canceled and canceled without a fill, so the broker holds no stop-loss or take-profit for it; the session closes it at market",
      },
    ],
    after: { positions: [openPosition("AAPL", { orders: { entryId: "entry-1", entryClientOrderId: entryId("AAPL"), takeProfitId: null, stopLossId: null } })] },
  },
  {
    name: "reports the lost protection once: legs it knows are gone are not reported again",
    given: (state) => state.open(openPosition("AAPL", { orders: { entryId: "entry-1", entryClientOrderId: entryId("AAPL"), takeProfitId: null, stopLossId: null } })),
    orders: [aaplBracket({ filledAt: 100, ...canceledLegs })],
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [],
    after: { positions: [openPosition("AAPL", { orders: { entryId: "entry-1", entryClientOrderId: entryId("AAPL"), takeProfitId: null, stopLossId: null } })] },
  },

  // Partial entry fills: the position is what filled; the rest works on, its legs held until it is whole.
  {
    name: "opens a position of what a pending entry has filled so far, its legs held",
    given: (state) => state.pendingEntries.set("AAPL", pending("AAPL")),
    orders: [aaplBracket({ filledAt: 100.5, filledQty: 4 })],
    positions: [brokerPosition("AAPL", 4, 100.5)],
    changes: [{ kind: "entry_partially_filled", symbol: "AAPL", tradeNo: 1, clientOrderId: entryId("AAPL"), side: "long", qty: 4, ordered: 10, fillPrice: 100.5 }],
    // Alpaca stamps filled_at only once the order has filled whole.
    after: { pendingEntries: [], positions: [openPosition("AAPL", { qty: 4, entryPrice: 100.5, openedAt: null, entryFilling: true })], nextTradeNo: { AAPL: 2 } },
  },
  {
    name: "grows the position as the rest of its entry fills, at the entry's average price",
    given: (state) => state.open(openPosition("AAPL", { qty: 4, entryPrice: 100.5, openedAt: null, entryFilling: true })),
    orders: [aaplBracket({ filledAt: 100.8 })],
    positions: [brokerPosition("AAPL", 10, 100.8)],
    changes: [{ kind: "entry_filled", symbol: "AAPL", tradeNo: 1, clientOrderId: entryId("AAPL"), side: "long", qty: 10, fillPrice: 100.8 }],
    after: { positions: [openPosition("AAPL", { entryPrice: 100.8, openedAt: SUBMITTED_AT.toISOString() })] },
  },
  {
    name: "keeps what a canceled entry filled, unprotected, since Alpaca cancels its legs with it",
    given: (state) => state.pendingEntries.set("AAPL", pending("AAPL")),
    orders: [aaplBracket({ filledAt: 100, filledQty: 3, status: "canceled", ...canceledLegs })],
    positions: [brokerPosition("AAPL", 3, 100)],
    changes: [
      { kind: "entry_partially_filled", symbol: "AAPL", tradeNo: 1, clientOrderId: entryId("AAPL"), side: "long", qty: 3, ordered: 10, fillPrice: 100 },
      {
        kind: "protection_lost",
        symbol: "AAPL",
        detail: "its exit legs are canceled and canceled without a fill, so the broker holds no stop-loss or take-profit for it; the session closes it at market",
      },
    ],
    after: { positions: [openPosition("AAPL", { qty: 3, openedAt: null, orders: { entryId: "entry-1", entryClientOrderId: entryId("AAPL"), takeProfitId: null, stopLossId: null } })] },
  },

  // Exits in progress: the take-profit leg replaced under the trade's close id, or a market close.
  {
    name: "follows the exit's replacement once the replace completed, keeping the planned take-profit",
    given: (state) => state.open(openPosition("AAPL", { exit: { ...EXIT, orderId: "tp-2" }, closeAttempts: 1 })),
    orders: [aaplBracket({ filledAt: 100, takeProfitLeg: { id: "tp-2", clientOrderId: closeClientOrderId(SESSION, "AAPL", 1), limitPrice: 97.5 } })],
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [],
    after: { positions: [openPosition("AAPL", { exit: { ...EXIT, orderId: "tp-2" }, closeAttempts: 1, orders: { entryId: "entry-1", entryClientOrderId: entryId("AAPL"), takeProfitId: "tp-2", stopLossId: "sl-1" } })] },
  },
  {
    name: "books a position closed by its exit's replacement leg as closed by the session's exit",
    given: (state) => state.open(openPosition("AAPL", { exit: { ...EXIT, orderId: "tp-2" }, closeAttempts: 1 })),
    orders: [aaplBracket({ filledAt: 100, takeProfitLeg: { id: "tp-2", clientOrderId: closeClientOrderId(SESSION, "AAPL", 1), filledAt: 98 }, stopLossLeg: { status: "canceled" } })],
    changes: [{ kind: "position_closed", openedUnseen: false, trade: trade({ exitPrice: 98, realizedPl: -20, via: "close_order" }) }],
    after: { positions: [], closedTrades: 1, realizedPl: -20 },
  },
  {
    name: "keeps a position open while its exit has filled only part of it, at the broker's quantity",
    given: (state) => state.open(openPosition("AAPL", { exit: { ...EXIT, orderId: "tp-2" }, closeAttempts: 1 })),
    orders: [aaplBracket({ filledAt: 100, takeProfitLeg: { id: "tp-2", clientOrderId: closeClientOrderId(SESSION, "AAPL", 1), filledAt: 98, filledQty: 6 } })],
    positions: [brokerPosition("AAPL", 4, 100)],
    changes: [
      { kind: "exit_partially_filled", symbol: "AAPL", tradeNo: 1, exitedQty: 6, realizedPl: -12 },
      { kind: "quantity_corrected", symbol: "AAPL", local: { side: "long", qty: 10 }, broker: { side: "long", qty: 4 } },
    ],
    after: {
      positions: [
        openPosition("AAPL", {
          qty: 4,
          exit: { ...EXIT, orderId: "tp-2" },
          closeAttempts: 1,
          orders: { entryId: "entry-1", entryClientOrderId: entryId("AAPL"), takeProfitId: "tp-2", stopLossId: "sl-1" },
          exitFills: { "tp-2": { qty: 6, price: 98, realizedPl: -12 } },
        }),
      ],
      closedTrades: 0,
      realizedPl: -12,
    },
  },
  {
    name: "books only what an exit filled beyond what was booked, and the rest as it closes the trade",
    given: (state) => {
      state.open(openPosition("AAPL", { qty: 4, exit: { ...EXIT, orderId: "tp-2" }, closeAttempts: 1, exitFills: { "tp-2": { qty: 6, price: 98, realizedPl: -12 } } }));
      state.realizedPl = -12;
    },
    orders: [aaplBracket({ filledAt: 100, takeProfitLeg: { id: "tp-2", clientOrderId: closeClientOrderId(SESSION, "AAPL", 1), filledAt: 98.5 }, stopLossLeg: { status: "canceled" } })],
    changes: [{ kind: "position_closed", openedUnseen: false, trade: trade({ exitPrice: 98.5, realizedPl: -15, via: "close_order" }) }],
    after: { positions: [], closedTrades: 1, realizedPl: -15 },
  },
  {
    name: "leaves a position the broker shows smaller than its orders account for to the next sync, which reads them again",
    given: (state) => state.open(openPosition("AAPL", { exit: { ...EXIT, orderId: "tp-2" }, closeAttempts: 1 })),
    // The exit had filled 6 when the orders were read, 8 by the time the positions were.
    orders: [aaplBracket({ filledAt: 100, takeProfitLeg: { id: "tp-2", clientOrderId: closeClientOrderId(SESSION, "AAPL", 1), filledAt: 98, filledQty: 6 } })],
    positions: [brokerPosition("AAPL", 2, 100)],
    changes: [{ kind: "exit_partially_filled", symbol: "AAPL", tradeNo: 1, exitedQty: 6, realizedPl: -12 }],
    after: { positions: [openPosition("AAPL", { qty: 10, exit: { ...EXIT, orderId: "tp-2" }, closeAttempts: 1, orders: expect.anything(), exitFills: { "tp-2": { qty: 6, price: 98, realizedPl: -12 } } })], realizedPl: -12 },
  },
  {
    name: "books every exit fill of a trade at their average: part by its first close, the rest by its second",
    given: (state) => state.open(openPosition("AAPL", { qty: 4, exit: { ...EXIT, clientOrderId: closeClientOrderId(SESSION, "AAPL", 1, 2), orderId: "close-2" }, closeAttempts: 2 })),
    orders: [
      aaplBracket({ filledAt: 100, ...canceledLegs }),
      brokerOrder({ id: "close-1", clientOrderId: closeClientOrderId(SESSION, "AAPL", 1), symbol: "AAPL", side: "sell", status: "canceled", filledQty: 6, filledAvgPrice: 98 }),
      brokerOrder({ id: "close-2", clientOrderId: closeClientOrderId(SESSION, "AAPL", 1, 2), symbol: "AAPL", side: "sell", status: "filled", qty: 4, filledQty: 4, filledAvgPrice: 99, filledAt: LATER }),
    ],
    changes: [{ kind: "position_closed", openedUnseen: false, trade: trade({ exitPrice: 98.4, realizedPl: -16, via: "close_order" }) }],
    after: { positions: [], closedTrades: 1, realizedPl: -16 },
  },
  {
    name: "clears an exit the broker ended unfilled, so the next one takes the next close id",
    given: (state) => state.open(openPosition("AAPL", { exit: { ...EXIT, method: "market", orderId: "close-1" }, closeAttempts: 1 })),
    orders: [aaplBracket({ filledAt: 100, ...canceledLegs }), brokerOrder({ id: "close-1", clientOrderId: closeClientOrderId(SESSION, "AAPL", 1), symbol: "AAPL", side: "sell", status: "rejected" })],
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [
      { kind: "protection_lost", symbol: "AAPL", detail: "its exit legs are canceled and canceled without a fill, so the broker holds no stop-loss or take-profit for it; the session closes it at market" },
      { kind: "exit_ended", symbol: "AAPL", tradeNo: 1, clientOrderId: closeClientOrderId(SESSION, "AAPL", 1), status: "rejected", filledQty: 0 },
    ],
    after: { positions: [openPosition("AAPL", { exit: null, closeAttempts: 1, orders: { entryId: "entry-1", entryClientOrderId: entryId("AAPL"), takeProfitId: null, stopLossId: null } })] },
  },
  {
    name: "drops an exit that got no answer and is not at the broker, so its id is asked for again",
    given: (state) => state.open(openPosition("AAPL", { exit: EXIT, closeAttempts: 1 })),
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [{ kind: "placement_not_found", symbol: "AAPL", clientOrderId: closeClientOrderId(SESSION, "AAPL", 1) }],
    after: { positions: [openPosition("AAPL", { exit: null, closeAttempts: 0 })] },
  },
  {
    name: "takes a working exit the checkpoint does not have (asked for by a run that crashed) as the position's exit",
    given: (state) => state.open(openPosition("AAPL")),
    orders: [aaplBracket({ filledAt: 100, takeProfitLeg: { id: "tp-2", clientOrderId: closeClientOrderId(SESSION, "AAPL", 1, 2), limitPrice: 97.5 } })],
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [],
    after: {
      positions: [
        openPosition("AAPL", {
          exit: { clientOrderId: closeClientOrderId(SESSION, "AAPL", 1, 2), orderId: "tp-2", method: "replace_take_profit", requestedAt: READ_AT.toISOString() },
          closeAttempts: 2,
          orders: { entryId: "entry-1", entryClientOrderId: entryId("AAPL"), takeProfitId: "tp-2", stopLossId: "sl-1" },
        }),
      ],
    },
  },
  {
    name: "watches legs found being canceled after the entry filled (an exit whose checkpoint was lost) as the position's exit",
    given: (state) => state.open(openPosition("AAPL", { qty: 7 })),
    orders: [aaplBracket({ filledAt: 100, takeProfitLeg: { status: "pending_cancel", filledAt: 104, filledQty: 3 }, stopLossLeg: { status: "pending_cancel" } })],
    positions: [brokerPosition("AAPL", 7, 100)],
    changes: [{ kind: "exit_partially_filled", symbol: "AAPL", tradeNo: 1, exitedQty: 3, realizedPl: 12 }],
    after: {
      realizedPl: 12,
      positions: [
        openPosition("AAPL", {
          qty: 7,
          exit: { clientOrderId: expect.any(String) as string, orderId: "tp-1", method: "cancel_protection", requestedAt: READ_AT.toISOString() },
          exitFills: { "tp-1": { qty: 3, price: 104, realizedPl: 12 } },
        }),
      ],
    },
  },
  {
    name: "takes a protective stop the checkpoint does not have (placed at a session's end that crashed) as the position's exit",
    given: (state) => state.open(openPosition("AAPL", { qty: 4, orders: { entryId: "entry-1", entryClientOrderId: entryId("AAPL"), takeProfitId: null, stopLossId: null } })),
    orders: stopGuardedOrders("accepted"),
    positions: [brokerPosition("AAPL", 4, 100)],
    changes: [],
    after: { positions: [stopGuarded({ method: "protective_stop", requestedAt: READ_AT })] },
  },
  {
    name: "makes a protective stop whose cancel was not taken (its answer lost) the position's exit again",
    given: (state) => state.open(stopGuarded({ method: "cancel_protection", requestedAt: SUBMITTED_AT })),
    orders: stopGuardedOrders("new"),
    positions: [brokerPosition("AAPL", 4, 100)],
    changes: [],
    after: { positions: [stopGuarded({ method: "protective_stop", requestedAt: SUBMITTED_AT })] },
  },
  {
    name: "clears the exit once a protective stop's cancel is done: the position, unprotected, is then closed at market",
    given: (state) => state.open(stopGuarded({ method: "cancel_protection", requestedAt: SUBMITTED_AT })),
    orders: stopGuardedOrders("canceled"),
    positions: [brokerPosition("AAPL", 4, 100)],
    changes: [],
    after: { positions: [stopGuarded(null)] },
  },

  // Positions only the broker knows.
  {
    name: "adopts a position held at the broker without an order of this session, giving it the next trade number",
    given: (state) => state.markTradeNoUsed("MSFT", 2),
    positions: [brokerPosition("MSFT", 3, 400)],
    changes: [{ kind: "position_adopted", symbol: "MSFT", side: "long", qty: 3, avgEntryPrice: 400 }],
    after: {
      positions: [
        openPosition("MSFT", {
          qty: 3,
          entryPrice: 400,
          stopLoss: null,
          takeProfit: null,
          tradeNo: 3,
          origin: "adopted",
          openedAt: null,
          orders: { entryId: null, entryClientOrderId: null, takeProfitId: null, stopLossId: null },
        }),
      ],
      nextTradeNo: { MSFT: 4 },
    },
  },
  {
    name: "adopts a short by its absolute quantity",
    positions: [brokerPosition("MSFT", -4, 400)],
    changes: [{ kind: "position_adopted", symbol: "MSFT", side: "short", qty: 4, avgEntryPrice: 400 }],
    after: { nextTradeNo: { MSFT: 2 } },
  },
  {
    name: "adopts what another session's bracket opened (a session taken over) with that bracket's working legs as its stop-loss and take-profit",
    orders: [bracketOrder({ clientOrderId: "trader-2:AAPL:1", symbol: "AAPL", filledAt: 100, takeProfitLeg: { id: "tp-9" }, stopLossLeg: { id: "sl-9" } })],
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [
      { kind: "position_adopted", symbol: "AAPL", side: "long", qty: 10, avgEntryPrice: 100 },
      { kind: "legs_attached", symbol: "AAPL", takeProfitId: "tp-9", stopLossId: "sl-9" },
    ],
    after: {
      positions: [
        openPosition("AAPL", {
          entryPrice: 100,
          stopLoss: 90,
          takeProfit: 110,
          origin: "adopted",
          openedAt: null,
          orders: { entryId: null, entryClientOrderId: null, takeProfitId: "tp-9", stopLossId: "sl-9" },
        }),
      ],
      nextTradeNo: { AAPL: 2 },
    },
  },
  {
    name: "adopts another session's position bare when that bracket's legs no longer protect all of it",
    orders: [bracketOrder({ clientOrderId: "trader-2:AAPL:1", symbol: "AAPL", filledAt: 100, stopLossLeg: { status: "canceled" } })],
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [{ kind: "position_adopted", symbol: "AAPL", side: "long", qty: 10, avgEntryPrice: 100 }],
    after: { positions: [openPosition("AAPL", { entryPrice: 100, stopLoss: null, takeProfit: null, origin: "adopted", openedAt: null, orders: { entryId: null, entryClientOrderId: null, takeProfitId: null, stopLossId: null } })] },
  },
  {
    name: "does not take an order whose client_order_id names another symbol as this session's",
    orders: [bracketOrder({ clientOrderId: entryId("MSFT"), symbol: "AAPL", filledAt: 100 })],
    positions: [brokerPosition("AAPL", 10, 100)],
    changes: [{ kind: "position_adopted", symbol: "AAPL", side: "long", qty: 10, avgEntryPrice: 100 }],
    after: { nextTradeNo: { AAPL: 2 } },
  },

  // Several symbols at once.
  {
    name: "settles entries by symbol, then trade number",
    given: (state) => {
      state.pendingEntries.set("MSFT", pending("MSFT", { orderId: "entry-2", qty: 2 }));
      state.pendingEntries.set("AAPL", pending("AAPL", { tradeNo: 2, clientOrderId: entryId("AAPL", 2), orderId: "entry-3" }));
    },
    orders: [
      bracketOrder({ id: "entry-2", clientOrderId: entryId("MSFT"), symbol: "MSFT", qty: 2, status: "canceled", ...canceledLegs }),
      bracketOrder({ id: "entry-3", clientOrderId: entryId("AAPL", 2), symbol: "AAPL", filledAt: 101 }),
      aaplBracket({ filledAt: 100, stopLossLeg: { filledAt: 90 }, takeProfitLeg: { status: "canceled" } }),
    ],
    positions: [brokerPosition("AAPL", 10, 101)],
    changes: [
      { kind: "position_closed", openedUnseen: true, trade: trade({ exitPrice: 90, realizedPl: -100, via: "stop_loss" }) },
      { kind: "entry_filled", symbol: "AAPL", tradeNo: 2, clientOrderId: entryId("AAPL", 2), side: "long", qty: 10, fillPrice: 101 },
      { kind: "entry_canceled", symbol: "MSFT", tradeNo: 1, clientOrderId: entryId("MSFT"), status: "canceled" },
    ],
    after: { pendingEntries: [], closedTrades: 1, nextTradeNo: { AAPL: 3, MSFT: 2 } },
  },
];

function viewOf(row: Pick<Row, "orders" | "positions" | "examined">): BrokerView {
  return {
    account: brokerAccount({ buyingPower: 42_000 }),
    positions: row.positions ?? [],
    orders: row.orders ?? [],
    complete: row.examined === undefined,
    examined: new Set(row.examined ?? []),
    readAt: READ_AT,
  };
}

describe("reconcile", () => {
  it.each(rows)("$name", (row) => {
    const state = newState();
    row.given?.(state);
    expect(reconcile(state, viewOf(row), SESSION)).toEqual(row.changes);
    expect(state.toSnapshot(READ_AT)).toMatchObject(row.after);
  });

  it("keeps the account figures as the broker read them", () => {
    const state = newState();
    reconcile(state, viewOf({}), SESSION);
    expect(state.account).toEqual({ id: "account-1", portfolioValue: 100_000, buyingPower: 42_000, cash: 100_000, asOf: READ_AT.toISOString() });
  });

  it("gives the same picture whichever order the broker lists orders in", () => {
    const orders = rows.at(-1)!.orders!;
    const forward = newState();
    const backward = newState();
    rows.at(-1)!.given!(forward);
    rows.at(-1)!.given!(backward);
    const positions = [brokerPosition("AAPL", 10, 101)];
    expect(reconcile(backward, viewOf({ orders: [...orders].reverse(), positions }), SESSION)).toEqual(reconcile(forward, viewOf({ orders, positions }), SESSION));
    expect(backward.toSnapshot(READ_AT)).toEqual(forward.toSnapshot(READ_AT));
  });
});

describe("reconcile refuses answers it cannot keep the books on, changing nothing", () => {
  const refusals: { name: string; given?: (state: TradingState) => void; orders?: BrokerOrder[]; positions?: BrokerPosition[]; message: string | RegExp }[] = [
    {
      name: "an entry the broker accepted earlier that it no longer has",
      given: (state) => state.pendingEntries.set("AAPL", pending("AAPL")),
      message: `the broker accepted entry order ${entryId("AAPL")} for AAPL earlier but now has no order under that client_order_id`,
    },
    {
      name: "an entry order without a quantity",
      orders: [{ ...aaplBracket(), qty: null }],
      message: `the broker reports entry order ${entryId("AAPL")} (AAPL) without a quantity`,
    },
    {
      name: "a filled entry without a fill price",
      orders: [{ ...aaplBracket({ filledAt: 100 }), filledAvgPrice: null }],
      positions: [brokerPosition("AAPL", 10, 100)],
      message: `the broker reports entry order ${entryId("AAPL")} (AAPL) as filled but gives no fill price`,
    },
    {
      name: "no position while a filled entry's take-profit is still working",
      given: (state) => state.open(openPosition("AAPL")),
      orders: [aaplBracket({ filledAt: 100 })],
      message: `the broker lists no AAPL position, yet order ${entryId("AAPL")} still has a working take-profit leg (new) protecting one; refusing to treat AAPL as flat on contradictory answers`,
    },
    {
      name: "no position while a filled entry's stop-loss is still working",
      orders: [aaplBracket({ filledAt: 100, takeProfitLeg: { status: "canceled" } })],
      message: /^the broker lists no AAPL position, yet order .* still has a working stop-loss leg \(new\)/,
    },
    {
      // Its last fills came between the order read and the positions read: booking 6 would lose the other 4.
      name: "no position while a filled entry's take-profit has exited part of it and still works",
      given: (state) => state.open(openPosition("AAPL")),
      orders: [{ ...aaplBracket({ filledAt: 100 }), legs: aaplBracket({ filledAt: 100 }).legs.map((leg) => (leg.type === "limit" ? { ...leg, status: "partially_filled", filledQty: 6, filledAvgPrice: 110 } : leg)) }],
      message: `the broker lists no AAPL position, yet order ${entryId("AAPL")} has exited only 6 of 10 and still has a working take-profit leg (partially_filled) protecting one; refusing to treat AAPL as flat on contradictory answers`,
    },
  ];

  it.each(refusals)("$name", (row) => {
    const state = newState();
    row.given?.(state);
    const before = state.toSnapshot(READ_AT);
    expect(() => reconcile(state, viewOf(row), SESSION)).toThrow(ReconciliationError);
    expect(() => reconcile(state, viewOf(row), SESSION)).toThrow(row.message);
    expect(state.toSnapshot(READ_AT)).toEqual(before);
  });
});
