import { isDeepStrictEqual } from "node:util";
import {
  CheckpointTimeoutError,
  MAX_HISTORY_PAGE,
  SessionWriter,
  type CheckpointPort,
  type Logger,
  type SessionStatus,
  type StoredSnapshot,
  type ThinkResult,
} from "@savepoint/shared";
import type { ThoughtStep } from "../engine/thought-step.js";
import {
  REASONER_SERVICE,
  STATE_SCHEMA_VERSION,
  type CheckpointState,
  type DeadLetterCause,
  type ReasonerKind,
  type RunInfo,
} from "./checkpoint-state.js";

/** Stored now, already stored (the same epoch and seq), or queued without a confirmation in time. */
export type SaveOutcome = "stored" | "duplicate" | "unconfirmed";

export interface SessionCheckpointsOptions {
  sessionId: string;
  run: RunInfo;
  /** How long a confirmed save may take before the attempt goes on without the confirmation. */
  confirmTimeoutMs: number;
  logger: Logger;
  /** Observes how long each confirmed save took. */
  onSaved?: (kind: ReasonerKind, seconds: number) => void;
}

/**
 * One attempt's view of its reasoning session in the checkpointer. It writes under the attempt's epoch;
 * seq 0 is the claim marker, seq n the step of iteration n, and the interrupt or final snapshot the seq
 * after the last step. Everything goes through the checkpoint client: the reasoner never touches Postgres.
 */
export class SessionCheckpoints {
  private readonly epoch: number;
  private readonly writer: SessionWriter;

  constructor(
    private readonly client: CheckpointPort,
    private readonly options: SessionCheckpointsOptions,
  ) {
    this.epoch = options.run.attempt;
    this.writer = sessionWriter(client, { sessionId: options.sessionId, agentId: options.run.agentId, epoch: this.epoch, logger: options.logger });
  }

  /**
   * Marks the session as this attempt's, so older owners are fenced off before any work is done. A claim
   * already stored under this epoch means the job id was used before (it returns "duplicate").
   */
  claim(): Promise<SaveOutcome> {
    return this.save("event", 0, this.claimState());
  }

  private claimState(): CheckpointState<"event"> {
    return { event: "claimed", run: this.options.run };
  }

  /**
   * Every snapshot stored for the session before this attempt, newest first. `conflict` is set when this
   * attempt's epoch holds snapshots it did not write, or a later epoch exists: the job id was used before.
   */
  async history(): Promise<{ earlier: StoredSnapshot[]; conflict?: string }> {
    const all = await readHistory(this.client, this.options.sessionId);
    const foreign = all.find(
      (snapshot) => snapshot.epoch > this.epoch || (snapshot.epoch === this.epoch && !isDeepStrictEqual(snapshot.state, this.claimState())),
    );
    const earlier = all.filter((snapshot) => snapshot.epoch < this.epoch);
    return foreign ? { earlier, conflict: `snapshot ${foreign.epoch}:${foreign.seq} (${foreign.kind}) was not written by this attempt` } : { earlier };
  }

  async saveStep(chain: number, step: ThoughtStep, timeoutMs?: number): Promise<void> {
    await this.save("iteration", step.iteration, { chain, run: this.options.run, step }, timeoutMs);
  }

  /** Saved on shutdown: the run stopped before `atIteration`, which whoever resumes will do. */
  async saveInterrupt(chain: number, atIteration: number, reason: string, timeoutMs: number): Promise<void> {
    await this.save("interrupt", atIteration, { event: "interrupted", chain, run: this.options.run, atIteration, reason }, timeoutMs);
  }

  async saveCompleted(chain: number, result: ThinkResult): Promise<void> {
    await this.save("final", result.iterations + 1, { event: "completed", chain, run: this.options.run, result });
  }

  /**
   * The run failed for good (no attempts left, or refused) after `afterIteration` iterations: dead-lettered,
   * its checkpoints kept for a re-drive, which resumes from them.
   */
  async saveDeadLettered(afterIteration: number, cause: DeadLetterCause, reason: string): Promise<void> {
    await this.save("event", afterIteration + 1, deadLetterState(cause, reason, this.options.run), undefined, "interrupted");
  }

