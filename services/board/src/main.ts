import { catalogQueues, createRedisConnection, isCluster, redisTargetOf, runService } from "@savepoint/shared";
import { boardRoutes } from "./board-routes.js";
import { boardEnvSchema } from "./config.js";

await runService({
  name: "bull-board",
  envSchema: boardEnvSchema,
  routes: (config, { logger }) => boardRoutes(config, logger),
  start: async (config, { logger, httpPort = config.HTTP_PORT }) => {
    const target = redisTargetOf(config);
    const redis = createRedisConnection(target, "producer", "bull-board-readiness");
    // While Redis is down /readyz says so; the error events of reconnecting add nothing to that.
    redis.on("error", () => undefined);
    logger.info(
      { httpPort, queues: catalogQueues(config.QUEUE_PREFIX, isCluster(target)).map(({ name }) => name), queuePrefix: config.QUEUE_PREFIX, user: config.BULL_BOARD_USER, readOnly: config.BULL_BOARD_READ_ONLY },
      `Bull Board on http://127.0.0.1:${httpPort}/ (${config.BULL_BOARD_READ_ONLY ? "read-only" : "read-write"})`,
    );
    return {
      readiness: {
        redis: async () => {
          await redis.ping();
        },
      },
      close: async () => {
        redis.disconnect();
      },
    };
  },
});
