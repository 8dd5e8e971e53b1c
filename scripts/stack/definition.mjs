/**
 * The stack: every service, how it starts, what it is configured with, how its health is read, how long it
 * gets to stop and what it waits for. `npm run stack` runs it natively from this list; docker-compose.yml
 * spells out the same for containers, and test/stack/compose.test.ts fails when the two disagree.
 *
 * An environment value is either a string (fixed: the service relies on it, e.g. its port) or
 * `{ default: string }` (the user's environment or .env overrides it, e.g. where the broker is).
 * `stopGraceMs` (compose's stop_grace_period) exceeds the service's SHUTDOWN_TIMEOUT_MS, so its final
 * checkpoints are written before it could be killed.
 */

/**
 * @typedef {string | { default: string, follows?: string }} EnvValue
 * @typedef {"healthy" | "completed"} Condition  compose's service_healthy / service_completed_successfully
 * @typedef {{
 *   name: string,
 *   kind: "infrastructure" | "one-shot" | "service",
 *   command?: string[],
 *   env?: Record<string, EnvValue>,
 *   variable?: string,
 *   url?: EnvValue,
 *   port?: number,
 *   health?: string,
 *   stopGraceMs?: number,
 *   dependsOn?: Record<string, Condition>,
 * }} StackService
 * @typedef {{
 *   redisUrl: EnvValue,
 *   databaseUrl: EnvValue,
 *   host: (service: string) => string,
 *   portOffset: number,
 * }} Placement
 */

/** Where things are inside docker compose's network (see docker-compose.yml). */
export const COMPOSE_PLACEMENT = {
  redisUrl: "redis://redis:6379",
  databaseUrl: "postgres://postgres:savepoint@postgres:5432/savepoint",
  host: (service) => service,
  portOffset: 0,
};

/** Where things are on this machine: local Redis and Postgres unless the environment says otherwise. */
export function nativePlacement(portOffset = 0) {
  return {
    redisUrl: { default: "redis://127.0.0.1:6379" },
    databaseUrl: { default: "postgres://postgres@127.0.0.1:5432/savepoint", follows: "DATABASE_URL" },
    host: () => "127.0.0.1",
    portOffset,
  };
}

/** Used when BULL_BOARD_PASSWORD is not set; the board's port is published on 127.0.0.1 only (README, "The stack"). */
export const DEVELOPMENT_BOARD_PASSWORD = "development-only-change-me";

/** Used when CONSOLE_PASSWORD is not set; the console's port is published on 127.0.0.1 only, as the board's. */
export const DEVELOPMENT_CONSOLE_PASSWORD = "development-only-change-me";

/**
 * @param {Placement} where
 * @returns {StackService[]}
 */