  /**
   * A confirmed save. A stale-epoch refusal means a newer attempt took over: SessionTakenOverError. No
   * confirmation in time is logged and tolerated: the snapshot stays queued and is persisted when the
   * checkpointer catches up; a later save (or the fencing of a later attempt) settles ownership.
   */
  private async save<K extends ReasonerKind>(
    kind: K,
    seq: number,
    state: CheckpointState<K>,
    timeoutMs = this.options.confirmTimeoutMs,
    status: SessionStatus = kind === "interrupt" ? "interrupted" : kind === "final" ? "completed" : "active",
  ): Promise<SaveOutcome> {
    const started = process.hrtime.bigint();
    try {
      const receipt = await this.writer.saveConfirmed({ kind, seq, status, state: state as Record<string, unknown> }, { timeoutMs });
      this.options.onSaved?.(kind, Number(process.hrtime.bigint() - started) / 1e9);
      return receipt.outcome;
    } catch (error) {
      if (error instanceof CheckpointTimeoutError) {
        this.options.logger.warn({ sessionId: this.options.sessionId, kind, seq, err: error }, "checkpoint not confirmed in time; going on");
        return "unconfirmed";
      }
      throw error;
    }
  }
}

function deadLetterState(cause: DeadLetterCause, reason: string, run: Pick<RunInfo, "attempt" | "worker">): CheckpointState<"event"> {
  return { event: "dead_lettered", cause, reason, attempt: run.attempt, worker: run.worker };
}

/** Every snapshot stored for a reasoning session, newest first, page by page through the checkpointer. */
export async function readHistory(client: CheckpointPort, sessionId: string): Promise<StoredSnapshot[]> {
  const all: StoredSnapshot[] = [];
  let before: { epoch: number; seq: number } | undefined;
  for (;;) {
    const page = await client.history({ service: REASONER_SERVICE, sessionId, limit: MAX_HISTORY_PAGE, ...(before ? { before } : {}) });
    all.push(...page);
    const last = page[page.length - 1];
    if (!last || page.length < MAX_HISTORY_PAGE) return all;
    before = { epoch: last.epoch, seq: last.seq };
  }
}

/** A writer for one attempt of a session: the attempt is the epoch, the agent the owner. */
function sessionWriter(client: CheckpointPort, attempt: { sessionId: string; agentId: string; epoch: number; logger: Logger }): SessionWriter {
  return new SessionWriter(client, {
    service: REASONER_SERVICE,
    sessionId: attempt.sessionId,
    ownerId: attempt.agentId,
    epoch: attempt.epoch,
    schemaVersion: STATE_SCHEMA_VERSION,
    logger: attempt.logger,
    describeTakeOver: ({ sessionId, epoch }) => `session ${sessionId} was taken over by a newer attempt than ${epoch}:`,
  });
}

/**
 * Dead-letters a run from an attempt that never claimed its session: one BullMQ failed before processing
 * because its worker crashed more often than REASONER_MAX_STALLED_COUNT, or a last attempt that could not read
 * the market. It is stored under that attempt's epoch (its own, which also fences off crashed owners should
 * one wake up), at the seq its claim would have taken.
 */
export async function saveUnclaimedDeadLetter(
  client: CheckpointPort,
  run: { sessionId: string; agentId: string; attempt: number; worker: string; cause: DeadLetterCause; reason: string; timeoutMs: number; logger: Logger },
): Promise<void> {
  const writer = sessionWriter(client, { sessionId: run.sessionId, agentId: run.agentId, epoch: run.attempt, logger: run.logger });
  await writer.saveConfirmed(
    { kind: "event", seq: 0, status: "interrupted", state: deadLetterState(run.cause, run.reason, run) as Record<string, unknown> },
    { timeoutMs: run.timeoutMs },
  );
}
