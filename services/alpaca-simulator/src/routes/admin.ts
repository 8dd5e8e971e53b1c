import { createMetricsRegistry, registerOpsRoutes } from "@savepoint/shared";
import type { FastifyInstance } from "fastify";
import { faultSchema } from "../faults.js";
import { advanceBodySchema, marketBodySchema, parseInput, pricesBodySchema, requestLogQuerySchema } from "../schemas.js";
import type { SimulatorControl } from "../control.js";

/**
 * The simulator's own control surface for tests and operators that run it as a separate process. It lives
 * under /_sim (never /v2 or /v3), needs no Alpaca credentials and is never subject to injected faults.
 */
export function registerAdminRoutes(app: FastifyInstance, control: SimulatorControl): void {
  registerOpsRoutes(app, { service: "alpaca-simulator", registry: createMetricsRegistry("alpaca-simulator"), readiness: {} });

  app.get("/_sim/state", async () => control.state());

  app.post("/_sim/advance", async (request) => {
    const { bars } = parseInput(advanceBodySchema, request.body, "advance request");
    return control.advance(bars);
  });

  app.post("/_sim/prices", async (request) => {
    const { prices } = parseInput(pricesBodySchema, request.body, "prices request");
    control.setPrices(prices);
    return { now: control.now().toISOString(), prices: control.state().prices };
  });

  app.post("/_sim/market", async (request) => {
    const { open } = parseInput(marketBodySchema, request.body, "market request");
    control.setMarketOpen(open);
    return { open };
  });

  app.get("/_sim/faults", async () => ({ faults: control.faults() }));

  app.post("/_sim/faults", async (request, reply) => {
    const fault = parseInput(faultSchema, request.body, "fault");
    return reply.code(201).send(control.injectFault(fault));
  });

  app.delete("/_sim/faults", async (_request, reply) => {
    control.clearFaults();
    return reply.code(204).send();
  });

  app.get("/_sim/requests", async (request) => ({ requests: control.requests(parseInput(requestLogQuerySchema, request.query, "requests query")) }));
}
