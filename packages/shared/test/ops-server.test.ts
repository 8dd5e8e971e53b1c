import { describe, expect, it } from "vitest";
import { createMetricsRegistry, PortUnavailableError, startOpsServer } from "../src/ops-server.js";

// On a real socket, so not a unit test: the routes themselves are tested in ops-server.unit.test.ts by injection.
describe("the ops server", () => {
  const readiness = { redis: async () => Promise.reject(new Error("connection refused")) };
  const options = { service: "example", registry: createMetricsRegistry("example"), readiness, host: "127.0.0.1", port: 0 };

  it("serves the ops routes on Node's own HTTP server without routes of the service's own", async () => {
    const ops = await startOpsServer(options);
    const url = (path: string) => `http://127.0.0.1:${ops.port}${path}`;
    try {
      const health = await fetch(url("/healthz?probe=1"));
      expect([health.status, health.headers.get("content-type"), await health.json()]).toEqual([200, "application/json; charset=utf-8", { status: "ok", service: "example" }]);
      const ready = await fetch(url("/readyz"));
      expect([ready.status, await ready.json()]).toEqual([503, { status: "not ready", checks: { redis: "connection refused" } }]);
      const metrics = await fetch(url("/metrics"));
      expect(metrics.headers.get("content-type")).toMatch(/^text\/plain/);
      expect(await metrics.text()).toMatch(/process_cpu_user_seconds_total\{service="example"\}/);
      const head = await fetch(url("/healthz"), { method: "HEAD" });
      expect([head.status, await head.text()]).toEqual([200, ""]);
      expect((await fetch(url("/nothing"))).status).toBe(404);
      expect((await fetch(url("/healthz"), { method: "POST" })).status).toBe(404);
    } finally {
      await ops.server.close();
    }
  });

  it("serves a service's own routes beside them on fastify", async () => {
    const ops = await startOpsServer({ ...options, routes: async (app) => void app.get("/own", async () => ({ own: true })) });
    try {
      expect(await (await fetch(`http://127.0.0.1:${ops.port}/own`)).json()).toEqual({ own: true });
      expect((await fetch(`http://127.0.0.1:${ops.port}/healthz`)).status).toBe(200);
    } finally {
      await ops.server.close();
    }
  });

  it("names the setting of a port in use", async () => {
    const first = await startOpsServer(options);
    try {
      await expect(startOpsServer({ ...options, port: first.port })).rejects.toThrow(new PortUnavailableError(`HTTP_PORT=${first.port} is in use: another process listens on it; stop that process or set HTTP_PORT to a free port`));
    } finally {
      await first.server.close();
    }
  });
});
