import { existsSync, readFileSync } from "node:fs";
import { parseEnv } from "node:util";

/** The variables of an env file (KEY=value lines, the .env docker compose reads); none when there is no file. */
export function readEnvFile(path) {
  return existsSync(path) ? parseEnv(readFileSync(path, "utf8")) : {};
}

/**
 * A definition value (`"fixed"` or `{ default, follows? }`) as it applies given the user's environment: the
 * user's own setting of `name`, else of the variable it `follows` (the console's CONSOLE_DATABASE_URL follows
 * DATABASE_URL, so both point at the user's database), else the default; empty counts as unset.
 */
export function resolveValue(value, userEnv, name) {
  if (typeof value === "string") return value;
  const given = [name, value.follows].map((variable) => variable && userEnv[variable]).find((setting) => setting !== undefined && setting !== "");
  return given ?? value.default;
}

/**
 * The environment a service process starts with: the user's (the env file, overridden by the process
 * environment, as docker compose does), with the service's fixed values on top and its defaults filling
 * what the user left unset.
 */
export function serviceEnvironment(service, userEnv) {
  const env = { ...userEnv };
  for (const [name, value] of Object.entries(service.env ?? {})) env[name] = resolveValue(value, userEnv, name);
  return env;
}
