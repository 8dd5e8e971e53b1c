import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { createMetricsRegistry, registerOpsRoutes } from "../src/ops-server.js";

describe("ops routes", () => {
  const app = Fastify();
  let redisUp = true;
  registerOpsRoutes(app, {
    service: "example",
    registry: createMetricsRegistry("example"),
    readiness: {
      redis: async () => {
        if (!redisUp) throw new Error("connection refused");
      },
      postgres: async () => undefined,
    },
  });

  it("answers /healthz while the process runs", async () => {
    const response = await app.inject({ method: "GET", url: "/healthz" });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: "ok", service: "example" });
  });

  it("answers /readyz with 503 naming the dependency that fails, and 200 once all answer", async () => {
    redisUp = false;
    const down = await app.inject({ method: "GET", url: "/readyz" });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toEqual({ status: "not ready", checks: { redis: "connection refused", postgres: "ok" } });
    redisUp = true;
    const up = await app.inject({ method: "GET", url: "/readyz" });
    expect(up.statusCode).toBe(200);
    expect(up.json()).toEqual({ status: "ready", checks: { redis: "ok", postgres: "ok" } });
  });

  it("serves Prometheus metrics labelled with the service", async () => {
    const response = await app.inject({ method: "GET", url: "/metrics" });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/plain/);
    expect(response.body).toMatch(/process_cpu_user_seconds_total\{service="example"\}/);
  });
});
