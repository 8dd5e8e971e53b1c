import { serviceNameSchema, sessionIdSchema, sessionStatusSchema } from "@savepoint/shared";
import { z } from "zod";
import type { ActionRefusal } from "./actions.js";

/** Most sessions one page lists. */
export const MAX_SESSIONS_PAGE = 500;
/** Most checkpoints one timeline page holds. */
export const MAX_TIMELINE_PAGE = 10_000;
/** Most snapshots a trading or reasoning view reads (an 8-hour session checkpointing every second has 28,800). */
export const MAX_VIEW_SNAPSHOTS = 50_000;

const limit = (max: number, fallback: number) =>
  z.coerce.number({ error: "must be a number" }).int("must be a whole number").min(1, "must be at least 1").max(max, `must be at most ${max}`).default(fallback);

// An empty form field (?owner=) means "any", as an unset one does.
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((value) => (value === "" ? undefined : value), schema.optional());

export const sessionsQuerySchema = z.strictObject({
  service: optional(serviceNameSchema),
  status: optional(sessionStatusSchema),
  owner: optional(sessionIdSchema),
  after: optional(z.string().regex(/^\d{1,19}$/, "must be the cursor of the previous page (a whole number)")),
  limit: limit(MAX_SESSIONS_PAGE, 50),
});
export type SessionsQuery = z.infer<typeof sessionsQuerySchema>;

export const sessionParamsSchema = z.strictObject({ service: serviceNameSchema, sessionId: sessionIdSchema });
export const sessionIdParamsSchema = z.strictObject({ sessionId: sessionIdSchema });

export const timelineQuerySchema = z.strictObject({
  after: optional(
    z
      .string()
      .regex(/^\d{1,16}\.\d{1,16}$/, "must be a checkpoint position epoch.seq, such as 2.41")
      .transform((value) => {
        const [epoch, seq] = value.split(".").map(Number) as [number, number];
        return { epoch, seq };
      }),
  ),
  limit: limit(MAX_TIMELINE_PAGE, 2_000),
});

export const viewQuerySchema = z.strictObject({ limit: limit(MAX_VIEW_SNAPSHOTS, 20_000) });

/** A refusal of a request, as its JSON body says it: a code to act on and a message naming the input. */
export interface ApiError {
  error: { code: "invalid_request" | "not_found" | ActionRefusal | "internal"; message: string };
}

/** One line naming each bad parameter and what it must be. */
export const describeProblems = (error: z.ZodError) =>
  error.issues.map((issue) => `${issue.path.join(".") || "(parameters)"}: ${issue.message}`).join("; ");
