import Fastify, { type FastifyInstance, type FastifyPluginAsync } from "fastify";
import { collectDefaultMetrics, Registry } from "prom-client";

/** A readiness check: resolves when the dependency is usable, throws (with a reason) when it is not. */
export type ReadinessCheck = () => Promise<void>;

export interface OpsServerOptions extends OpsRoutesOptions {
  host?: string;
  port: number;
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

/** A server with just the ops routes (and a service's own `routes`), listening on `port`. */
export async function startOpsServer(options: OpsServerOptions): Promise<{ server: FastifyInstance; port: number }> {
  const server = Fastify({ logger: false });
  registerOpsRoutes(server, options);
  if (options.routes) await server.register(options.routes);
  await server.listen({ host: options.host ?? "0.0.0.0", port: options.port });
  const address = server.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return { server, port };
}
