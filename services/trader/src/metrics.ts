import { MetricDeclarations } from "@savepoint/shared";
import type { Counter, Gauge, Histogram, Registry } from "prom-client";

/** Everything the trader reports on /metrics. */
export class TraderMetrics {
  readonly ticks: Counter<"outcome">;
  readonly tickSeconds: Histogram;
  readonly checkpointSeconds: Histogram<"kind">;
  readonly orders: Counter<"outcome">;
  readonly changes: Counter<"kind">;
  readonly openPositions: Gauge;
  readonly closedTrades: Gauge;
  readonly realizedPl: Gauge;

  constructor(registry: Registry) {
    const declare = new MetricDeclarations(registry);
    this.ticks = declare.counter(
      "savepoint_trader_ticks_total",
      "Trading ticks, by outcome: ok, or skipped because the broker could not be read or contradicted itself",
      ["outcome"],
    );
    this.tickSeconds = declare.histogram(
      "savepoint_trader_tick_seconds",
      "Duration of one trading tick (market data, sync with the broker, decisions, orders, event checkpoint)",
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    );
    this.checkpointSeconds = declare.histogram(
      "savepoint_trader_checkpoint_seconds",
      "Time the trading loop spends creating a checkpoint (taking the snapshot; it is queued in Redis and confirmed in the background), by kind",
      [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      ["kind"],
    );
    this.orders = declare.counter(
      "savepoint_trader_orders_total",
      "Order placements, by outcome: placed, found (already at the broker), rejected, not_placed (rate limited), unknown (no answer)",
      ["outcome"],
    );
    this.changes = declare.counter("savepoint_trader_reconciliation_changes_total", "Differences between the session and the broker found and resolved, by kind", ["kind"]);
    this.openPositions = declare.gauge("savepoint_trader_open_positions", "Positions the session holds");
    this.closedTrades = declare.gauge("savepoint_trader_closed_trades", "Trades the session has closed");
    this.realizedPl = declare.gauge("savepoint_trader_realized_pl_dollars", "Profit or loss the session has realised");
  }
}
