import { PermissionError, RateLimitError, ValidationError } from "@alpacahq/alpaca-trade-api";
import { afterEach, describe, expect, it } from "vitest";
import type { RunningSimulator, SimulatorOptions } from "../src/server.js";
import { failureOf, sdk, startTestSimulator } from "./support.js";

const KEYS = { "APCA-API-KEY-ID": "sim-key", "APCA-API-SECRET-KEY": "sim-secret" };

describe("Alpaca's validation, errors and limits", () => {
  let sim: RunningSimulator | undefined;
  const start = async (options: SimulatorOptions = {}) => {
    sim = await startTestSimulator({ partialFillChance: 0, ...options });
    return { sim, api: sdk(sim.url, { retry: false }) };
  };
  const raw = async (path: string, init: RequestInit = {}) => {
    const response = await fetch(`${sim!.url}${path}`, { ...init, headers: { ...KEYS, "content-type": "application/json", ...(init.headers ?? {}) } });
    return { status: response.status, headers: response.headers, body: (response.status === 204 ? null : await response.json()) as Record<string, unknown> };
  };
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  it("refuses sub-penny prices with 422, code 42210000 and Alpaca's message; four decimals under $1 are fine", async () => {
    const { api } = await start();
    const error = await failureOf(api.orders.limit({ symbol: "AAPL", qty: 1, side: "buy", limitPrice: 150.123 }));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ status: 422, code: 42210000, message: "invalid limit_price 150.123. sub-penny increment does not fulfill minimum pricing criteria" });
    const stop = await raw("/v2/orders", { method: "POST", body: JSON.stringify({ symbol: "AAPL", qty: "1", side: "sell", type: "stop", time_in_force: "day", stop_price: "99.995" }) });
    expect(stop).toMatchObject({ status: 422, body: { code: 42210000, message: "invalid stop_price 99.995. sub-penny increment does not fulfill minimum pricing criteria" } });
    const cheap = await start({ universe: { PENNY: { price: 0.5 } } });
    await cheap.api.orders.limit({ symbol: "PENNY", qty: 10, side: "buy", limitPrice: 0.4512 });
  });

  it("refuses extended_hours except on limit day orders, and fractional quantities except on market day orders", async () => {
    const { api } = await start();
    const post = (body: Record<string, unknown>) => raw("/v2/orders", { method: "POST", body: JSON.stringify({ symbol: "AAPL", side: "buy", ...body }) });
    expect(await post({ qty: "1", type: "market", time_in_force: "day", extended_hours: true })).toMatchObject({ status: 422, body: { code: 42210000, message: "extended hours order must be DAY limit orders" } });
    expect(await post({ qty: "1", type: "limit", limit_price: "100", time_in_force: "gtc", extended_hours: true })).toMatchObject({ status: 422, body: { code: 42210000 } });
    expect(await post({ qty: "0.5", type: "limit", limit_price: "100", time_in_force: "day" })).toMatchObject({ status: 422, body: { code: 42210000, message: "fractional orders must be DAY market orders" } });
    expect(await post({ qty: "0.5", type: "market", time_in_force: "gtc" })).toMatchObject({ status: 422, body: { code: 42210000 } });
    expect((await api.orders.market({ symbol: "AAPL", qty: 0.5, side: "buy" })).qty).toBe("0.5");
    // Auction orders are not simulated, so they are refused rather than traded as something else.
    expect(await post({ qty: "1", type: "market", time_in_force: "opg" })).toMatchObject({ status: 422, body: { message: expect.stringContaining("time_in_force: opg (auction) orders are not simulated") } });
  });

  it("refuses a bracket whose exits are on the wrong side of the base price with code 42210000 and base_price", async () => {
    const { sim } = await start();
    const price = sim.control.price("AAPL");
    const answer = await raw("/v2/orders", {
      method: "POST",
      body: JSON.stringify({ symbol: "AAPL", qty: "1", side: "buy", type: "limit", limit_price: "100", time_in_force: "gtc", order_class: "bracket", take_profit: { limit_price: "100" }, stop_loss: { stop_price: "90" } }),
    });
    expect(answer).toEqual({ status: 422, headers: expect.anything(), body: { code: 42210000, message: "take_profit.limit_price must be >= base_price + 0.01", base_price: "100" } });
    const market = await raw("/v2/orders", {
      method: "POST",
      body: JSON.stringify({ symbol: "AAPL", qty: "1", side: "buy", type: "market", time_in_force: "gtc", order_class: "bracket", take_profit: { limit_price: String(Math.round(price * 110) / 100) }, stop_loss: { stop_price: String(Math.round(price * 101) / 100) } }),
    });
    expect(market.body).toMatchObject({ code: 42210000, message: "stop_loss.stop_price must be <= base_price - 0.01", base_price: String(price) });
  });

  it("checks a market buy against buying power with Alpaca's 2.5% collar: 403 with buying_power and cost_basis", async () => {
    const { sim, api } = await start({ initialCash: 10_000, multiplier: 1, universe: { AAPL: { price: 100 } } });
    const price = sim.control.price("AAPL");
    const affordable = Math.floor(10_000 / (price * 1.025));
    const refused = await failureOf(api.orders.market({ symbol: "AAPL", qty: affordable + 1, side: "buy" }));
    expect(refused).toBeInstanceOf(PermissionError);
    expect(refused).toMatchObject({ status: 403, message: "insufficient buying power" });
    const body = await raw("/v2/orders", { method: "POST", body: JSON.stringify({ symbol: "AAPL", qty: String(affordable + 1), side: "buy", type: "market", time_in_force: "day" }) });
    expect(body.body).toMatchObject({ code: 40310000, buying_power: "10000", cost_basis: expect.any(String) });
    await api.orders.market({ symbol: "AAPL", qty: affordable, side: "buy" });
  });

  it("refuses a short sale of an asset that is not shortable, and a second order with the same client_order_id", async () => {
    const { api } = await start({ universe: { HTB: { price: 20, shortable: false } } });
    expect(await failureOf(api.orders.market({ symbol: "HTB", qty: 1, side: "sell" }))).toMatchObject({ status: 403, message: "asset HTB is not shortable" });
    await api.orders.market({ symbol: "HTB", qty: 1, side: "buy", clientOrderId: "once" });
    const duplicate = await failureOf(api.orders.market({ symbol: "HTB", qty: 1, side: "buy", clientOrderId: "once" }));
    expect(duplicate).toBeInstanceOf(ValidationError);
    expect(duplicate).toMatchObject({ status: 422, message: "client_order_id must be unique" });
  });

  it("refuses query parameters it does not support with 422 naming them, never ignoring them", async () => {
    await start();
    expect(await raw("/v2/orders?after_order_id=abc")).toMatchObject({ status: 422, body: { message: "invalid orders query: after_order_id: is not supported by the simulator" } });
    expect(await raw("/v2/assets?attributes=ptp_no_exception")).toMatchObject({ status: 422, body: { message: "invalid assets query: attributes: is not supported by the simulator" } });
    expect(await raw("/v2/account?verbose=true")).toMatchObject({ status: 422, body: { message: "invalid query: verbose: is not supported by the simulator" } });
    expect((await raw("/v2/assets?status=active&exchange=NASDAQ")).status).toBe(200);
    expect(await raw("/v2/assets?status=inactive")).toMatchObject({ status: 200, body: [] });
  });

  it("limits each API key to 200 requests a minute by default, answering 429 with X-RateLimit headers", async () => {
    const { api } = await start({ requestsPerMinute: 3 });
    const first = await raw("/v2/clock");
    expect(first.headers.get("x-ratelimit-limit")).toBe("3");
    expect(first.headers.get("x-ratelimit-remaining")).toBe("2");
    const reset = Number(first.headers.get("x-ratelimit-reset"));
    expect(reset).toBeGreaterThan(Date.now() / 1000);
    expect(reset).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 60);
    await raw("/v2/clock");
    await raw("/v2/clock");
    const limited = await raw("/v2/clock");
    expect(limited).toMatchObject({ status: 429, body: { code: 42910000, message: "rate limit exceeded" } });
    expect(limited.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(await failureOf(api.clock.legacyClock())).toBeInstanceOf(RateLimitError);
    // Another key, and the market-data API, count apart.
    expect((await sdk(sim!.url, { keyId: "another-key" }).clock.legacyClock()).isOpen).toBe(true);
    expect((await raw("/v2/stocks/AAPL/bars/latest")).status).toBe(200);
    const defaults = await startTestSimulator();
    try {
      const answer = await fetch(`${defaults.url}/v2/clock`, { headers: KEYS });
      expect(answer.headers.get("x-ratelimit-limit")).toBe("200");
    } finally {
      await defaults.close();
    }
  });
});

