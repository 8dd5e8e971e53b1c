import os from "node:os";
import {
  CheckpointClient,
  createRedisConnection,
  describeRedisTarget,
  listenForStop,
  redisTargetOf,
  runService,
  SessionTakenOverError,
  type Logger,
  type RedisConnection,
  type RedisTarget,
  type RunningService,
} from "@savepoint/shared";
import type { Registry } from "prom-client";
import { AlpacaBroker } from "./broker/alpaca-broker.js";
import { HelpRequested, parseCommandLine, UsageError, type TraderOptions } from "./cli/options.js";
import { brokerConnection, orderRequestMs, takeOverSettleMs, traderEnvSchema, type TraderEnv } from "./config.js";
import { TraderMetrics } from "./metrics.js";
import { connectRedis, pingRedis, RedisUnavailableError } from "./redis.js";
import { AccountInUseError } from "./session/account-lease.js";
import { formatReport } from "./session/report.js";
import { reconcileOnly, StartupError, Trader, type TraderContext } from "./trader.js";

/** Exit codes: 0 done, 1 failed, 2 bad command line, 3 another trader took the session over, 4 the account is in use. */
const EXIT_USAGE = 2;
const EXIT_TAKEN_OVER = 3;
const EXIT_ACCOUNT_IN_USE = 4;

/** The command line, read before the environment: --help and a bad flag answer without any configuration. */
function commandLine(): TraderOptions {
  try {
    return parseCommandLine(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof HelpRequested) {
      process.stdout.write(error.output);
      process.exit(0);
    }
    if (error instanceof UsageError) {
      console.error(`trader: ${error.message}`);
      process.exit(EXIT_USAGE);
    }
    throw error;
  }
}

/** The exit code for an error that stops the trader before or instead of trading, after saying why. */
function reportFailure(error: unknown, logger: Logger): number | undefined {
  if (error instanceof UsageError) {
    logger.error({ problem: error.message }, "invalid command line");
    console.error(`trader: ${error.message}`);
    return EXIT_USAGE;
  }
  if (error instanceof SessionTakenOverError) {
    logger.error(error.message);
    return EXIT_TAKEN_OVER;
  }
  if (error instanceof AccountInUseError) {
    logger.error(error.message);
    console.error(`trader: ${error.message}`);
    return EXIT_ACCOUNT_IN_USE;
  }
  if (error instanceof StartupError || error instanceof RedisUnavailableError) {
    logger.fatal(error.message);
    return 1;
  }
  logger.fatal({ err: error }, "trader failed");
  return 1;
}

/**
 * Stop requests from the console or the `savepoint` CLI arrive on the session's own control queue (shared
 * session-control.ts); the session then ends as `stopped`, and the request is answered once the final
 * checkpoint is written. Closed right after the trader, before the connections.
 */
function listenForStopRequests(running: Trader, redisTarget: RedisTarget, queuePrefix: string, logger: Logger): { close(): Promise<void> } {
  const connection = createRedisConnection(redisTarget, "worker", "trader-control");
  connection.on("error", (error: Error) => logger.debug({ problem: error.message }, "stop-request connection: Redis error"));
  const worker = listenForStop(
    { connection, prefix: queuePrefix, sessionId: running.sessionId, name: `trader@${os.hostname()}:${process.pid}` },
    async (request) => {
      logger.warn(
        { event: "stop_requested", sessionId: running.sessionId, requestedBy: request.requestedBy, reason: request.reason },
        `stop requested by ${request.requestedBy}${request.reason ? ` (${request.reason})` : ""}; stopping the session`,
      );
      const outcome = await running.stop(`stop requested by ${request.requestedBy}`, "stopped");
      if (!outcome.final) throw new Error(`session ${running.sessionId} was taken over by another trader before it could stop`);
      return { sessionId: running.sessionId, epoch: running.checkpoints.owner.epoch, ...outcome.final };
    },
  );
  worker.on("error", (error) => logger.debug({ problem: error.message }, "stop-request listener: Redis error"));
  return {
    async close() {
      await worker.close();
      connection.disconnect();
    },
  };
}

/**
 * Connects, then trades the session (or, with --reconcile-only, prints what a resume would change) until its
 * duration ends, it is taken over, or a signal stops it; its end is the process's exit code.
 */
async function startTrader(options: TraderOptions, env: TraderEnv, logger: Logger, registry: Registry, signal: AbortSignal): Promise<RunningService> {
  const connection = brokerConnection(env);
  const redisTarget = redisTargetOf(env);
  logger.info(
    { broker: connection.tradingUrl, marketData: connection.dataUrl, simulated: connection.simulated, redis: describeRedisTarget(redisTarget).where },
    connection.simulated ? `trading against the simulator at ${connection.tradingUrl}` : `trading against Alpaca at ${connection.tradingUrl}`,
  );
  let redis: RedisConnection | undefined;
  let client: CheckpointClient;
  try {
    // First on a connection of its own, so a Redis that is down or refuses the password is one clear line.
    redis = await connectRedis(redisTarget, "trader-readiness", (error) => logger.debug({ problem: error.message }, "readiness connection: Redis error"));
    client = await CheckpointClient.connect({ redis: redisTarget, queuePrefix: env.QUEUE_PREFIX });
  } catch (error) {
    redis?.disconnect();
    throw new RedisUnavailableError((error as Error).message);
  }
  const readinessConnection = redis;
  const disconnect = async () => {
    await client.close();
    readinessConnection.disconnect();
  };
  const context: TraderContext = {
    broker: new AlpacaBroker(connection, logger),
    client,
    logger,
    metrics: new TraderMetrics(registry),
    redis: { target: redisTarget, queuePrefix: env.QUEUE_PREFIX },
    reasoningTimeoutMs: env.REASONING_TIMEOUT_MS,
    accountLeaseMs: env.TRADER_ACCOUNT_LEASE_MS,
    orderRequestMs: orderRequestMs(connection.timeoutMs),
    takeOverSettleMs: takeOverSettleMs(connection.timeoutMs, env.TRADER_TAKEOVER_MARGIN_MS),
    signal,
  };

  let trader: Trader;
  try {
    if (options.reconcileOnly) {
      const report = await reconcileOnly(options, context);
      console.log(formatReport(report));
      logger.info({ report }, "reconciliation report printed; nothing was changed (--reconcile-only)");
      return { readiness: {}, close: disconnect, ended: Promise.resolve({ reason: "reconcile-only done", exitCode: 0 }) };
    }
    trader = await Trader.open(options, context);
  } catch (error) {
    await disconnect();
    throw error;
  }
  const running = trader.run();
  const stopRequests = listenForStopRequests(trader, redisTarget, env.QUEUE_PREFIX, logger);
  return {
    readiness: { redis: () => pingRedis(readinessConnection) },
    // Trading (with its final checkpoint) first, then the stop listener (whose request that answers), connections after.
    close: async () => {
      try {
        return (await trader.stop("shutdown requested")).exitCode;
      } finally {
        await stopRequests.close();
        await disconnect();
      }
    },
    // Ended by itself (duration reached, taken over) or by a signal, whose shutdown is already under way.
    ended: running.then((outcome) => ({ reason: outcome.end.reason, exitCode: outcome.exitCode })),
  };
}

const options = commandLine();
await runService({
  name: "trader",
  envSchema: traderEnvSchema,
  // On a cluster, a QUEUE_PREFIX that is no hash tag is refused (ConfigError) in one line, before anything starts.
  checkConfig: (env) => void redisTargetOf(env),
  start: (env, { logger, registry, signal }) => startTrader(options, env, logger, registry, signal),
  startFailure: reportFailure,
});
