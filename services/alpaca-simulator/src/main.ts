import { runService } from "@savepoint/shared";
import { simulatorEnvSchema, simulatorOptionsFromEnv } from "./config.js";
import { startSimulator } from "./server.js";
import { DEFAULT_UNIVERSE } from "./universe.js";

// The simulator serves its own /healthz on SIM_PORT, so it takes no HTTP_PORT.
await runService({
  name: "alpaca-simulator",
  envSchema: simulatorEnvSchema,
  start: async (config, { logger }) => {
    const options = simulatorOptionsFromEnv(config, DEFAULT_UNIVERSE);
    const simulator = await startSimulator({ ...options, logger });
    logger.info(
      { url: simulator.url, port: simulator.port, seed: options.seed, tickIntervalMs: options.tickIntervalMs, simulatedNow: simulator.control.now().toISOString() },
      "simulator listening",
    );
    return { readiness: {}, close: () => simulator.close() };
  },
});
