import { z } from "zod";

export const SERVICE_NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;
/** The default limit on a snapshot's serialized `state`; the checkpointer's MAX_STATE_BYTES overrides it. */
export const DEFAULT_MAX_STATE_BYTES = 1024 * 1024;

export const SNAPSHOT_KINDS = ["periodic", "event", "iteration", "shutdown", "interrupt", "final"] as const;
export const SESSION_STATUSES = ["active", "interrupted", "completed", "stopped"] as const;

export const serviceNameSchema = z
  .string()
  .regex(SERVICE_NAME_PATTERN, "must be a lower-case letter followed by up to 31 of a-z, 0-9 or '-'");
export const sessionIdSchema = z
  .string()
  .regex(SESSION_ID_PATTERN, "must be 1-128 characters from A-Z, a-z, 0-9, '_', '.', '-'");
const counter = z.number().int("must be an integer").min(0, "must be ≥ 0").max(Number.MAX_SAFE_INTEGER);
// Bounds of the columns these are stored in; past them Postgres would refuse the row without naming the field.
const PG_INTEGER_MAX = 2_147_483_647;
const schemaVersion = z.number().int("must be an integer").min(0, "must be ≥ 0").max(PG_INTEGER_MAX, `must be ≤ ${PG_INTEGER_MAX}`);
const takenAt = z.iso
  .datetime({ offset: true, error: "must be an ISO-8601 timestamp such as 2026-01-31T12:00:00.000Z" })
  .refine((value) => !value.startsWith("0000-"), "must be in year 0001 or later (there is no year 0000)")
  .refine((value) => new Date(value).getUTCFullYear() <= 9999, "must be before year 10000 in UTC");

export const snapshotKindSchema = z.enum(SNAPSHOT_KINDS);
export const sessionStatusSchema = z.enum(SESSION_STATUSES);

/** Data of a `snapshot` job on the `checkpoints` queue (docs/architecture.md, "Snapshot envelope"). */
export const snapshotEnvelopeSchema = z.strictObject({
  v: z.literal(1, "must be 1 (the only envelope version)"),
  service: serviceNameSchema,
  sessionId: sessionIdSchema,
  ownerId: sessionIdSchema.optional(),
  epoch: counter,
  seq: counter,
  kind: snapshotKindSchema,
  status: sessionStatusSchema,
  schemaVersion,
  takenAt,
  state: z.record(z.string(), z.unknown(), "must be a JSON object"),
});
export type SnapshotEnvelope = z.infer<typeof snapshotEnvelopeSchema>;
export type SnapshotKind = z.infer<typeof snapshotKindSchema>;
export type SessionStatus = z.infer<typeof sessionStatusSchema>;

/** A snapshot as the checkpointer stored it. */
export const storedSnapshotSchema = snapshotEnvelopeSchema.extend({
  persistedAt: z.iso.datetime({ offset: true }),
});
export type StoredSnapshot = z.infer<typeof storedSnapshotSchema>;

/** Result of a `snapshot` job: stored now, or already stored by an earlier delivery. */
export const snapshotReceiptSchema = z.strictObject({
  outcome: z.enum(["stored", "duplicate"]),
});
export type SnapshotReceipt = z.infer<typeof snapshotReceiptSchema>;

// JSON.stringify escapes NUL and lone surrogates; Postgres jsonb refuses both, so they are caught up front.
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/**
 * How deep a state may nest objects and arrays; the state object itself is level 1. Real states nest a
 * handful of levels. Far deeper ones exhaust a stack somewhere on the way (JSON.stringify throws a RangeError
 * at a few thousand levels, Postgres' JSON check fails with "stack depth limit exceeded" at tens of
 * thousands), so they are refused up front, by the client before sending and by the checkpointer on receipt.
 */
export const MAX_STATE_DEPTH = 100;

export type StateProblem = { field: "state"; reason: "too_large" | "too_deep" | "unstorable"; message: string };

