import { runService, type Logger } from "@savepoint/shared";
import { consoleEnvSchema, type ConsoleConfig } from "./config.js";
import { consoleRoutes } from "./console-routes.js";
import { ConsoleStore } from "./store.js";

// One pool for the pages and the readiness check; the routes' scope ends it when the HTTP server closes.
let store: ConsoleStore | undefined;
const storeOf = (config: ConsoleConfig, logger: Logger) =>
  (store ??= new ConsoleStore({
    databaseUrl: config.CONSOLE_DATABASE_URL,
    poolSize: config.CONSOLE_PG_POOL_SIZE,
    statementTimeoutMs: config.CONSOLE_STATEMENT_TIMEOUT_MS,
    logger,
  }));

await runService({
  name: "console",
  envSchema: consoleEnvSchema,
  routes: (config, { logger }) => consoleRoutes(config, storeOf(config, logger), logger),
  start: async (config, { logger, httpPort = config.HTTP_PORT }) => {
    const readable = storeOf(config, logger);
    logger.info(
      { httpPort, user: config.CONSOLE_USER, actionsEnabled: config.CONSOLE_ACTIONS_ENABLED },
      `Savepoint console on http://127.0.0.1:${httpPort}/ (${config.CONSOLE_ACTIONS_ENABLED ? "actions enabled" : "read-only"})`,
    );
    return {
      readiness: { postgres: () => readable.ping() },
      close: async () => undefined,
    };
  },
});
