import { commonEnvSchema, envFlag, port } from "@savepoint/shared";
import { z } from "zod";

/** Shortest BULL_BOARD_PASSWORD accepted (the development default `development-only-change-me` has 26). */
export const MIN_PASSWORD_LENGTH = 12;

/** Bull Board's environment. There is deliberately no default password: a board that starts is protected. */
export const boardEnvSchema = commonEnvSchema.extend({
  HTTP_PORT: port().default(8080),
  BULL_BOARD_USER: z
    .string()
    .regex(/^[^:\s]{1,64}$/, "must be 1-64 characters without ':' or spaces (HTTP basic auth user name)")
    .default("admin"),
  BULL_BOARD_PASSWORD: z
    .string({ error: "is required: Bull Board has no default password; set one (for docker compose, in .env)" })
    .min(
      MIN_PASSWORD_LENGTH,
      `must be at least ${MIN_PASSWORD_LENGTH} characters: the board's basic auth is all that guards the queues; choose a longer one`,
    ),
  /** Read-only shows queues and jobs but refuses every change (retry, remove, pause, add ...). */
  BULL_BOARD_READ_ONLY: envFlag().default(true),
});
export type BoardConfig = z.infer<typeof boardEnvSchema>;
