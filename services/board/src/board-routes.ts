import { createBullBoard } from "@bull-board/api";
import { FastifyAdapter } from "@bull-board/fastify";
import basicAuth from "@fastify/basic-auth";
import { basicAuthValidator, catalogQueues, createRedisConnection, isCluster, redisTargetOf, type Logger } from "@savepoint/shared";
import { Queue } from "bullmq";
import type { FastifyPluginAsync } from "fastify";
import type { BoardConfig } from "./config.js";
import { TolerantBullMQAdapter } from "./tolerant-adapter.js";

export const BOARD_REALM = "Savepoint Bull Board";

/**
 * Bull Board over every queue of the job catalog (`catalogQueues`: on a cluster each snapshot shard under its
 * own hash tag), behind HTTP basic auth, read-only unless configured otherwise. Registered as its own Fastify
 * scope, so /healthz, /readyz and /metrics beside it stay open.
 */
export function boardRoutes(config: BoardConfig, logger: Logger): FastifyPluginAsync {
  return async (app) => {
    const target = redisTargetOf(config);
    const connection = createRedisConnection(target, "producer", "bull-board");
    connection.on("error", (error) => logger.warn({ problem: error.message }, "Redis connection error; the board shows errors until it answers"));
    const queues = catalogQueues(config.QUEUE_PREFIX, isCluster(target)).map(({ name, prefix }) => new Queue(name, { connection, prefix }));
    // The connection's own listener reports the problem once; the queues repeat it for each of them.
    for (const queue of queues) queue.on("error", () => undefined);
    app.addHook("onClose", async () => {
      await Promise.all(queues.map((queue) => queue.close()));
      connection.disconnect();
    });

    await app.register(basicAuth, {
      authenticate: { realm: BOARD_REALM },
      validate: basicAuthValidator({ user: config.BULL_BOARD_USER, password: config.BULL_BOARD_PASSWORD }, logger, "Bull Board"),
    });
    app.addHook("onRequest", app.basicAuth);

    const serverAdapter = new FastifyAdapter();
    createBullBoard({
      queues: queues.map((queue) => new TolerantBullMQAdapter(queue, { readOnlyMode: config.BULL_BOARD_READ_ONLY })),
      serverAdapter,
      options: { uiConfig: { boardTitle: "Savepoint" } },
    });
    await app.register(serverAdapter.registerPlugin());
  };
}
