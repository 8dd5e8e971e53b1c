import { runService } from "@savepoint/shared";
import { startCheckpointer } from "./checkpointer.js";
import { checkpointerEnvSchema } from "./config.js";

await runService({
  name: "checkpointer",
  envSchema: checkpointerEnvSchema,
  start: (config, { logger, registry }) => startCheckpointer(config, logger, registry),
});
