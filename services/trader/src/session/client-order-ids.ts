/**
 * Deterministic client_order_ids: the Nth trade of a symbol in a session always has the same ids, so a
 * trader restarted after a crash regenerates the id of a decision it may already have sent, and the broker's
 * duplicate rejection plus a lookup by client_order_id stop it from placing that order twice.
 *
 *   <sessionId>:<SYMBOL>:<trade number>         the entry (a bracket order)
 *   <sessionId>:<SYMBOL>:<trade number>:close   a market order that closes the trade
 */

export type OrderRole = "entry" | "close";

export interface ParsedClientOrderId {
  symbol: string;
  tradeNo: number;
  role: OrderRole;
}

/** Alpaca's limit on client_order_id. */
export const MAX_CLIENT_ORDER_ID_LENGTH = 128;

export function entryClientOrderId(sessionId: string, symbol: string, tradeNo: number): string {
  return `${sessionId}:${symbol}:${tradeNo}`;
}

export function closeClientOrderId(sessionId: string, symbol: string, tradeNo: number): string {
  return `${entryClientOrderId(sessionId, symbol, tradeNo)}:close`;
}

/** The trade an order belongs to, when the order is this session's; null for anyone else's. */
export function parseClientOrderId(sessionId: string, clientOrderId: string): ParsedClientOrderId | null {
  const prefix = `${sessionId}:`;
  if (!clientOrderId.startsWith(prefix)) return null;
  const match = /^([A-Z][A-Z0-9.-]*):([1-9]\d*)(:close)?$/.exec(clientOrderId.slice(prefix.length));
  if (!match) return null;
  return { symbol: match[1]!, tradeNo: Number(match[2]), role: match[3] ? "close" : "entry" };
}
