import { runService } from "@savepoint/shared";
import { startCheckpointer } from "./checkpointer.js";
import { checkpointerEnvSchema } from "./config.js";

await runService({
  name: "checkpointer",
  envSchema: checkpointerEnvSchema,
  start: (config, { logger, registry, signal }) => startCheckpointer(config, logger, registry, signal),
});
