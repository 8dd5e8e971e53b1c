import type { Bar, BracketRequest, BrokerAccount, BrokerAsset, BrokerFill, BrokerOrder, BrokerPosition, MarketClock, MarketRequest, ReplaceRequest, StopRequest } from "./types.js";

/**
 * What the trader needs from a broker, in the port's own errors (errors.ts), never a broker SDK's: reads throw
 * BrokerReadError when they cannot give a trustworthy answer; submissions and cancels throw BrokerRefusedError
 * when the broker answered no (with its status, code and the refusal's kind), BrokerRateLimitedError when its
 * rate limit kept the request from being carried out, and BrokerUnavailableError when the outcome is unknown.
 */
export interface Broker {
  account(): Promise<BrokerAccount>;
  clock(): Promise<MarketClock>;
  /** The asset, or null when the broker has no such symbol (404). */
  asset(symbol: string): Promise<BrokerAsset | null>;
  positions(): Promise<BrokerPosition[]>;
  /** One order with its bracket legs. */
  order(orderId: string): Promise<BrokerOrder>;
  /** The order placed under `clientOrderId`, with its bracket legs, or null when the broker has none. */
  orderByClientOrderId(clientOrderId: string): Promise<BrokerOrder | null>;
  /** Every order submitted after `after` (optionally for some symbols only), oldest first, with legs nested. */
  ordersSince(after: Date, symbols?: string[]): Promise<BrokerOrder[]>;
  /**
   * Every order that can still fill, whenever submitted, oldest first, with legs nested (Alpaca's status=open): a
   * bracket is listed while its entry or a leg still works.
   */
  openOrders(): Promise<BrokerOrder[]>;
  /** Every fill (Alpaca's FILL account activities) executed after `after`, oldest first, each at its own price. */
  fillsSince(after: Date): Promise<BrokerFill[]>;
  /** The latest one-minute bar of each symbol that has one. */
  latestBars(symbols: string[]): Promise<Map<string, Bar>>;
  /** One-minute bars from `start` on, oldest first, per symbol. */
  barsSince(symbols: string[], start: Date): Promise<Map<string, Bar[]>>;
  submitBracket(request: BracketRequest): Promise<BrokerOrder>;
  submitMarket(request: MarketRequest): Promise<BrokerOrder>;
  /** A gtc stop order; placed while the market is closed, the broker queues it for the next session. */
  submitStop(request: StopRequest): Promise<BrokerOrder>;
  /**
   * Asks for the order to be replaced (PATCH): the answer is the replacement, which takes the old order's place
   * only once the broker completes the replace (the old one `pending_replace` until then, `replaced` after).
   */
  replaceOrder(orderId: string, request: ReplaceRequest): Promise<BrokerOrder>;
  /** Asks for the order to be canceled: accepted, not done (`pending_cancel` until the broker completes it). */
  cancelOrder(orderId: string): Promise<void>;
}
