import { basicAuthPasswordSchema, basicAuthUserSchema, commonEnvSchema, envFlag, envInt, port } from "@savepoint/shared";
import { z } from "zod";

/**
 * The console's environment. Like Bull Board it has no default password: a console that starts is protected
 * (docker compose and `npm run stack` supply a development-only one, and publish the port on 127.0.0.1 only).
 * It reads sessions from Postgres, and queues (the fleet page) and actions from Redis (REDIS_URL or
 * REDIS_CLUSTER_NODES, QUEUE_PREFIX).
 */
export const consoleEnvSchema = commonEnvSchema.extend({
  HTTP_PORT: port().default(8084),
  CONSOLE_USER: basicAuthUserSchema.default("admin"),
  CONSOLE_PASSWORD: basicAuthPasswordSchema("the console", "the console's basic auth is all that guards every session's state"),
  /**
   * Where the console reads sessions and checkpoints. Every connection it opens is read-only
   * (`default_transaction_read_only`), whatever role the URL names; a role with SELECT only is safer still.
   */
  CONSOLE_DATABASE_URL: z
    .string()
    .refine((value) => {
      try {
        return ["postgres:", "postgresql:"].includes(new URL(value).protocol);
      } catch {
        return false;
      }
    }, "must be a postgres/postgresql URL such as postgres://postgres@127.0.0.1:5432/savepoint")
    .default("postgres://postgres@127.0.0.1:5432/savepoint"),
  /** Postgres connections the console holds at most. */
  CONSOLE_PG_POOL_SIZE: envInt(1, 64).default(4),
  /** A page's queries are cut off after this long, so a heavy one cannot hold the database. */
  CONSOLE_STATEMENT_TIMEOUT_MS: envInt(100, 600_000).default(10_000),
  /** Seconds between the live pages' checks for new checkpoints. */
  CONSOLE_REFRESH_SECONDS: envInt(1, 3_600).default(5),
  /** Read-only unless true: actions (fork, re-drive, stop) are refused. */
  CONSOLE_ACTIONS_ENABLED: envFlag().default(false),
  /** How long a stop waits for the trader to write its final checkpoint (a tick in progress finishes first). */
  CONSOLE_STOP_TIMEOUT_MS: envInt(1_000, 600_000).default(30_000),
});
export type ConsoleConfig = z.infer<typeof consoleEnvSchema>;
