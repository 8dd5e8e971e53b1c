import type { FastifyInstance } from "fastify";
import type { z } from "zod";
import { AlpacaError, forbidden, invalidRequest, notFound } from "../errors.js";
import type { FaultInjector } from "../faults.js";
import {
  activitiesOfTypeQuerySchema,
  activitiesQuerySchema,
  assetsQuerySchema,
  calendarQuerySchema,
  clockQuerySchema,
  clientOrderIdQuerySchema,
  legacyCalendarQuerySchema,
  closeAllPositionsQuerySchema,
  closePositionQuerySchema,
  listOrdersQuerySchema,
  nestedQuerySchema,
  orderReplacementSchema,
  orderRequestSchema,
  noQuery,
  parseInput,
} from "../schemas.js";
import type { Simulation } from "../simulation.js";
import { assetIdFor } from "../universe.js";
import { accountView, fillActivitiesView, positionView, positionsView } from "../views.js";
import { FIRST_YEAR, LAST_YEAR, settlementDate, tradingDaysBetween } from "../calendar.js";
import {
  assetJson,
  calendarDayJson,
  calendarV3Json,
  clockJson,
  clockV3Json,
  flatOrderJson,
  nestedOrderJson,
  orderJson,
} from "../wire.js";

type IdParams = { Params: { id: string } };
type SymbolParams = { Params: { symbol: string } };

/** Alpaca's trading API (paper-api.alpaca.markets): account, positions, orders, activities, clock, assets. */
export function registerTradingRoutes(app: FastifyInstance, sim: Simulation, faults: FaultInjector): void {
  const { broker, model } = sim;
  /** Alpaca accepts a symbol or an asset id wherever a path names an asset. */
  const symbolOf = (symbolOrAssetId: string) => model.symbols().find((symbol) => assetIdFor(symbol) === symbolOrAssetId) ?? symbolOrAssetId;

  app.get("/v2/account", async (request) => {
    noQuery(request.query);
    return accountView(sim);
  });

  app.get("/v2/positions", async (request) => {
    noQuery(request.query);
    return positionsView(sim);
  });

  app.get<SymbolParams>("/v2/positions/:symbol", async (request) => {
    noQuery(request.query);
    return positionView(sim, broker.position(symbolOf(request.params.symbol)));
  });

  app.delete<SymbolParams>("/v2/positions/:symbol", async (request) => {
    const part = parseInput(closePositionQuerySchema, request.query, "close-position query");
    return nestedOrderJson(broker.closePosition(symbolOf(request.params.symbol), part));
  });

  app.delete("/v2/positions", async (request, reply) => {
    const query = parseInput(closeAllPositionsQuerySchema, request.query, "close-all-positions query");
    const results = broker.closeAllPositions(query.cancel_orders).map(({ symbol, result }) =>
      result instanceof AlpacaError
        ? { symbol, status: result.status, body: result.body() }
        : { symbol, status: 200, body: nestedOrderJson(result) },
    );
    return reply.code(207).send(results);
  });

  app.post("/v2/orders", async (request) => {
    noQuery(request.query);
    const order = parseInput(orderRequestSchema, request.body, "order");
    const rejection = faults.takeOrderRejection();
    if (rejection?.mode === "http") throw forbidden(rejection.message);
    return nestedOrderJson(broker.placeOrder(order, rejection?.message));
  });

  app.get("/v2/orders", async (request) => {
    const query = parseInput(listOrdersQuerySchema, request.query, "orders query");
    return broker.listOrders(query).map(query.nested ? nestedOrderJson : flatOrderJson);
  });

  app.delete("/v2/orders", async (request, reply) => {
    noQuery(request.query);
    const canceled = broker.cancelAllOrders();
    return reply.code(207).send(canceled.map((order) => ({ id: order.id, status: 200 })));
  });

  // "::" is find-my-way's escape for a literal ":" in a path.
  app.get("/v2/orders::by_client_order_id", async (request) => {
    const query = parseInput(clientOrderIdQuerySchema, request.query, "by_client_order_id query");
    return orderJson(broker.orderByClientOrderId(query.client_order_id), null);
  });

  app.get<IdParams>("/v2/orders/:id", async (request) => {
    const { nested } = parseInput(nestedQuerySchema, request.query, "order query");
    const found = broker.order(request.params.id);
    return nested ? nestedOrderJson(found) : flatOrderJson(found);
  });

  app.patch<IdParams>("/v2/orders/:id", async (request) => {
    noQuery(request.query);
    const changes = parseInput(orderReplacementSchema, request.body, "order replacement");
    return orderJson(broker.replaceOrder(request.params.id, changes), null);
  });

  app.delete<IdParams>("/v2/orders/:id", async (request, reply) => {
    noQuery(request.query);
    broker.cancelOrder(request.params.id);
    return reply.code(204).send();
  });

  app.get<{ Params: { activityType: string } }>("/v2/account/activities/:activityType", async (request) => {
    const { activityType } = request.params;
    if (!/^[A-Z]{2,8}$/.test(activityType)) throw invalidRequest(`activity_type: must be an activity type such as FILL (got ${JSON.stringify(activityType)})`);
    const query = parseInput(activitiesOfTypeQuerySchema, request.query, "activities query");
    return activityType === "FILL" ? fillPage(sim, query) : [];
  });

  app.get("/v2/account/activities", async (request) => {
    const query = parseInput(activitiesQuerySchema, request.query, "activities query");
    const types = query.activity_types?.split(",");
    return !types || types.includes("FILL") ? fillPage(sim, query) : [];
  });

  app.get("/v2/clock", async (request) => {
    noQuery(request.query);
    return clockJson(sim.clock.read());
  });

  app.get("/v3/clock", async (request) => {
    const { markets } = parseInput(clockQuerySchema, request.query, "clock query");
    if (markets !== undefined && markets.some((market) => market !== "NYSE")) throw invalidRequest(`markets: only NYSE is simulated (got ${markets.join(",")})`);
    return clockV3Json(sim.clock.read());
  });

  app.get("/v2/calendar", async (request) => {
    const query = parseInput(legacyCalendarQuerySchema, request.query, "calendar query");
    const from = query.start ?? `${FIRST_YEAR}-01-01`;
    const to = query.end ?? `${LAST_YEAR}-12-31`;
    if (query.date_type !== "SETTLEMENT") return tradingDaysBetween(clampDate(from), clampDate(to)).map(calendarDayJson);
    // date_type=SETTLEMENT selects the days by their settlement date instead of their trading date.
    const candidates = tradingDaysBetween(clampDate(shiftDate(from, -7)), clampDate(to));
    return candidates.filter((day) => settlementDate(day.date) >= from && settlementDate(day.date) <= to).map(calendarDayJson);
  });

  app.get<{ Params: { market: string } }>("/v3/calendar/:market", async (request) => {
    if (request.params.market !== "NYSE") throw invalidRequest(`market: only NYSE is simulated (got ${JSON.stringify(request.params.market)})`);
    const query = parseInput(calendarQuerySchema, request.query, "calendar query");
    const today = sim.clock.tradingDate();
    const days = tradingDaysBetween(clampDate(query.start ?? today), clampDate(query.end ?? query.start ?? today));
    return calendarV3Json(days, query.timezone === "UTC" ? "UTC" : "America/New_York");
  });

  app.get("/v2/assets", async (request) => {
    const query = parseInput(assetsQuerySchema, request.query, "assets query");
    if ((query.status ?? "active") !== "active" || (query.asset_class ?? "us_equity") !== "us_equity") return [];
    return model
      .symbols()
      .filter((symbol) => query.exchange === undefined || model.spec(symbol)!.exchange === query.exchange)
      .map((symbol) => assetJson(symbol, model.spec(symbol)!));
  });

  app.get<SymbolParams>("/v2/assets/:symbol", async (request) => {
    noQuery(request.query);
    const symbol = symbolOf(request.params.symbol);
    const spec = model.spec(symbol);
    if (!spec) throw notFound(`asset not found for ${request.params.symbol}`);
    return assetJson(symbol, spec);
  });
}

