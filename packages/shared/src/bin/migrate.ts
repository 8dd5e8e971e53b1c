#!/usr/bin/env node
import { ConfigError, databaseEnvSchema, parseEnv } from "../config.js";
import { migrate } from "../migrations.js";
import { redactUrl } from "../redaction.js";

const USAGE = "usage: migrate up | migrate down [count]   (DATABASE_URL selects the database)";

async function main(argv: string[]): Promise<void> {
  const [direction, countArg] = argv;
  if (direction !== "up" && direction !== "down") throw new ConfigError(USAGE);
  const count = countArg === undefined ? undefined : Number(countArg);
  if (count !== undefined && (!Number.isInteger(count) || count < 1)) {
    throw new ConfigError(`count must be a whole number ≥ 1, got "${countArg}"\n${USAGE}`);
  }
  const { DATABASE_URL } = parseEnv(databaseEnvSchema);
  const names = await migrate({ databaseUrl: DATABASE_URL, direction, count });
  const verb = direction === "up" ? "applied" : "reverted";
  console.log(
    names.length
      ? `${verb} ${names.length} migration(s) on ${redactUrl(DATABASE_URL)}: ${names.join(", ")}`
      : `nothing to ${direction === "up" ? "apply" : "revert"} on ${redactUrl(DATABASE_URL)}`,
  );
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : `migration failed: ${(error as Error).message}`);
  process.exit(1);
});
