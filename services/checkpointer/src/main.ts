import { ConfigError, createLogger, createMetricsRegistry, GracefulShutdown, parseEnv, redactUrl, startOpsServer } from "@savepoint/shared";
import { startCheckpointer, type RunningCheckpointer } from "./checkpointer.js";
import { checkpointerEnvSchema, type CheckpointerConfig } from "./config.js";

function loadConfig(): CheckpointerConfig {
  try {
    return parseEnv(checkpointerEnvSchema);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`checkpointer: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
}

const config = loadConfig();
const logger = createLogger({ service: "checkpointer", level: config.LOG_LEVEL, format: config.LOG_FORMAT });
const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS).listen();
process.on("unhandledRejection", (reason) => {
  logger.fatal({ err: reason }, "unhandled rejection");
  void shutdown.shutdown("unhandledRejection", 1);
});

const registry = createMetricsRegistry("checkpointer");
let checkpointer: RunningCheckpointer | undefined;
const ops = await startOpsServer({
  port: config.HTTP_PORT,
  service: "checkpointer",
  registry,
  readiness: {
    checkpointer: async () => {
      if (!checkpointer) throw new Error("starting");
      await Promise.all(Object.values(checkpointer.readiness).map((check) => check()));
    },
  },
});
logger.info(
  { httpPort: ops.port, redis: redactUrl(config.REDIS_URL), database: redactUrl(config.DATABASE_URL) },
  "checkpointer starting",
);

try {
  checkpointer = await startCheckpointer(config, logger, registry);
} catch (error) {
  logger.fatal({ err: error }, "checkpointer failed to start");
  await ops.server.close();
  process.exit(1);
}
const running = checkpointer;
shutdown.add("checkpointer", () => running.close()).add("ops server", () => ops.server.close());
