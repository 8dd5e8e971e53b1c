import { existsSync, readFileSync } from "node:fs";
import { parseEnv } from "node:util";

/** The variables of an env file (KEY=value lines, the .env docker compose reads); none when there is no file. */
export function readEnvFile(path) {
  return existsSync(path) ? parseEnv(readFileSync(path, "utf8")) : {};
}