const tooDeep = (detail: string): StateProblem => ({
  field: "state",
  reason: "too_deep",
  message: `state ${detail}, over the ${MAX_STATE_DEPTH}-level limit on nested objects and arrays; flatten it`,
});

/** Serializes `state` and checks that Postgres can store it within `maxBytes`. */
export function serializeState(
  state: Record<string, unknown>,
  maxBytes: number,
): { json: string; bytes: number } | StateProblem {
  let json: string;
  try {
    json = JSON.stringify(state);
  } catch (error) {
    const message = (error as Error).message;
    if (error instanceof RangeError && /call stack/i.test(message)) return tooDeep("is nested too deeply to serialize");
    if (error instanceof RangeError) return { field: "state", reason: "too_large", message: `state is too large to serialize (${message})` };
    return { field: "state", reason: "unstorable", message: `state cannot be serialized as JSON: ${message}` };
  }
  const checked = checkStateJson(json, maxBytes);
  return "message" in checked ? checked : { json, bytes: checked.bytes };
}

/**
 * Checks that a state's JSON text fits in `maxBytes`, nests at most MAX_STATE_DEPTH levels and holds nothing
 * Postgres refuses to store. It reads the text, never parses it.
 */
export function checkStateJson(json: string, maxBytes: number): { bytes: number } | StateProblem {
  const bytes = Buffer.byteLength(json, "utf8");
  if (bytes > maxBytes) {
    return {
      field: "state",
      reason: "too_large",
      message: `state is ${bytes} bytes serialized, over the ${maxBytes}-byte limit; store large blobs elsewhere and keep a reference in state`,
    };
  }
  if (jsonDepthExceeds(json, MAX_STATE_DEPTH)) return tooDeep(`nests objects and arrays more than ${MAX_STATE_DEPTH} levels deep`);
  // Almost no state has a \u escape at all; the regex only runs on those that do.
  const unstorable = json.includes("\\u") ? UNSTORABLE_ESCAPE.exec(json) : null;
  if (unstorable) {
    return {
      field: "state",
      reason: "unstorable",
      message: `state contains ${unstorable[0].slice(-6)} (a NUL character or a lone UTF-16 surrogate), which Postgres cannot store in JSON; remove or encode it`,
    };
  }
  return { bytes };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/**
 * Whether JSON text nests objects and arrays deeper than `limit`, by counting brackets outside strings; no
 * parsing. A text with at most `limit` brackets in all cannot be deeper, which most states show after a few
 * native searches. Malformed text is not judged here (Postgres refuses it as it stores it).
 */
export function jsonDepthExceeds(json: string, limit: number): boolean {
  let brackets = 0;
  for (const opener of ["{", "["]) {
    for (let at = json.indexOf(opener); at >= 0 && brackets <= limit; at = json.indexOf(opener, at + 1)) brackets += 1;
  }
  if (brackets <= limit) return false;
  let depth = 0;
  for (let at = 0; at < json.length; at++) {
    const code = json.charCodeAt(at);
    if (code === QUOTE) {
      at = closingQuote(json, at);
      if (at < 0) return false;
    } else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
      depth -= 1;
    }
  }
  return false;
}

/** The index of the quote closing the string opened at `open`, or -1. */
function closingQuote(json: string, open: number): number {
  for (let at = json.indexOf('"', open + 1); at >= 0; at = json.indexOf('"', at + 1)) {
    let backslashes = 0;
    while (json.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes += 1;
    if (backslashes % 2 === 0) return at;
  }
  return -1;
}

/** BullMQ job id of a snapshot: stable, so a producer's retry of the same snapshot is one job. */
export function snapshotJobId(envelope: Pick<SnapshotEnvelope, "service" | "sessionId" | "epoch" | "seq">): string {
  return `${envelope.service}.${envelope.sessionId}.${envelope.epoch}.${envelope.seq}`;
}
