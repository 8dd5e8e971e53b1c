import type { FastifyPluginAsync } from "fastify";
import type { Registry } from "prom-client";
import type { z } from "zod";
import { ConfigError, parseEnv } from "./config.js";
import { namedError } from "./named-error.js";
import { createLogger, type LogFormat, type Logger } from "./logger.js";
import { createMetricsRegistry, exitOnPortUnavailable, PortUnavailableError, startOpsServer, type ReadinessCheck } from "./ops-server.js";
import { redactUrl } from "./redaction.js";
import { RedisUnavailableError } from "./redis.js";
import { GracefulShutdown } from "./shutdown.js";

/**
 * A setting the service found wrong while starting (a key the API refuses, a model it does not know, an
 * endpoint nobody answers at): the message names the setting and what to do, and runService prints it as one
 * line and exits 1, as it does for a port in use or an unreachable Redis.
 */
export class StartupSettingError extends Error {
  override name = "StartupSettingError";
}

/** The reason `host.signal` carries when a signal arrives while the service starts. */
export class StartAbortedError extends namedError("StartAbortedError") {}

/** What a service's `start` hands back: how to tell it is ready, and how to stop it. */
export interface RunningService {
  readiness: Record<string, ReadinessCheck>;
  /** May resolve to the exit code the service ended with (a trader taken over while stopping ends with 3). */
  close(): Promise<void | number>;
  /**
   * For a service that ends by itself (the trader once its --duration has passed, or taken over): resolves
   * with why and the exit code, and the process then shuts down as on a signal, exiting with that code.
   */
  ended?: Promise<{ reason: string; exitCode: number }>;
}

/** The variables `runService` itself reads; every service's schema extends `commonEnvSchema`, which has them. */
interface HostEnv {
  LOG_LEVEL: string;
  LOG_FORMAT?: LogFormat;
  SHUTDOWN_TIMEOUT_MS: number;
  /** Where /healthz, /readyz and /metrics listen; a service without it serves its own. */
  HTTP_PORT?: number;
  REDIS_URL?: string;
  DATABASE_URL?: string;
}

export interface ServiceDefinition<S extends z.ZodObject> {
  name: string;
  envSchema: S;
  /**
   * Pages the service serves on HTTP_PORT beside /healthz, /readyz and /metrics. The port opens before
   * `start` runs (so health answers while it starts), hence these are built from the configuration alone;
   * the plugin's onClose hooks release what it holds when the ops server closes at shutdown.
   */
  routes?(config: z.infer<S>, host: { logger: Logger; registry: Registry }): FastifyPluginAsync;
  /**
   * A check across variables the schema does not make (the trader: on a Redis Cluster, QUEUE_PREFIX must be a
   * hash tag): throws a ConfigError, printed as its one line before anything is logged or opened, like a bad variable.
   */
  checkConfig?(config: z.infer<S>): void;
  /**
   * `host.httpPort` is the port HTTP_PORT opened (the one the OS chose for HTTP_PORT=0), if the service has one.
   * `host.signal` aborts when SIGTERM or SIGINT arrives while `start` runs: a start that waits (the trader after
   * a --take-over) stops waiting and rejects, undoing what it began; the process then exits 0, as it would have
   * after the signal. A start that ignores it runs on, and the service it returns is closed as on any signal.
   */
  start(config: z.infer<S>, host: { logger: Logger; registry: Registry; httpPort?: number; signal: AbortSignal }): Promise<RunningService>;
  /**
   * For a service whose start can end in outcomes it tells apart by exit code (the trader: 2 for a bad
   * command line, 3 for a session another trader took over, 4 for an account in use): says why `start`
   * failed, in its own words, and returns the code to exit with; `undefined` leaves the error to runService.
   */
  startFailure?(error: unknown, logger: Logger): number | undefined;
}

/**
 * The life of a service process: parse the environment (a bad variable stops it with a message naming it),
 * log, serve /healthz /readyz /metrics (a port in use stops it with one line naming HTTP_PORT), start, and
 * on SIGTERM/SIGINT (or once a service that ends by itself has ended) close within SHUTDOWN_TIMEOUT_MS.
 */
export async function runService<S extends z.ZodObject>({ name, envSchema, routes, checkConfig, start, startFailure }: ServiceDefinition<S>): Promise<void> {
  let config: z.infer<S> & HostEnv;
  try {
    config = parseEnv(envSchema) as z.infer<S> & HostEnv;
    checkConfig?.(config);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`${name}: ${error.message}`);
    process.exit(1);
  }
  const logger = createLogger({ service: name, level: config.LOG_LEVEL, format: config.LOG_FORMAT });
  const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS).listen();
  process.on("unhandledRejection", (reason) => {
    logger.fatal({ err: reason }, "unhandled rejection");
    void shutdown.shutdown("unhandledRejection", 1);
  });

  const registry = createMetricsRegistry(name);
  let running: RunningService | undefined;
  const ops =
    config.HTTP_PORT === undefined
      ? undefined
      : await startOpsServer({
          port: config.HTTP_PORT,
          service: name,
          registry,
          routes: routes?.(config, { logger, registry }),
          readiness: {
            [name]: async () => {
              if (!running) throw new Error("starting");
              await Promise.all(Object.values(running.readiness).map((check) => check()));
            },
          },
        }).catch(exitOnPortUnavailable(name));
  logger.info(
    {
      httpPort: ops?.port,
      redis: config.REDIS_URL && redactUrl(config.REDIS_URL),
      database: config.DATABASE_URL && redactUrl(config.DATABASE_URL),
    },
    `${name} starting`,
  );

  // A signal while starting: the start is aborted, and the shutdown waits until it has ended before it closes
  // the service it may still return (registered below) or exits, so nothing the start opened is left half done.
  const starting = new AbortController();
  let startEnded: () => void = () => {};
  const ended = new Promise<void>((resolve) => (startEnded = resolve));
  shutdown.add(`${name} start`, () => {
    starting.abort(new StartAbortedError(`${name} was told to stop while starting`));
    return ended;
  });
  try {
    running = await start(config, { logger, registry, signal: starting.signal, ...(ops ? { httpPort: ops.port } : {}) });
  } catch (error) {
    if (starting.signal.aborted) {
      logger.info({ problem: (error as Error).message }, `${name} stopped while starting`);
      await ops?.server.close();
      startEnded();
      return;
    }
    const exitCode = startFailure?.(error, logger);
    if (exitCode !== undefined) {
      await ops?.server.close();
      process.exit(exitCode);
    }
    // A service that opens its own port (the simulator's SIM_PORT, the model server's MODEL_SERVER_PORT) meets
    // the same person-made mistake as the ops server's HTTP_PORT; an unreachable Redis and a setting the service
    // found wrong while starting are others: one line, no stack.
    const personMade = error instanceof PortUnavailableError || error instanceof RedisUnavailableError || error instanceof StartupSettingError;
    if (personMade) console.error(`${name}: ${error.message}`);
    else logger.fatal({ err: error }, `${name} failed to start`);
    await ops?.server.close();
    process.exit(1);
  }
  startEnded();
  const service = running;
  shutdown.add(name, () => service.close());
  if (ops) shutdown.add("ops server", () => ops.server.close());
  void service.ended?.then(({ reason, exitCode }) => shutdown.shutdown(reason, exitCode));
}
