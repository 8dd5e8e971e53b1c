import Fastify, { type FastifyInstance, type FastifyPluginAsync } from "fastify";
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

/**
 * `/healthz` (the process is alive), `/readyz` (every dependency answers; 503 naming the ones that do not)
 * and `/metrics` (Prometheus text format), on any fastify app: the ops server's, or a service that serves
 * its own port (the broker simulator, the model server).
 */
export function registerOpsRoutes(server: FastifyInstance, options: OpsRoutesOptions): void {
  server.get("/healthz", async () => ({ status: "ok", service: options.service }));
  server.get("/readyz", async (_request, reply) => {
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
    return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "not ready", checks });
  });
  server.get("/metrics", async (_request, reply) => {
    return reply.header("content-type", options.registry.contentType).send(await options.registry.metrics());
  });
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

/**
 * `app.listen`, with the two refusals a person causes turned into a `PortUnavailableError` naming `setting`
 * (`HTTP_PORT=8081 is in use: …`); any other failure is rethrown as it is.
 */
export async function listenOn(app: FastifyInstance, { host, port, setting }: { host: string; port: number; setting: string }): Promise<number> {
  try {
    await app.listen({ host, port });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") {
      throw new PortUnavailableError(`${setting}=${port} is in use: another process listens on it; stop that process or set ${setting} to a free port`);
    }
    if (code === "EACCES") {
      throw new PortUnavailableError(`${setting}=${port} needs privileges this process lacks; set ${setting} to a port above 1023`);
    }
    throw error;
  }
  const address = app.server.address();
  return typeof address === "object" && address ? address.port : port;
}

/** A server with just the ops routes (and a service's own `routes`), listening on `port`. */
export async function startOpsServer(options: OpsServerOptions): Promise<{ server: FastifyInstance; port: number }> {
  const server = Fastify({ logger: false });
  registerOpsRoutes(server, options);
  if (options.routes) await server.register(options.routes);
  try {
    const port = await listenOn(server, { host: options.host ?? "0.0.0.0", port: options.port, setting: options.portSetting ?? "HTTP_PORT" });
    return { server, port };
  } catch (error) {
    // The routes' onClose hooks release what they opened (the board's Redis connection, for one).
    await server.close();
    throw error;
  }
}
