import { ConfigError, createLogger, createMetricsRegistry, GracefulShutdown, parseEnv, redactUrl, startOpsServer } from "@savepoint/shared";
import { reasonerEnvSchema, type ReasonerConfig } from "./config.js";
import { startReasoner, type RunningReasoner } from "./reasoner.js";

function loadConfig(): ReasonerConfig {
  try {
    return parseEnv(reasonerEnvSchema);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`reasoner: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
}

const config = loadConfig();
const logger = createLogger({ service: "reasoner", level: config.LOG_LEVEL, format: config.LOG_FORMAT });
const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS).listen();
process.on("unhandledRejection", (reason) => {
  logger.fatal({ err: reason }, "unhandled rejection");
  void shutdown.shutdown("unhandledRejection", 1);
});

const registry = createMetricsRegistry("reasoner");
let reasoner: RunningReasoner | undefined;
const ops = await startOpsServer({
  port: config.HTTP_PORT,
  service: "reasoner",
  registry,
  readiness: {
    reasoner: async () => {
      if (!reasoner) throw new Error("starting");
      await Promise.all(Object.values(reasoner.readiness).map((check) => check()));
    },
  },
});
logger.info({ httpPort: ops.port, redis: redactUrl(config.REDIS_URL) }, "reasoner starting");

try {
  reasoner = await startReasoner(config, logger, registry);
} catch (error) {
  logger.fatal({ err: error }, "reasoner failed to start");
  await ops.server.close();
  process.exit(1);
}
const running = reasoner;
shutdown.add("reasoner", () => running.close()).add("ops server", () => ops.server.close());