/** Every API route, with parameters filled in, and an encoded spelling of it that the router decodes to the same. */
const ROUTES: Array<[string, string]> = [
  ["GET", "/v2/account"],
  ["GET", "/v2/positions"],
  ["GET", "/v2/positions/AAPL"],
  ["DELETE", "/v2/positions/AAPL"],
  ["DELETE", "/v2/positions"],
  ["POST", "/v2/orders"],
  ["GET", "/v2/orders"],
  ["DELETE", "/v2/orders"],
  ["GET", "/v2/orders:by_client_order_id?client_order_id=x"],
  ["GET", "/v2/orders/00000000-0000-4000-a000-000000000000"],
  ["PATCH", "/v2/orders/00000000-0000-4000-a000-000000000000"],
  ["DELETE", "/v2/orders/00000000-0000-4000-a000-000000000000"],
  ["GET", "/v2/account/activities/FILL"],
  ["GET", "/v2/account/activities"],
  ["GET", "/v2/clock"],
  ["GET", "/v3/clock"],
  ["GET", "/v2/calendar"],
  ["GET", "/v3/calendar/NYSE"],
  ["GET", "/v2/assets"],
  ["GET", "/v2/assets/AAPL"],
  ["GET", "/v2/stocks/AAPL/bars/latest"],
  ["GET", "/v2/stocks/bars/latest?symbols=AAPL"],
  ["GET", "/v2/stocks/AAPL/trades/latest"],
  ["GET", "/v2/stocks/trades/latest?symbols=AAPL"],
  ["GET", "/v2/stocks/AAPL/bars?timeframe=1Min"],
  ["GET", "/v2/stocks/bars?symbols=AAPL&timeframe=1Min"],
];

