import { Counter, Gauge, Histogram, type Registry } from "prom-client";

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
    const registers = [registry];
    this.ticks = new Counter({
      name: "savepoint_trader_ticks_total",
      help: "Trading ticks, by outcome: ok, or skipped because the broker could not be read or contradicted itself",
      labelNames: ["outcome"],
      registers,
    });
    this.tickSeconds = new Histogram({
      name: "savepoint_trader_tick_seconds",
      help: "Duration of one trading tick (market data, sync with the broker, decisions, orders, event checkpoint)",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.checkpointSeconds = new Histogram({
      name: "savepoint_trader_checkpoint_seconds",
      help: "Time the trading loop spends creating a checkpoint (taking the snapshot; it is queued in Redis and confirmed in the background), by kind",
      labelNames: ["kind"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    });
    this.orders = new Counter({
      name: "savepoint_trader_orders_total",
      help: "Order placements, by outcome: placed, found (already at the broker), rejected, not_placed (rate limited), unknown (no answer)",
      labelNames: ["outcome"],
      registers,
    });
    this.changes = new Counter({
      name: "savepoint_trader_reconciliation_changes_total",
      help: "Differences between the session and the broker found and resolved, by kind",
      labelNames: ["kind"],
      registers,
    });
    this.openPositions = new Gauge({ name: "savepoint_trader_open_positions", help: "Positions the session holds", registers });
    this.closedTrades = new Gauge({ name: "savepoint_trader_closed_trades", help: "Trades the session has closed", registers });
    this.realizedPl = new Gauge({ name: "savepoint_trader_realized_pl_dollars", help: "Profit or loss the session has realised", registers });
  }
}
