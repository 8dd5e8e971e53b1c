import { isDeepStrictEqual } from "node:util";
import {
  CheckpointStaleEpochError,
  CheckpointTimeoutError,
  MAX_HISTORY_PAGE,
  type CheckpointClient,
  type Logger,
  type SessionStatus,
  type SnapshotKind,
  type StoredSnapshot,
  type ThinkResult,
} from "@savepoint/shared";
import type { ThoughtStep } from "../engine/thought-step.js";
import { REASONER_SERVICE, STATE_SCHEMA_VERSION, type CheckpointState, type ReasonerKind, type RunInfo } from "./checkpoint-state.js";

/** A newer attempt of the same run owns the session now; this one must stop without writing anything. */
export class SessionLostError extends Error {
  override name = "SessionLostError";
}

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

  constructor(
    private readonly client: CheckpointClient,
    private readonly options: SessionCheckpointsOptions,
  ) {
    this.epoch = options.run.attempt;
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
    const all: StoredSnapshot[] = [];
    let before: { epoch: number; seq: number } | undefined;
    for (;;) {
      const page = await this.client.history({
        service: REASONER_SERVICE,
        sessionId: this.options.sessionId,
        limit: MAX_HISTORY_PAGE,
        ...(before ? { before } : {}),
      });
      all.push(...page);
      const last = page[page.length - 1];
      if (!last || page.length < MAX_HISTORY_PAGE) break;
      before = { epoch: last.epoch, seq: last.seq };
    }
    const foreign = all.find(
      (snapshot) => snapshot.epoch > this.epoch || (snapshot.epoch === this.epoch && !isDeepStrictEqual(snapshot.state, this.claimState())),
    );
    const earlier = all.filter((snapshot) => snapshot.epoch < this.epoch);
    return foreign ? { earlier, conflict: `snapshot ${foreign.epoch}:${foreign.seq} (${foreign.kind}) was not written by this attempt` } : { earlier };
  }

  async saveStep(chain: number, step: ThoughtStep): Promise<void> {
    await this.save("iteration", step.iteration, { chain, run: this.options.run, step });
  }

  /** Saved on shutdown: the run stopped before `atIteration`, which whoever resumes will do. */
  async saveInterrupt(chain: number, atIteration: number, reason: string, timeoutMs: number): Promise<void> {
    await this.save("interrupt", atIteration, { event: "interrupted", chain, run: this.options.run, atIteration, reason }, timeoutMs);
  }

  async saveCompleted(chain: number, result: ThinkResult): Promise<void> {
    await this.save("final", result.iterations + 1, { event: "completed", chain, run: this.options.run, result });
  }

  /** The run failed for good (no attempts left, or refused); a later manual retry may still resume it. */
  async saveFailed(chain: number, afterIteration: number, error: string): Promise<void> {
    await this.save("final", afterIteration + 1, { event: "failed", chain, run: this.options.run, error }, undefined, "stopped");
  }

  /**
   * A confirmed save. A stale-epoch refusal means a newer attempt took over: SessionLostError. No
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
      const receipt = await this.client.saveAndConfirm(
        {
          v: 1,
          service: REASONER_SERVICE,
          sessionId: this.options.sessionId,
          ownerId: this.options.run.agentId,
          epoch: this.epoch,
          seq,
          kind: kind as SnapshotKind,
          status,
          schemaVersion: STATE_SCHEMA_VERSION,
          takenAt: new Date().toISOString(),
          state: state as Record<string, unknown>,
        },
        { timeoutMs },
      );
      this.options.onSaved?.(kind, Number(process.hrtime.bigint() - started) / 1e9);
      return receipt.outcome;
    } catch (error) {
      if (error instanceof CheckpointStaleEpochError) {
        throw new SessionLostError(`session ${this.options.sessionId} was taken over by a newer attempt than ${this.epoch}: ${error.message}`);
      }
      if (error instanceof CheckpointTimeoutError) {
        this.options.logger.warn({ sessionId: this.options.sessionId, kind, seq, err: error }, "checkpoint not confirmed in time; going on");
        return "unconfirmed";
      }
      throw error;
    }
  }
}
