import { runService } from "@savepoint/shared";
import { reasonerEnvSchema } from "./config.js";
import { startReasoner } from "./reasoner.js";

await runService({
  name: "reasoner",
  envSchema: reasonerEnvSchema,
  start: (config, { logger, registry }) => startReasoner(config, logger, registry),
});
