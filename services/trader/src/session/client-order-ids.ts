/**
 * Deterministic client_order_ids: the Nth trade of a symbol in a session always has the same ids, so a
 * trader restarted after a crash regenerates the id of a decision it may already have sent, and the broker's
 * duplicate rejection plus a lookup by client_order_id stop it from placing that order twice.
 *
 *   <sessionId>:<SYMBOL>:<trade number>           the entry (a bracket order)
 *   <sessionId>:<SYMBOL>:<trade number>:close     the trade's exit: a market order, or the replacement of its
 *                                                 take-profit leg at a marketable price
 *   <sessionId>:<SYMBOL>:<trade number>:close:K   its Kth exit (K >= 2), when the broker ended an earlier one
 *                                                 unfilled (canceled, expired or rejected)
 */

export type OrderRole = "entry" | "close";

export interface ParsedClientOrderId {
  symbol: string;
  tradeNo: number;
  role: OrderRole;
  /** The exit's attempt number (1 for `:close`); absent for an entry. */
  attempt?: number;
}

/** Alpaca's limit on client_order_id. */
export const MAX_CLIENT_ORDER_ID_LENGTH = 128;

export function entryClientOrderId(sessionId: string, symbol: string, tradeNo: number): string {
  return `${sessionId}:${symbol}:${tradeNo}`;
}

export function closeClientOrderId(sessionId: string, symbol: string, tradeNo: number, attempt = 1): string {
  return `${entryClientOrderId(sessionId, symbol, tradeNo)}:close${attempt === 1 ? "" : `:${attempt}`}`;
}

/** The trade an order belongs to, when the order is this session's; null for anyone else's. */
export function parseClientOrderId(sessionId: string, clientOrderId: string): ParsedClientOrderId | null {
  const prefix = `${sessionId}:`;
  if (!clientOrderId.startsWith(prefix)) return null;
  const match = /^([A-Z][A-Z0-9.-]*):([1-9]\d*)(:close(?::([2-9]|[1-9]\d+))?)?$/.exec(clientOrderId.slice(prefix.length));
  if (!match) return null;
  const [, symbol, tradeNo, close, attempt] = match;
  if (!close) return { symbol: symbol!, tradeNo: Number(tradeNo), role: "entry" };
  return { symbol: symbol!, tradeNo: Number(tradeNo), role: "close", attempt: attempt ? Number(attempt) : 1 };
}

/**
 * The session and trade of an entry order another trader session placed (`trader-…:SYMBOL:N`, as newSessionId
 * names sessions); null for this session's orders, for exits, and for orders placed outside any session.
 */
export function otherSessionEntry(sessionId: string, clientOrderId: string): { sessionId: string; symbol: string; tradeNo: number } | null {
  const match = /^(trader-[^:]+):([A-Z][A-Z0-9.-]*):([1-9]\d*)$/.exec(clientOrderId);
  if (!match || match[1] === sessionId) return null;
  return { sessionId: match[1]!, symbol: match[2]!, tradeNo: Number(match[3]) };
}