export function stackServices(where) {
  const port = (base) => base + where.portOffset;
  const url = (service, base) => `http://${where.host(service)}:${port(base)}`;
  const logging = { LOG_LEVEL: { default: "info" }, LOG_FORMAT: { default: "json" } };
  const queues = { REDIS_URL: where.redisUrl, REDIS_CLUSTER_NODES: { default: "" }, QUEUE_PREFIX: { default: "savepoint" }, ...logging };

  return [
    { name: "redis", kind: "infrastructure", variable: "REDIS_URL", url: where.redisUrl },
    { name: "postgres", kind: "infrastructure", variable: "DATABASE_URL", url: where.databaseUrl },
    {
      name: "migrate",
      kind: "one-shot",
      command: ["node", "packages/shared/dist/bin/migrate.js", "up"],
      env: { DATABASE_URL: where.databaseUrl },
      dependsOn: { postgres: "healthy" },
    },
    {
      name: "checkpointer",
      kind: "service",
      command: ["node", "services/checkpointer/dist/main.js"],
      env: { ...queues, DATABASE_URL: where.databaseUrl, HTTP_PORT: String(port(8081)), SHUTDOWN_TIMEOUT_MS: "20000" },
      port: port(8081),
      health: "/readyz",
      stopGraceMs: 30_000,
      dependsOn: { redis: "healthy", postgres: "healthy", migrate: "completed" },
    },
    {
      name: "model-server",
      kind: "service",
      command: ["node", "services/model-server/dist/main.js"],
      env: { ...logging, MODEL_SERVER_PORT: String(port(8091)), MODEL_SERVER_HOST: "0.0.0.0", SHUTDOWN_TIMEOUT_MS: "5000" },
      port: port(8091),
      health: "/healthz",
      stopGraceMs: 10_000,
      dependsOn: {},
    },
    {
      name: "alpaca-simulator",
      kind: "service",
      command: ["node", "services/alpaca-simulator/dist/main.js"],
      env: { ...logging, SIM_PORT: String(port(8090)), SIM_HOST: "0.0.0.0", SHUTDOWN_TIMEOUT_MS: "5000" },
      port: port(8090),
      health: "/healthz",
      stopGraceMs: 10_000,
      dependsOn: {},
    },
    {
      name: "reasoner",
      kind: "service",
      command: ["node", "services/reasoner/dist/main.js"],
      env: {
        ...queues,
        HTTP_PORT: String(port(8083)),
        SHUTDOWN_TIMEOUT_MS: "8000",
        ANTHROPIC_BASE_URL: { default: url("model-server", 8091) },
        // Each attempt reads the market where the trader trades, on the minute bars the trader decides on.
        APCA_API_BASE_URL: { default: url("alpaca-simulator", 8090) },
        APCA_DATA_BASE_URL: { default: url("alpaca-simulator", 8090) },
        MARKET_BARS_TIMEFRAME: { default: "1Min" },
      },
      port: port(8083),
      health: "/readyz",
      stopGraceMs: 15_000,
      dependsOn: { redis: "healthy", checkpointer: "healthy", "model-server": "healthy", "alpaca-simulator": "healthy" },
    },
    {
      name: "trader",
      kind: "service",
      // Restarted after a crash or a stop, the same command picks its interrupted session up again.
      command: ["node", "services/trader/dist/main.js", "--resume-or-new", "--strategy", "reasoner"],
      env: {
        ...queues,
        HTTP_PORT: String(port(8082)),
        SHUTDOWN_TIMEOUT_MS: "20000",
        TRADER_INTERVAL_SECONDS: { default: "60" },
        APCA_API_BASE_URL: { default: url("alpaca-simulator", 8090) },
        APCA_DATA_BASE_URL: { default: url("alpaca-simulator", 8090) },
      },
      port: port(8082),
      health: "/readyz",
      stopGraceMs: 30_000,
      dependsOn: { redis: "healthy", checkpointer: "healthy", reasoner: "healthy", "alpaca-simulator": "healthy" },
    },
    {
      name: "bull-board",
      kind: "service",
      command: ["node", "services/board/dist/main.js"],
      env: {
        ...queues,
        HTTP_PORT: String(port(8080)),
        SHUTDOWN_TIMEOUT_MS: "5000",
        BULL_BOARD_PASSWORD: { default: DEVELOPMENT_BOARD_PASSWORD },
      },
      port: port(8080),
      health: "/readyz",
      stopGraceMs: 10_000,
      dependsOn: { redis: "healthy" },
    },
    {
      name: "console",
      kind: "service",
      command: ["node", "services/console/dist/main.js"],
      env: {
        // Redis for the fleet page and for actions, which go through BullMQ to the services that own them.
        ...queues,
        // Read-only connections (services/console/src/store.ts): the checkpointer stays the only writer.
        CONSOLE_DATABASE_URL: where.databaseUrl,
        HTTP_PORT: String(port(8084)),
        SHUTDOWN_TIMEOUT_MS: "5000",
        CONSOLE_PASSWORD: { default: DEVELOPMENT_CONSOLE_PASSWORD },
      },
      port: port(8084),
      health: "/readyz",
      stopGraceMs: 10_000,
      dependsOn: { redis: "healthy", postgres: "healthy", migrate: "completed" },
    },
  ];
}
