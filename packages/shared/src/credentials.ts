import { createHash, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { Logger } from "./logger.js";

/**
 * Shortest password a web service behind basic auth accepts (Bull Board's BULL_BOARD_PASSWORD, the console's
 * CONSOLE_PASSWORD); the development default `development-only-change-me` has 26.
 */
export const MIN_PASSWORD_LENGTH = 12;

/** An HTTP basic-auth user name from the environment. */
export const basicAuthUserSchema = z
  .string()
  .regex(/^[^:\s]{1,64}$/, "must be 1-64 characters without ':' or spaces (HTTP basic auth user name)");

/**
 * A basic-auth password from the environment, with no default: a service that starts is protected.
 * `guards` says what the password alone protects, for the message about a short one.
 */
export const basicAuthPasswordSchema = (service: string, guards: string) =>
  z
    .string({ error: `is required: ${service} has no default password; set one (for docker compose, in .env)` })
    .min(MIN_PASSWORD_LENGTH, `must be at least ${MIN_PASSWORD_LENGTH} characters: ${guards}; choose a longer one`);

export interface Credentials {
  user: string;
  password: string;
}

const digest = (value: string) => createHash("sha256").update(value, "utf8").digest();

/**
 * A check of basic-auth credentials that takes the same time whatever is wrong with them: digests have a
 * fixed length, so neither the length nor a matching prefix of the real ones leaks through response timing.
 */
export function credentialsChecker(expected: Credentials): (given: Credentials) => boolean {
  const user = digest(expected.user);
  const password = digest(expected.password);
  return (given) => {
    const userMatches = timingSafeEqual(digest(given.user), user);
    const passwordMatches = timingSafeEqual(digest(given.password), password);
    return userMatches && passwordMatches;
  };
}

/**
 * The `validate` of @fastify/basic-auth for a web service behind one set of credentials (Bull Board, the
 * console): checks them with credentialsChecker, logs a refusal as "<service> login refused" with the user,
 * address and URL (never the password), and refuses with the error that makes the plugin answer 401.
 */
export function basicAuthValidator(expected: Credentials, logger: Logger, service: string) {
  const matches = credentialsChecker(expected);
  return async (user: string, password: string, request: { ip: string; url: string }): Promise<void> => {
    if (matches({ user, password })) return;
    logger.warn({ user, ip: request.ip, url: request.url }, `${service} login refused: wrong user name or password`);
    throw new Error("wrong user name or password");
  };
}
