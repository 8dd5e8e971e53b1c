import { ApiError, FetchError, NotFoundError, PermissionError } from "@alpacahq/alpaca-trade-api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../src/server.js";
import { failureOf, sdk, startTestSimulator } from "./support.js";

describe("simulator fault injection", () => {
  let sim: RunningSimulator;

  beforeEach(async () => {
    // Instant orders: the faults, not the lifecycle, are under test here.
    sim = await startTestSimulator({ instantOrders: true });
  });
  afterEach(async () => {
    await sim?.close();
  });

  const statusesOf = (method: string, path: string) => sim.control.requests({ method, path }).map((request) => request.status);

  it("lets the SDK ride out a 5xx burst on a GET with its own retries", async () => {
    sim.control.injectFault({ kind: "error", count: 2, status: 503, method: "GET", path: "/v2/account" });
    const account = await sdk(sim.url).account.getAccount();
    expect(account.cash).toBe("100000");
    expect(statusesOf("GET", "/v2/account")).toEqual([503, 503, 200]);
  });

  it("surfaces a 5xx burst longer than the SDK's retries as an ApiError with Alpaca's error shape", async () => {
    sim.control.injectFault({ kind: "error", count: 5, status: 500, path: "/v2/positions" });
    const error = await failureOf(sdk(sim.url).positions.getAllOpenPositions());
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 500, code: 50000000 });
    expect(statusesOf("GET", "/v2/positions")).toEqual([500, 500, 500]);
    expect(sim.control.faults()).toMatchObject([{ kind: "error", remaining: 2 }]);
  });

  it("never retries an order POST: a 5xx after the order took effect leaves it placed and findable by client_order_id", async () => {
    const api = sdk(sim.url);
    sim.control.injectFault({ kind: "error", count: 1, status: 502, when: "after", method: "POST", path: "/v2/orders" });
    const error = await failureOf(api.orders.market({ symbol: "AAPL", qty: 3, side: "buy", clientOrderId: "ambiguous-1" }));
    expect(error).toMatchObject({ status: 502 });
    expect(statusesOf("POST", "/v2/orders")).toEqual([502]);
    expect(await api.orders.getOrderByClientOrderId({ clientOrderId: "ambiguous-1" })).toMatchObject({ status: "filled", filledQty: "3" });
  });

  it("drops the connection before an order takes effect, so nothing is placed", async () => {
    const api = sdk(sim.url);
    sim.control.injectFault({ kind: "disconnect", count: 1, method: "POST", path: "/v2/orders" });
    expect(await failureOf(api.orders.market({ symbol: "AAPL", qty: 3, side: "buy", clientOrderId: "dropped-1" }))).toBeInstanceOf(FetchError);
    expect(statusesOf("POST", "/v2/orders")).toEqual([0]);
    expect(await failureOf(api.orders.getOrderByClientOrderId({ clientOrderId: "dropped-1" }))).toBeInstanceOf(NotFoundError);
  });

  it("drops the connection after an order took effect, so the client sees a network error but the order exists", async () => {
    const api = sdk(sim.url);
    sim.control.injectFault({ kind: "disconnect", count: 1, when: "after", method: "POST", path: "/v2/orders" });
    expect(await failureOf(api.orders.market({ symbol: "AAPL", qty: 3, side: "buy", clientOrderId: "dropped-2" }))).toBeInstanceOf(FetchError);
    expect((await api.orders.getOrderByClientOrderId({ clientOrderId: "dropped-2" })).status).toBe("filled");
  });

  it("delays requests by the injected latency, enough to trip the SDK's timeout", async () => {
    sim.control.injectFault({ kind: "latency", ms: 400, count: 1, path: "/v2/clock" });
    const error = await failureOf(sdk(sim.url, { retry: false, timeoutMs: 100 }).clock.legacyClock());
    expect(error).toBeInstanceOf(FetchError);
    expect((error.cause as Error).name).toBe("TimeoutError");
    // The next request is answered (after the delay, if the timed-out one never arrived), and the fault is spent.
    expect((await sdk(sim.url).clock.legacyClock()).isOpen).toBe(true);
    expect(sim.control.faults()).toEqual([]);
  });

  it("never places an order whose client gave up while the injected latency held it before it took effect", async () => {
    // As the trader's SDK aborts an order request at BROKER_TIMEOUT_MS: the connection closes, and the request,
    // once its latency is over, runs no handler (the trader's take-over test relies on this).
    sim.control.injectFault({ kind: "latency", ms: 400, count: 1, method: "POST", path: "/v2/orders" });
    const order = { symbol: "AAPL", qty: 3, side: "buy" as const, clientOrderId: "given-up" };
    const error = await failureOf(sdk(sim.url, { retry: false, timeoutMs: 100 }).orders.market(order));
    expect((error.cause as Error).name).toBe("TimeoutError");
    // Nothing announces a request that never runs, so its absence is checked once its latency is over.
    const [held] = sim.control.requests({ method: "POST", path: "/v2/orders" });
    await new Promise((resolve) => setTimeout(resolve, Date.parse(held!.receivedAt) + 400 + 200 - Date.now()));
    expect(sim.control.state().orders).toEqual([]);
    // The client_order_id is free: the next attempt under it places the order, no duplicate refused.
    expect((await sdk(sim.url).orders.market(order)).clientOrderId).toBe("given-up");
    expect(sim.control.state().orders).toHaveLength(1);
  });

  it("holds back only the answer with latency after: the order is placed while the client still waits", async () => {
    sim.control.injectFault({ kind: "latency", ms: 400, count: 1, when: "after", method: "POST", path: "/v2/orders" });
    const placing = sdk(sim.url).orders.market({ symbol: "AAPL", qty: 3, side: "buy", clientOrderId: "answer-held" });
    const placed = () => sim.control.state().orders.find((order) => order.client_order_id === "answer-held");
    while (!placed()) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(statusesOf("POST", "/v2/orders")).toEqual([null]);
    expect((await placing).clientOrderId).toBe("answer-held");
    expect(statusesOf("POST", "/v2/orders")).toEqual([200]);
  });

  it("rejects placements outright (403, no order) or accepts and then rejects them", async () => {
    const api = sdk(sim.url);
    sim.control.injectFault({ kind: "reject_orders", count: 1, mode: "http", message: "account is restricted" });
    const refused = await failureOf(api.orders.market({ symbol: "AAPL", qty: 1, side: "buy", clientOrderId: "refused" }));
    expect(refused).toBeInstanceOf(PermissionError);
    expect(refused.message).toBe("account is restricted");
    expect(await failureOf(api.orders.getOrderByClientOrderId({ clientOrderId: "refused" }))).toBeInstanceOf(NotFoundError);

    sim.control.injectFault({ kind: "reject_orders", count: 1, mode: "status" });
    const accepted = await api.orders.market({ symbol: "AAPL", qty: 1, side: "buy", clientOrderId: "rejected-later" });
    expect(accepted.status).toBe("accepted");
    expect(await api.orders.getOrderByClientOrderId({ clientOrderId: "rejected-later" })).toMatchObject({ status: "rejected", filledQty: "0" });
    expect(await api.positions.getAllOpenPositions()).toEqual([]);
  });

  it("offers the same control over HTTP under /_sim for tests in another process", async () => {
    const admin = async <Body = Record<string, unknown>>(path: string, init: RequestInit = {}) => {
      const response = await fetch(`${sim.url}${path}`, { ...init, headers: { "content-type": "application/json" } });
      return { status: response.status, body: (response.status === 204 ? null : await response.json()) as Body };
    };
    const api = sdk(sim.url, { retry: false });

    const injected = await admin("/_sim/faults", { method: "POST", body: JSON.stringify({ kind: "error", count: 1, status: 504, path: "/v2/clock" }) });
    expect(injected).toMatchObject({ status: 201, body: { kind: "error", count: 1, status: 504, remaining: 1 } });
    expect(await failureOf(api.clock.legacyClock())).toMatchObject({ status: 504 });

    const invalid = await admin<{ message: string }>("/_sim/faults", { method: "POST", body: JSON.stringify({ kind: "error", count: 0 }) });
    expect(invalid.status).toBe(422);
    expect(invalid.body.message).toMatch(/^invalid fault: count: /);

    expect((await admin<{ now: string }>("/_sim/advance", { method: "POST", body: JSON.stringify({ bars: 3 }) })).body.now).toBe("2026-01-05T15:03:00.000Z");
    expect((await admin<{ prices: Record<string, number> }>("/_sim/prices", { method: "POST", body: JSON.stringify({ prices: { AAPL: 123.456 } }) })).body.prices.AAPL).toBe(123.46);
    await api.orders.market({ symbol: "AAPL", qty: 2, side: "buy", clientOrderId: "via-admin" });
    const { body: state } = await admin("/_sim/state");
    expect(state).toMatchObject({ now: "2026-01-05T15:03:00.000Z", marketOpen: true, positions: [{ symbol: "AAPL", qty: "2", avg_entry_price: "123.46" }] });

    await admin("/_sim/faults", { method: "POST", body: JSON.stringify({ kind: "latency", ms: 5 }) });
    expect((await admin("/_sim/faults", { method: "DELETE" })).status).toBe(204);
    expect((await admin("/_sim/faults")).body).toEqual({ faults: [] });
    const { body: log } = await admin<{ requests: Array<{ status: number }> }>("/_sim/requests?method=get&path=/v2/clock");
    expect(log.requests.map((request) => request.status)).toEqual([504]);
  });
});
