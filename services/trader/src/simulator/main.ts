import { ConfigError, createLogger, GracefulShutdown, parseEnv } from "@savepoint/shared";
import { simulatorEnvSchema, simulatorOptionsFromEnv, type SimulatorEnv } from "./config.js";
import { startSimulator } from "./server.js";
import { DEFAULT_UNIVERSE } from "./universe.js";

function loadConfig(): SimulatorEnv {
  try {
    return parseEnv(simulatorEnvSchema);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`alpaca-simulator: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
}

const config = loadConfig();
const logger = createLogger({ service: "alpaca-simulator", level: config.LOG_LEVEL, format: config.LOG_FORMAT });
const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS).listen();

let options;
try {
  options = simulatorOptionsFromEnv(config, DEFAULT_UNIVERSE);
} catch (error) {
  console.error(`alpaca-simulator: ${(error as Error).message}`);
  process.exit(1);
}

try {
  const simulator = await startSimulator({ ...options, logger });
  shutdown.add("simulator", () => simulator.close());
  logger.info(
    { url: simulator.url, port: simulator.port, seed: options.seed, tickIntervalMs: options.tickIntervalMs, simulatedNow: simulator.control.now().toISOString() },
    "simulator listening",
  );
} catch (error) {
  logger.fatal({ err: error }, "simulator failed to start");
  process.exit(1);
}