/**
 * One page of FILL activities; `page_token` is the id of the last activity of the previous page: in `asc` order
 * the page begins with the activity after it, in `desc` order with the one before it (alpaca-docs, "Paging of
 * Results"). A token that is no activity of the listing is refused rather than read as "from the start".
 */
function fillPage(sim: Simulation, query: z.output<typeof activitiesOfTypeQuerySchema>) {
  const day = query.date?.toISOString().slice(0, 10);
  const activities = fillActivitiesView(sim).filter((activity) => {
    const at = new Date(activity.transaction_time);
    return (!query.after || at > query.after) && (!query.until || at < query.until) && (!day || activity.transaction_time.startsWith(day));
  });
  if (query.direction === "desc") activities.reverse();
  let first = 0;
  if (query.page_token !== undefined) {
    const index = activities.findIndex((activity) => activity.id === query.page_token);
    if (index < 0) throw invalidRequest(`page_token: ${JSON.stringify(query.page_token)} is not an activity id from a previous page`);
    first = index + 1;
  }
  return activities.slice(first, first + query.page_size);
}

/** A date within the years the calendar covers (Alpaca's serves 1970 to 2029; the simulator's is narrower). */
function clampDate(date: string): string {
  if (date < `${FIRST_YEAR}-01-01`) return `${FIRST_YEAR}-01-01`;
  return date > `${LAST_YEAR}-12-31` ? `${LAST_YEAR}-12-31` : date;
}

const shiftDate = (date: string, days: number) => new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
