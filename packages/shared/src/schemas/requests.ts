import { z } from "zod";
import {
  serviceNameSchema,
  sessionIdSchema,
  sessionStatusSchema,
  storedSnapshotSchema,
  type SessionStatus,
} from "./snapshot.js";

const position = z.strictObject({
  epoch: z.number().int().min(0),
  seq: z.number().int().min(0),
});

/**
 * `latest`: the newest snapshot of one session (`{ service, sessionId }`), or of the most recently written
 * session of one owner (`{ service, ownerId, status? }`). One object rather than a union, so that a mistake
 * is reported against the field it is in.
 */
export const latestRequestSchema = z
  .strictObject({
    service: serviceNameSchema,
    sessionId: sessionIdSchema.optional(),
    ownerId: sessionIdSchema.optional(),
    status: z.union([sessionStatusSchema, z.array(sessionStatusSchema).min(1)]).optional(),
  })
  .transform((request, context): LatestQuery => {
    const { service, sessionId, ownerId, status } = request;
    if (sessionId !== undefined && ownerId === undefined && status === undefined) return { service, sessionId };
    if (ownerId !== undefined && sessionId === undefined) {
      return { service, ownerId, statuses: status === undefined ? undefined : [status].flat() };
    }
    context.addIssue(
      sessionId !== undefined && ownerId === undefined
        ? { code: "custom", path: ["status"], message: "filters an owner's sessions; use it with ownerId, not sessionId" }
        : { code: "custom", path: ["sessionId"], message: "give exactly one of sessionId or ownerId" },
    );
    return z.NEVER;
  });
/** What a caller sends: `{ service, sessionId }` or `{ service, ownerId, status? }`. */
export type LatestRequest = z.input<typeof latestRequestSchema>;
/** What the checkpointer acts on. */
export type LatestQuery =
  | { service: string; sessionId: string }
  | { service: string; ownerId: string; statuses: SessionStatus[] | undefined };
export const latestResultSchema = storedSnapshotSchema.nullable();

export const MAX_HISTORY_PAGE = 500;
/** `history`: a page of one session's snapshots, newest first; `before` is the last (epoch, seq) already seen. */
export const historyRequestSchema = z.strictObject({
  service: serviceNameSchema,
  sessionId: sessionIdSchema,
  limit: z.number().int().min(1).max(MAX_HISTORY_PAGE).default(20),
  before: position.optional(),
});
export type HistoryRequest = z.input<typeof historyRequestSchema>;
export const historyResultSchema = z.array(storedSnapshotSchema);

export const statsRequestSchema = z.strictObject({
  service: serviceNameSchema.optional(),
  sessionId: sessionIdSchema.optional(),
});
export type StatsRequest = z.infer<typeof statsRequestSchema>;
export const statsResultSchema = z.strictObject({
  totalCheckpoints: z.number().int(),
  sessions: z.number().int(),
  oldestAt: z.string().nullable(),
  newestAt: z.string().nullable(),
  bytes: z.number().int(),
});
export type CheckpointStats = z.infer<typeof statsResultSchema>;

/**
 * `cleanup`: keep the newest `keepCount` snapshots of each matching session; with `olderThanHours`, only
 * snapshots persisted longer ago than that are deleted. Fencing (the highest epoch seen) is kept either way.
 * With a sessionId it trims that session whatever its status; without one it trims finished sessions only
 * (an unfinished one may need all it has to resume). Without service and sessionId it reaches every
 * finished session, so `keepCount: 0` there (deleting all their snapshots) needs `allSessions: true`.
 */
export const cleanupRequestSchema = z
  .strictObject({
    keepCount: z.number().int().min(0),
    olderThanHours: z.number().positive().optional(),
    service: serviceNameSchema.optional(),
    sessionId: sessionIdSchema.optional(),
    allSessions: z.literal(true, "must be true when given").optional(),
  })
  .superRefine((request, context) => {
    const scoped = request.service !== undefined || request.sessionId !== undefined;
    if (request.allSessions && scoped) {
      context.addIssue({ code: "custom", path: ["allSessions"], message: "reaches every session; leave it out when giving service or sessionId" });
    } else if (!scoped && !request.allSessions && request.keepCount === 0) {
      context.addIssue({
        code: "custom",
        path: ["keepCount"],
        message:
          "0 without service or sessionId would delete every snapshot of every finished session; keep at least 1, name a service or sessionId, or add allSessions: true",
      });
    }
  });
export type CleanupRequest = z.infer<typeof cleanupRequestSchema>;
export const cleanupResultSchema = z.strictObject({ deleted: z.number().int() });
export type CleanupResult = z.infer<typeof cleanupResultSchema>;

/** `cleanup` on `checkpoint-maintenance`: retention for all sessions, plus expiry of finished sessions. */
export const maintenanceRequestSchema = z.strictObject({
  keepCount: z.number().int().min(1),
  olderThanHours: z.number().positive().optional(),
  finishedTtlHours: z.number().positive().optional(),
});
export type MaintenanceRequest = z.infer<typeof maintenanceRequestSchema>;
export const maintenanceResultSchema = z.strictObject({ deleted: z.number().int(), expired: z.number().int() });
export type MaintenanceResult = z.infer<typeof maintenanceResultSchema>;
