import { createServer, type Server } from "node:http";
import type { FastifyInstance, FastifyPluginAsync } from "fastify";
import { collectDefaultMetrics, Registry } from "prom-client";

/** A readiness check: resolves when the dependency is usable, throws (with a reason) when it is not. */
export type ReadinessCheck = () => Promise<void>;

export interface OpsServerOptions extends OpsRoutesOptions {
  host?: string;
  port: number;
  /** The variable `port` came from, named when the port cannot be opened; `HTTP_PORT` unless told. */
  portSetting?: string;
  /** A service's own pages on the same port (Bull Board, for one), registered before it listens. */
  routes?: FastifyPluginAsync;
}

/** A metrics registry with Node's default process metrics, labelled with the service name. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export interface OpsRoutesOptions {
  service: string;
  registry: Registry;
  readiness: Record<string, ReadinessCheck>;
}

/** One ops page's answer: its status, content type and body. */
interface OpsAnswer {
  status: number;
  contentType: string;
  body: string;
}

const json = (status: number, value: unknown): OpsAnswer => ({ status, contentType: "application/json; charset=utf-8", body: JSON.stringify(value) });

/**
 * The answer at `path` (`/healthz`, `/readyz`, `/metrics`), or undefined for any other; the one place they are
 * made, for the fastify routes and for the plain HTTP ops server alike.
 */
async function opsAnswer(path: string, options: OpsRoutesOptions): Promise<OpsAnswer | undefined> {
  switch (path) {
    case "/healthz":
      return json(200, { status: "ok", service: options.service });
    case "/readyz": {
      const entries = await Promise.all(
        Object.entries(options.readiness).map(async ([name, check]) => {
          try {
            await check();
            return [name, "ok"] as const;
          } catch (error) {
            return [name, (error as Error).message] as const;
          }
        }),
      );
      const checks = Object.fromEntries(entries);
      const ready = entries.every(([, result]) => result === "ok");
      return json(ready ? 200 : 503, { status: ready ? "ready" : "not ready", checks });
    }
    case "/metrics":
      return { status: 200, contentType: options.registry.contentType, body: await options.registry.metrics() };
    default:
      return undefined;
  }
}

/**
 * `/healthz` (the process is alive), `/readyz` (every dependency answers; 503 naming the ones that do not)
 * and `/metrics` (Prometheus text format), on any fastify app: the ops server's, or a service that serves
 * its own port (the broker simulator, the model server).
 */
export function registerOpsRoutes(server: FastifyInstance, options: OpsRoutesOptions): void {
  for (const path of ["/healthz", "/readyz", "/metrics"]) {
    server.get(path, async (_request, reply) => {
      const answer = (await opsAnswer(path, options))!;
      return reply.code(answer.status).header("content-type", answer.contentType).send(answer.body);
    });
  }
}

/**
 * The port a setting names cannot be opened (another process holds it, or it needs privileges): a mistake
 * a person at a terminal makes and fixes, so its message is one line naming the setting and what to do.
 */
export class PortUnavailableError extends Error {
  override name = "PortUnavailableError";
}

/**
 * For `startOpsServer(...).catch(...)` in an entry point: a PortUnavailableError ends the process with its one
 * line (`<service>: HTTP_PORT=8081 is in use: …`) and exit code 1, no stack; anything else is rethrown.
 */
export function exitOnPortUnavailable(service: string): (error: unknown) => never {
  return (error) => {
    if (!(error instanceof PortUnavailableError)) throw error;
    console.error(`${service}: ${error.message}`);
    process.exit(1);
  };
}

/** The two refusals a person causes (a port in use, one that needs privileges) as a PortUnavailableError naming `setting`. */
function portRefusal(error: unknown, setting: string, port: number): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE") {
    return new PortUnavailableError(`${setting}=${port} is in use: another process listens on it; stop that process or set ${setting} to a free port`);
  }
  if (code === "EACCES") {
    return new PortUnavailableError(`${setting}=${port} needs privileges this process lacks; set ${setting} to a port above 1023`);
  }
  return error;
}

/**
 * `app.listen`, with the two refusals a person causes turned into a `PortUnavailableError` naming `setting`
 * (`HTTP_PORT=8081 is in use: …`); any other failure is rethrown as it is.
 */
export async function listenOn(app: FastifyInstance, { host, port, setting }: { host: string; port: number; setting: string }): Promise<number> {
  try {
    await app.listen({ host, port });
  } catch (error) {
    throw portRefusal(error, setting, port);
  }
  const address = app.server.address();
  return typeof address === "object" && address ? address.port : port;
}

/** What `startOpsServer` hands back: the port it listens on, and how to close it. */
export interface OpsServer {
  server: { close(): Promise<void> };
  port: number;
}

/**
 * A server with just the ops routes (and a service's own `routes`), listening on `port`. Without `routes` it
 * is Node's own HTTP server: fastify (with its schema compilers, over a megabyte of code) is loaded only by a
 * service that serves pages of its own, so the others start that much sooner.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const host = options.host ?? "0.0.0.0";
  const setting = options.portSetting ?? "HTTP_PORT";
  if (!options.routes) return startPlainOpsServer(options, host, setting);
  const { default: Fastify } = await import("fastify");
  const server = Fastify({ logger: false });
  registerOpsRoutes(server, options);
  await server.register(options.routes);
  try {
    const port = await listenOn(server, { host, port: options.port, setting });
    return { server: { close: () => server.close() }, port };
  } catch (error) {
    // The routes' onClose hooks release what they opened (the board's Redis connection, for one).
    await server.close();
    throw error;
  }
}

/** The ops routes on node:http: GET and HEAD of the three pages, 404 for anything else. */
async function startPlainOpsServer(options: OpsRoutesOptions & { port: number }, host: string, setting: string): Promise<OpsServer> {
  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0]!;
    void answerOps(request.method ?? "GET", path, options).then(
      (answer) => {
        response.writeHead(answer.status, { "content-type": answer.contentType, "content-length": Buffer.byteLength(answer.body) });
        response.end(request.method === "HEAD" ? undefined : answer.body);
      },
      (error: unknown) => {
        const failed = json(500, { error: "Internal Server Error", message: (error as Error).message });
        response.writeHead(failed.status, { "content-type": failed.contentType });
        response.end(failed.body);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) => reject(portRefusal(error, setting, options.port)));
    server.listen(options.port, host, () => resolve());
  });
  const address = server.address();
  return { server: { close: () => closeServer(server) }, port: typeof address === "object" && address ? address.port : options.port };
}

const OPS_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/** As fastify answers a route it does not have: 404 for another path, or another method than GET and HEAD. */
async function answerOps(method: string, path: string, options: OpsRoutesOptions): Promise<OpsAnswer> {
  const answer = OPS_PATHS.has(path) && (method === "GET" || method === "HEAD") ? await opsAnswer(path, options) : undefined;
  return answer ?? json(404, { error: "Not Found", message: `Route ${method}:${path} not found`, statusCode: 404 });
}

/** Stops listening and ends idle keep-alive connections (as fastify's close does); requests in progress finish. */
function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeIdleConnections();
  });
}
