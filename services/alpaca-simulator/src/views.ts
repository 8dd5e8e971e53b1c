import type { Position } from "./broker.js";
import type { Simulation } from "./simulation.js";
import { accountJson, fillActivityJson, positionJson } from "./wire.js";

/** The simulation rendered in Alpaca's JSON, shared by the HTTP routes and the control handle's state(). */

export const accountView = (sim: Simulation) => accountJson(sim.broker.account(), sim.account, sim.model.now());

export function positionView(sim: Simulation, position: Position) {
  return positionJson(position, {
    currentPrice: sim.model.price(position.symbol),
    lastdayPrice: sim.previousClose(position.symbol),
    qtyAvailable: sim.broker.qtyAvailable(position.symbol),
    exchange: sim.model.spec(position.symbol)!.exchange,
  });
}

export const positionsView = (sim: Simulation) => sim.broker.allPositions().map((position) => positionView(sim, position));

/** Fills as FILL account activities, oldest first. */
export function fillActivitiesView(sim: Simulation) {
  return sim.broker.allFills().map((fill) => fillActivityJson(fill, sim.broker.order(fill.orderId).order.status));
}
