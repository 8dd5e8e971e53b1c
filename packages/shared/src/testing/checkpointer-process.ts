import { createRequire } from "node:module";
import { ServiceProcess } from "./service-process.js";
import type { TestEnvironment } from "./test-environment.js";

/**
 * The built checkpointer's entry point (`@savepoint/checkpointer`'s main), found the way Node finds the package;
 * when asked, not on import, so unit tests that import these helpers need no build.
 */
export const checkpointerMain = (): string => createRequire(import.meta.url).resolve("@savepoint/checkpointer");

/**
 * The real checkpointer as a child process on the test environment, resolved once it is consuming: every
 * service's tests persist through it, as in production. `overrides` are extra environment variables.
 */
export async function spawnCheckpointer(env: TestEnvironment, overrides: Record<string, string> = {}): Promise<ServiceProcess> {
  const service = ServiceProcess.start(checkpointerMain(), { ...env.env, HTTP_PORT: "0", ...overrides });
  await service.waitForLog("checkpointer consuming checkpoints, checkpoint-requests and checkpoint-maintenance");
  return service;
}
