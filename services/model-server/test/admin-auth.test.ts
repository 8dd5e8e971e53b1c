import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createModelServer, type ModelServer } from "../src/server.js";

const KEY = "right-key";

/** One HTTP request with the path sent exactly as given (fetch would normalise it first). */
function send(port: number, method: string, path: string, body: unknown, key?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const call = httpRequest(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        headers: { ...(payload ? { "content-type": "application/json" } : {}), ...(key ? { "x-api-key": key } : {}) },
      },
      (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
      },
    );
    call.on("error", reject);
    call.end(payload);
  });
}

/** Ways to write one path: percent-encoded letters (any case), a query, doubled or encoded slashes, a trailing slash. */
function spellings(path: string): string[] {
  const [, first, ...rest] = path.split("/");
  const tail = rest.join("/");
  const encoded = (text: string, upper: boolean) =>
    [...text].map((char) => `%${char.charCodeAt(0).toString(16)[upper ? "toUpperCase" : "toLowerCase"]()}`).join("");
  return [
    `/%61${first!.slice(1)}/${tail}`,
    `/${encoded(first!, true)}/${tail}`,
    `/${first}/%${tail.charCodeAt(0).toString(16)}${tail.slice(1)}`,
    `/${encoded(first!, false)}/${encoded(tail, false)}`,
    `${path}?probe=1`,
    `/%61${first!.slice(1)}/${tail}?probe=1`,
    `//${first}/${tail}`,
    `/${first}//${tail}`,
    `/${first}%2F${tail}`,
    `/${first}%2f${tail}`,
    `${path}/`,
    `/${first}/./${tail}`,
  ];
}

const ROUTES: Array<{ method: string; path: string; body?: unknown }> = [
  { method: "GET", path: "/admin/calls" },
  { method: "GET", path: "/admin/calls/some-session" },
  { method: "DELETE", path: "/admin/calls" },
  { method: "POST", path: "/admin/faults", body: { status: 529, count: 1, sessionId: "never-called" } },
  { method: "GET", path: "/admin/faults" },
  { method: "DELETE", path: "/admin/faults" },
  { method: "PUT", path: "/admin/latency", body: { ms: 7 } },
];

describe("model server admin routes with MODEL_SERVER_API_KEY set", () => {
  let server: ModelServer;
  let port: number;

  beforeAll(async () => {
    server = createModelServer({ latencyMs: 0, apiKey: KEY });
    port = await server.listen(0);
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(ROUTES)("refuses $method $path without the key however the path is spelled", async ({ method, path, body }) => {
    expect(await send(port, method, path, body), "the plain path").toBe(401);
    // The bypass the fault campaign found: the encoded path reaches the route (200 with the key)...
    expect(await send(port, method, `/%61${path.slice(2)}`, body, KEY)).toBe(200);
    for (const spelling of spellings(path)) {
      const withoutKey = await send(port, method, spelling, body);
      const withKey = await send(port, method, spelling, body, KEY);
      // ...and every spelling that reaches a route is refused without the key; the others reach none.
      expect(withoutKey, `${method} ${spelling} without the key (${withKey} with it)`).toBe(withKey === 200 ? 401 : 404);
      expect(await send(port, method, spelling, body, "wrong-key"), `${method} ${spelling} with a wrong key`).toBe(withKey === 200 ? 401 : 404);
    }
  });

  it("changed nothing for the refused calls", async () => {
    server.latencyMs = 0;
    server.faults.clear();
    server.ledger.received("kept-session", false);
    for (const { method, path, body } of ROUTES) {
      for (const spelling of spellings(path)) await send(port, method, spelling, body);
    }
    expect(server.latencyMs).toBe(0);
    expect(server.faults.list()).toEqual([]);
    expect(server.ledger.session("kept-session").calls).toBe(1);
  });

  it("refuses the Messages API without the key in an encoded spelling too", async () => {
    const body = { model: "claude-sonnet-5-5", max_tokens: 64, messages: [{ role: "user", content: "Iteration 1 of 3" }] };
    expect(await send(port, "POST", "/v1/m%65ssages", body)).toBe(401);
    expect(await send(port, "POST", "/v1/m%65ssages", body, "wrong-key")).toBe(401);
    expect(await send(port, "POST", "/v1/m%65ssages", body, KEY)).toBe(200);
  });
});
