import { basicAuthPasswordSchema, basicAuthUserSchema, commonEnvSchema, envFlag, port } from "@savepoint/shared";
import type { z } from "zod";

/** Bull Board's environment. There is deliberately no default password: a board that starts is protected. */
export const boardEnvSchema = commonEnvSchema.extend({
  HTTP_PORT: port().default(8080),
  BULL_BOARD_USER: basicAuthUserSchema.default("admin"),
  BULL_BOARD_PASSWORD: basicAuthPasswordSchema("Bull Board", "the board's basic auth is all that guards the queues"),
  /** Read-only shows queues and jobs but refuses every change (retry, remove, pause, add ...). */
  BULL_BOARD_READ_ONLY: envFlag().default(true),
});
export type BoardConfig = z.infer<typeof boardEnvSchema>;