/** "/v2/account" as "/%762/account" and as "/v2/%61ccount": percent-encoded letters of the version and the resource. */
function encodedForms(path: string): string[] {
  const hex = (char: string) => `%${char.charCodeAt(0).toString(16)}`;
  const version = path.replace(/^\/v/, `/${hex("v")}`);
  const resource = path.replace(/^(\/v\d\/)([a-z])/, (_match, prefix: string, letter: string) => `${prefix}${hex(letter)}`);
  return [version, resource];
}

// Issue 12, item 5: the keys are checked on the route the router matched, so no encoded spelling of a path skips them.
describe("API keys checked before every route, however its path is encoded", () => {
  let sim: RunningSimulator;
  afterEach(async () => {
    await sim?.close();
  });

  it.each(ROUTES)("%s %s and its encoded forms need the keys", async (method, path) => {
    sim = await startTestSimulator({ requestsPerMinute: null });
    for (const form of [path, ...encodedForms(path)]) {
      const answer = await fetch(`${sim.url}${form}`, { method, headers: { "content-type": "application/json" }, body: method === "POST" || method === "PATCH" ? "{}" : undefined });
      expect({ form, status: answer.status }).toEqual({ form, status: 401 });
      expect(await answer.json()).toMatchObject({ code: 40110000 });
    }
  });

  it("serves an encoded path with the keys exactly as the plain one, and keeps /_sim and /healthz keyless", async () => {
    sim = await startTestSimulator({ requestsPerMinute: null });
    const plain = await (await fetch(`${sim.url}/v2/account`, { headers: KEYS })).json();
    for (const form of encodedForms("/v2/account")) {
      const answer = await fetch(`${sim.url}${form}`, { headers: KEYS });
      expect(answer.status).toBe(200);
      expect(await answer.json()).toEqual(plain);
    }
    expect((await fetch(`${sim.url}/_sim/state`)).status).toBe(200);
    expect((await fetch(`${sim.url}/healthz`)).status).toBe(200);
  });
});
