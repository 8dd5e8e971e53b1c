import { z } from "zod";
import { SESSION_ID_PATTERN, sessionStatusSchema } from "./snapshot.js";

/** A `stop` job on a trader's control queue (session-control.ts): stop this session gracefully. */
export const stopRequestSchema = z.strictObject({
  sessionId: z.string().regex(SESSION_ID_PATTERN, "must be 1-128 characters from A-Z, a-z, 0-9, '_', '.', '-'"),
  /** Who asked (the console's user, the CLI's), for the trader's log. */
  requestedBy: z.string().min(1).max(200),
  reason: z.string().max(500).optional(),
});
export type StopRequest = z.infer<typeof stopRequestSchema>;

export const stopResultSchema = z.strictObject({
  sessionId: z.string(),
  epoch: z.number().int().min(0),
  /** The status of the final checkpoint: `stopped` (not picked by --resume; --resume-session continues it). */
  status: sessionStatusSchema,
  /** Whether the final checkpoint was confirmed stored before the trader answered. */
  confirmed: z.boolean(),
});
export type StopResult = z.infer<typeof stopResultSchema>;
