import { setPriority } from "node:os";
import { runService } from "@savepoint/shared";
import { startCheckpointer } from "./checkpointer.js";
import { checkpointerEnvSchema } from "./config.js";

await runService({
  name: "checkpointer",
  envSchema: checkpointerEnvSchema,
  start: (config, { logger, registry, signal }) => {
    // Here, not in startCheckpointer: a checkpointer started inside another process (the tests') must not renice it.
    if (config.PROCESS_NICENESS > 0) {
      setPriority(config.PROCESS_NICENESS);
      logger.info({ niceness: config.PROCESS_NICENESS }, `running at nice ${config.PROCESS_NICENESS}`);
    }
    return startCheckpointer(config, logger, registry, signal);
  },
});
