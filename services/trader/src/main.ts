import {
  CheckpointClient,
  ConfigError,
  createLogger,
  createMetricsRegistry,
  exitOnPortUnavailable,
  GracefulShutdown,
  describeRedisTarget,
  parseEnv,
  redisTargetOf,
  SessionTakenOverError,
  startOpsServer,
  type Logger,
  type RedisTarget,
} from "@savepoint/shared";
import { AlpacaBroker } from "./broker/alpaca-broker.js";
import { HelpRequested, parseCommandLine, UsageError, type TraderOptions } from "./cli/options.js";
import { brokerConnection, traderEnvSchema, type TraderEnv } from "./config.js";
import { TraderMetrics } from "./metrics.js";
import { connectRedis, pingRedis, RedisUnavailableError } from "./redis.js";
import { AccountInUseError } from "./session/account-lease.js";
import { formatReport } from "./session/report.js";
import { reconcileOnly, StartupError, Trader, type TraderContext } from "./trader.js";

/** Exit codes: 0 done, 1 failed, 2 bad command line, 3 another trader took the session over, 4 the account is in use. */
const EXIT_USAGE = 2;
const EXIT_TAKEN_OVER = 3;
const EXIT_ACCOUNT_IN_USE = 4;

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

function environment(): { env: TraderEnv; redisTarget: RedisTarget } {
  try {
    const env = parseEnv(traderEnvSchema);
    return { env, redisTarget: redisTargetOf(env) };
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`trader: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
}

/** The exit code for an error that stops the trader before or instead of trading, after saying why. */
function reportFailure(logger: Logger, error: unknown): number {
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
  if (error instanceof StartupError || error instanceof RedisUnavailableError) logger.fatal(error.message);
  else logger.fatal({ err: error }, "trader failed");
  return 1;
}

const options = commandLine();
const { env, redisTarget } = environment();
const logger = createLogger({ service: "trader", level: env.LOG_LEVEL, format: env.LOG_FORMAT });
const shutdown = new GracefulShutdown(logger, env.SHUTDOWN_TIMEOUT_MS).listen();
process.on("unhandledRejection", (reason) => {
  logger.fatal({ err: reason }, "unhandled rejection");
  void shutdown.shutdown("unhandledRejection", 1);
});

let trader: Trader | undefined;
// Parts close in registration order: trading (with its final checkpoint) first, connections after.
shutdown.add("trader", async () => (await trader?.stop("shutdown requested"))?.exitCode);

const connection = brokerConnection(env);
const broker = new AlpacaBroker(connection);
const registry = createMetricsRegistry("trader");
const metrics = new TraderMetrics(registry);
let redis: Awaited<ReturnType<typeof connectRedis>> | undefined;
const ops = await startOpsServer({
  port: env.HTTP_PORT,
  service: "trader",
  registry,
  readiness: {
    trading: async () => {
      if (!trader) throw new Error("starting: restoring and reconciling the session");
    },
    redis: async () => {
      if (!redis) throw new Error("starting: connecting to Redis");
      await pingRedis(redis);
    },
  },
}).catch(exitOnPortUnavailable("trader"));
shutdown.add("ops server", () => ops.server.close());
logger.info(
  { httpPort: ops.port, broker: connection.tradingUrl, marketData: connection.dataUrl, simulated: connection.simulated, redis: describeRedisTarget(redisTarget).where },
  connection.simulated ? `trader starting against the simulator at ${connection.tradingUrl}` : `trader starting against Alpaca at ${connection.tradingUrl}`,
);

let client: CheckpointClient;
try {
  // First on a connection of its own, so a Redis that is down or refuses the password is one clear line.
  redis = await connectRedis(redisTarget, "trader-readiness", (error) => logger.debug({ problem: error.message }, "readiness connection: Redis error"));
  client = await CheckpointClient.connect({ redis: redisTarget, queuePrefix: env.QUEUE_PREFIX });
} catch (error) {
  logger.fatal({ redis: describeRedisTarget(redisTarget).where }, (error as Error).message);
  await shutdown.shutdown("redis unavailable", 1);
  process.exit(1);
}
const readinessConnection = redis;
shutdown.add("checkpoint client", () => client.close());
shutdown.add("redis", async () => readinessConnection.disconnect());

const context: TraderContext = {
  broker,
  client,
  logger,
  metrics,
  redis: { target: redisTarget, queuePrefix: env.QUEUE_PREFIX },
  reasoningTimeoutMs: env.REASONING_TIMEOUT_MS,
  accountLeaseMs: env.TRADER_ACCOUNT_LEASE_MS,
};

if (options.reconcileOnly) {
  let exitCode = 0;
  try {
    const report = await reconcileOnly(options, context);
    console.log(formatReport(report));
    logger.info({ report }, "reconciliation report printed; nothing was changed (--reconcile-only)");
  } catch (error) {
    exitCode = reportFailure(logger, error);
  }
  await shutdown.shutdown("reconcile-only done", exitCode);
} else {
  try {
    trader = await Trader.open(options, context);
  } catch (error) {
    await shutdown.shutdown("start failed", reportFailure(logger, error));
  }
  if (trader) {
    const outcome = await trader.run();
    // Ended by itself (duration reached, taken over) or by a signal, whose shutdown is already under way.
    await shutdown.shutdown(outcome.end.reason, outcome.exitCode);
  }
}
