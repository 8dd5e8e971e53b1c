import { redisTargetOf, runService, type Logger } from "@savepoint/shared";
import { ConsoleActions } from "./actions.js";
import { consoleEnvSchema, type ConsoleConfig } from "./config.js";
import { consoleRoutes, type ConsoleParts } from "./console-routes.js";
import { FleetReader } from "./fleet.js";
import { ConsoleStore } from "./store.js";

// One set for the pages and the readiness check; the routes' scope closes them when the HTTP server closes.
let parts: ConsoleParts | undefined;
function partsOf(config: ConsoleConfig, logger: Logger): ConsoleParts {
  if (parts) return parts;
  const store = new ConsoleStore({
    databaseUrl: config.CONSOLE_DATABASE_URL,
    poolSize: config.CONSOLE_PG_POOL_SIZE,
    statementTimeoutMs: config.CONSOLE_STATEMENT_TIMEOUT_MS,
    logger,
  });
  const redis = redisTargetOf(config);
  parts = {
    store,
    fleet: new FleetReader({ redis, queuePrefix: config.QUEUE_PREFIX, store }),
    actions: new ConsoleActions({ redis, queuePrefix: config.QUEUE_PREFIX, stopTimeoutMs: config.CONSOLE_STOP_TIMEOUT_MS, store, logger }),
  };
  return parts;
}

await runService({
  name: "console",
  envSchema: consoleEnvSchema,
  routes: (config, { logger }) => consoleRoutes(config, partsOf(config, logger), logger),
  start: async (config, { logger, httpPort = config.HTTP_PORT }) => {
    const { store } = partsOf(config, logger);
    logger.info(
      { httpPort, user: config.CONSOLE_USER, actionsEnabled: config.CONSOLE_ACTIONS_ENABLED, queuePrefix: config.QUEUE_PREFIX },
      `Savepoint console on http://127.0.0.1:${httpPort}/ (${config.CONSOLE_ACTIONS_ENABLED ? "actions enabled" : "read-only"})`,
    );
    return {
      readiness: { postgres: () => store.ping() },
      close: async () => undefined,
    };
  },
});
