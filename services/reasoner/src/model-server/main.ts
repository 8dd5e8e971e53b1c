import { ConfigError, createLogger, GracefulShutdown, parseEnv } from "@savepoint/shared";
import { modelServerEnvSchema, type ModelServerConfig } from "./config.js";
import { createModelServer } from "./server.js";

function loadConfig(): ModelServerConfig {
  try {
    return parseEnv(modelServerEnvSchema);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`model-server: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
}

const config = loadConfig();
const logger = createLogger({ service: "model-server", level: config.LOG_LEVEL, format: config.LOG_FORMAT });
const server = createModelServer({
  latencyMs: config.MODEL_SERVER_LATENCY_MS,
  ...(config.MODEL_SERVER_API_KEY ? { apiKey: config.MODEL_SERVER_API_KEY } : {}),
});
const shutdown = new GracefulShutdown(logger, 5_000).listen();
try {
  const boundPort = await server.listen(config.MODEL_SERVER_PORT, config.MODEL_SERVER_HOST);
  logger.info(
    { port: boundPort, host: config.MODEL_SERVER_HOST, latencyMs: config.MODEL_SERVER_LATENCY_MS, keyRequired: Boolean(config.MODEL_SERVER_API_KEY) },
    "model server listening: POST /v1/messages",
  );
} catch (error) {
  logger.fatal({ err: error }, "model server failed to start");
  process.exit(1);
}
shutdown.add("model server", () => server.close());
