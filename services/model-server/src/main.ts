import { runService } from "@savepoint/shared";
import { modelServerEnvSchema } from "./config.js";
import { createModelServer } from "./server.js";

// The model server answers on MODEL_SERVER_PORT only (its own /healthz there), so it takes no HTTP_PORT.
await runService({
  name: "model-server",
  envSchema: modelServerEnvSchema,
  start: async (config, { logger }) => {
    const server = createModelServer({
      latencyMs: config.MODEL_SERVER_LATENCY_MS,
      ...(config.MODEL_SERVER_API_KEY ? { apiKey: config.MODEL_SERVER_API_KEY } : {}),
    });
    const boundPort = await server.listen(config.MODEL_SERVER_PORT, config.MODEL_SERVER_HOST);
    logger.info(
      { port: boundPort, host: config.MODEL_SERVER_HOST, latencyMs: config.MODEL_SERVER_LATENCY_MS, keyRequired: Boolean(config.MODEL_SERVER_API_KEY) },
      "model server listening: POST /v1/messages, GET /v1/models",
    );
    return { readiness: {}, close: () => server.close() };
  },
});
