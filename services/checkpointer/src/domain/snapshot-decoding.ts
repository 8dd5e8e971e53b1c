import { checkStateJson, describeIssues, jsonDepthExceeds, JobRejectedError, MAX_STATE_DEPTH, snapshotEnvelopeSchema } from "@savepoint/shared";
import type { PendingSnapshot } from "./snapshot-batch.js";

/**
 * The checkpointer stores states; it never needs to look inside one. So a snapshot job's JSON text is decoded
 * with its state left as text: parsing 8 KB into objects, and collecting them again, was the largest part of the
 * checkpointer's CPU. Postgres validates the state's text as it stores it.
 */
export const snapshotHeadSchema = snapshotEnvelopeSchema.omit({ state: true });

const STATE_MEMBER = ',"state":{';

/**
 * Splits an envelope's JSON text laid out as JSON.stringify lays out CheckpointClient's envelopes (no whitespace,
 * `state` an object and the last member) into its other members, parsed, and its state's text. Otherwise, or if
 * the text before the state does not parse, the answer is undefined.
 *
 * The first `,"state":{` is the top-level member whenever what precedes it parses as an object once closed:
 * inside a string the quote would be escaped, and any deeper member leaves a bracket open. If a member follows
 * the state (a repeated key, or one not in the envelope), the cut text reads `{...},"key":...`, which is not
 * JSON, so Postgres refuses it rather than storing something else.
 */
export function splitEnvelopeText(text: string): { head: Record<string, unknown>; stateJson: string } | undefined {
  const at = text.indexOf(STATE_MEMBER);
  if (at < 0 || !text.endsWith("}")) return undefined;
  let head: unknown;
  try {
    head = JSON.parse(`${text.slice(0, at)}}`);
  } catch {
    return undefined;
  }
  if (typeof head !== "object" || head === null || Array.isArray(head) || Object.hasOwn(head, "state")) return undefined;
  return { head: head as Record<string, unknown>, stateJson: text.slice(at + STATE_MEMBER.length - 1, -1) };
}

function rejectInvalid(message: string): never {
  throw new JobRejectedError("invalid", `invalid snapshot job: ${message}`);
}

/**
 * Decodes a `snapshot` job's data, the envelope's JSON text, into what the writer stores; fails with a
 * JobRejectedError naming the field. `parseState` decodes the state too, as the catalog's schema does: the
 * fallback for texts laid out otherwise, and the way to find the exact fault when Postgres refuses a cut state.
 */
export function decodeSnapshot(text: string, maxStateBytes: number, options: { parseState?: boolean } = {}): PendingSnapshot & { stateCut: boolean } {
  const split = options.parseState ? undefined : splitEnvelopeText(text);
  let snapshot: PendingSnapshot;
  if (split) {
    const head = snapshotHeadSchema.safeParse(split.head);
    if (!head.success) rejectInvalid(describeIssues(head.error));
    snapshot = { head: head.data, stateJson: split.stateJson };
  } else {
    // Parsing is safe at any depth, but serializing the state again is not: refuse what checkStateJson would.
    if (jsonDepthExceeds(text, MAX_STATE_DEPTH + 1)) {
      throw new JobRejectedError("too_deep", `invalid snapshot: state: nests objects and arrays more than ${MAX_STATE_DEPTH} levels deep, over the ${MAX_STATE_DEPTH}-level limit; flatten it`);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (error) {
      rejectInvalid(`(payload): not JSON: ${(error as Error).message}`);
    }
    const envelope = snapshotEnvelopeSchema.safeParse(data);
    if (!envelope.success) rejectInvalid(describeIssues(envelope.error));
    const { state, ...head } = envelope.data;
    snapshot = { head, stateJson: JSON.stringify(state) };
  }
  const checked = checkStateJson(snapshot.stateJson, maxStateBytes);
  if ("message" in checked) throw new JobRejectedError(checked.reason, `invalid snapshot: ${checked.field}: ${checked.message}`);
  return { ...snapshot, stateCut: split !== undefined };
}
