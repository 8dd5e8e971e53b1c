import { z } from "zod";
import { faultSchema, type ActiveFault, type FaultInjector, type FaultSpec } from "./faults.js";
import type { RequestLog, RequestRecord } from "./request-log.js";
import type { Simulation } from "./simulation.js";
import { accountView, fillActivitiesView, positionsView } from "./views.js";
import { flatOrderJson } from "./wire.js";

export interface SimulatorState {
  now: string;
  marketOpen: boolean;
  /** The phase of the trading day: pre, regular, post or closed. */
  phase: string;
  prices: Record<string, number>;
  account: ReturnType<typeof accountView>;
  positions: ReturnType<typeof positionsView>;
  /** Every order and leg ever placed, oldest first, in Alpaca's flat shape. */
  orders: Array<Record<string, unknown>>;
  /** Fills as Alpaca's FILL activities, oldest first. */
  fills: ReturnType<typeof fillActivitiesView>;
  /** The sum of every fill's realised profit or loss. */
  realizedPl: number;
}

/** Drives the simulator from a test in the same process; `/_sim/*` offers the same over HTTP. */
export interface SimulatorControl {
  /** Moves the simulated clock on by `bars` one-minute bars, matching working orders along each bar. */
  advance(bars?: number): { now: string; prices: Record<string, number> };
  /** A trade at `price` now (rounded to the cent); working orders on the symbol are matched against it. */
  setPrice(symbol: string, price: number): number;
  setPrices(prices: Record<string, number>): void;
  price(symbol: string): number;
  now(): Date;
  /**
   * Forces the market open or closed whatever the calendar says (a halt): closed, new orders wait as "accepted"
   * and nothing fills; reopening routes them. null hands the market back to the calendar.
   */
  setMarketOpen(open: boolean | null): void;
  injectFault(fault: FaultSpec): ActiveFault;
  clearFaults(): void;
  faults(): ActiveFault[];
  /** API requests received (most recent 5,000), optionally by method and path prefix. */
  requests(filter?: { method?: string; path?: string }): RequestRecord[];
  state(): SimulatorState;
}

/** The control handle over one simulation, its faults and its request log. */
export function createControl(sim: Simulation, faults: FaultInjector, requestLog: RequestLog): SimulatorControl {
  const requireSymbol = (symbol: string) => {
    if (!sim.model.spec(symbol)) throw new Error(`unknown symbol ${JSON.stringify(symbol)}: the simulator has ${sim.model.symbols().join(", ")}`);
    return symbol;
  };
  const control: SimulatorControl = {
    advance: (bars = 1) => {
      sim.advance(bars);
      return { now: sim.model.now().toISOString(), prices: sim.prices() };
    },
    setPrice: (symbol, price) => {
      if (!(price > 0)) throw new Error(`price for ${symbol} must be greater than 0 (got ${price})`);
      return sim.setPrice(requireSymbol(symbol), price);
    },
    setPrices: (prices) => {
      for (const symbol of Object.keys(prices)) requireSymbol(symbol);
      for (const [symbol, price] of Object.entries(prices)) control.setPrice(symbol, price);
    },
    price: (symbol) => sim.model.price(requireSymbol(symbol)),
    now: () => sim.model.now(),
    setMarketOpen: (open) => sim.setMarketOpen(open),
    injectFault: (fault) => {
      const parsed = faultSchema.safeParse(fault);
      if (!parsed.success) throw new Error(`invalid fault ${JSON.stringify(fault)}:\n${z.prettifyError(parsed.error)}`);
      return faults.add(parsed.data);
    },
    clearFaults: () => faults.clear(),
    faults: () => faults.list(),
    requests: (filter) => requestLog.list(filter),
    state: () => ({
      now: sim.model.now().toISOString(),
      marketOpen: sim.clock.isOpen(),
      phase: sim.clock.phase(),
      prices: sim.prices(),
      account: accountView(sim),
      positions: positionsView(sim),
      orders: sim.broker.allOrders().map((order) => flatOrderJson({ order, legs: [] })),
      fills: fillActivitiesView(sim),
      realizedPl: sim.broker.realizedPl(),
    }),
  };
  return control;
}
