import { CheckpointClientClosedError, CheckpointStaleEpochError, CheckpointTimeoutError } from "./checkpoint-client.js";
import type { CheckpointPort } from "./checkpoint-port.js";
import type { Logger } from "./logger.js";
import type { SessionStatus, SnapshotEnvelope, SnapshotKind, SnapshotReceipt } from "./schemas/snapshot.js";

/**
 * Resolves on a later turn of the event loop, after the I/O callbacks due: the work that follows (serializing,
 * checking and queuing a snapshot) runs while the caller waits for its own I/O, not before it can go on.
 */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Another owner holds the session now (a higher epoch was stored or claimed): this one must stop writing
 * and acting for it. The one error a service sees for being fenced off, whatever found out.
 */
export class SessionTakenOverError extends Error {
  override name = "SessionTakenOverError";
}

/** Whose snapshots a writer writes: one owner generation (epoch) of one session. */
export interface SessionWriterOptions {
  service: string;
  sessionId: string;
  /** Who the session belongs to (the broker account, the agent): "the owner's latest session" finds it. */
  ownerId: string;
  /** This owner's generation for the session; the checkpointer refuses snapshots from below the highest. */
  epoch: number;
  /** The version of the state's schema, stored with each snapshot so a reader can refuse what it cannot read. */
  schemaVersion: number;
  /** Where a background confirmation's failures are logged. */
  logger: Logger;
  /** The take-over error's message, in the service's terms; the checkpointer's refusal is appended to it. */
  describeTakeOver?: (writer: { service: string; sessionId: string; epoch: number }) => string;
  /**
   * Called once when a background confirmation finds the session taken over, unless a confirmed save has
   * already thrown it: the caller is not waiting on that save, so this is how it learns.
   */
  onTakenOver?: (error: SessionTakenOverError) => void;
  now?: () => Date;
}

/** One snapshot to write. `state` may be built from the snapshot's takenAt, so both carry the same instant. */
export interface SessionSnapshot {
  kind: SnapshotKind;
  status: SessionStatus;
  state: Record<string, unknown> | ((takenAt: Date) => Record<string, unknown>);
  /**
   * Where in the epoch it goes; the next free seq when omitted. A caller that numbers its snapshots by its
   * own progress (the reasoner: seq n is iteration n) passes it, and later defaults follow it.
   */
  seq?: number;
}

/**
 * Writes one owner's snapshots of a session through a `CheckpointPort`: builds each envelope, numbers it
 * within the epoch, and saves it either durably-queued (`save`: resolves once the port accepts it, confirmed
 * in the background), handed off (`handOff`: returns at once, sent and confirmed in the background) or
 * confirmed (`saveConfirmed`: resolves once committed). The port sees them in the order they were made. A stale-epoch refusal from
 * either becomes one `SessionTakenOverError`, kept: every save after it throws it without writing.
 */
export class SessionWriter {
  private nextSeq = 0;
  private readonly confirmations = new Set<Promise<void>>();
  /** Settles once every snapshot sent so far is accepted by the port or failed: the next one is sent after it. */
  private sending: Promise<void> = Promise.resolve();
  private lost: SessionTakenOverError | undefined;
  private readonly now: () => Date;

  constructor(
    private readonly port: CheckpointPort,
    private readonly options: SessionWriterOptions,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  get sessionId(): string {
    return this.options.sessionId;
  }

  get epoch(): number {
    return this.options.epoch;
  }

  /** The take-over found so far, if any. */
  get takenOver(): SessionTakenOverError | undefined {
    return this.lost;
  }

  /**
   * Saves a snapshot and resolves as soon as the port has accepted it (for the checkpoint client: durable
   * in Redis); its confirmation runs in the background (see `settle`). A failure before acceptance throws.
   */
  async save(snapshot: SessionSnapshot): Promise<SnapshotEnvelope> {
    const { envelope, accepted } = this.send(snapshot, false);
    await accepted;
    return envelope;
  }

  /**
   * Takes the snapshot now (its state built now, so it must not share objects the caller changes later) and
   * returns at once: it is sent to the port after the snapshots handed off before it, on a later turn of the
   * event loop, and confirmed in the background. For a loop that must not wait for Redis: a failure to send
   * is logged as a warning (the next snapshot carries the same state), a take-over found later reaches
   * `onTakenOver`; `accepted` resolves once every snapshot handed off so far is accepted or has failed.
   */
  handOff(snapshot: SessionSnapshot): SnapshotEnvelope {
    const { envelope, accepted } = this.send(snapshot, true);
    accepted.catch((error: unknown) => {
      if (error instanceof SessionTakenOverError) return;
      const at = { sessionId: envelope.sessionId, epoch: envelope.epoch, seq: envelope.seq, kind: envelope.kind };
      this.options.logger.warn({ ...at, problem: (error as Error).message }, "checkpoint could not be queued; the next one will carry the same state");
    });
    return envelope;
  }

  /** Resolves once every snapshot saved or handed off so far has been accepted by the port, or has failed. */
  accepted(): Promise<void> {
    return this.sending;
  }

  /** Saves a snapshot and resolves once it is committed; throws `SessionTakenOverError` if refused as stale. */
  async saveConfirmed(snapshot: SessionSnapshot, options: { timeoutMs?: number } = {}): Promise<SnapshotReceipt> {
    this.throwIfTakenOver();
    const envelope = this.envelope(snapshot);
    // After the snapshots handed off before it, so the port sees them in order.
    await this.sending;
    try {
      return await this.port.saveAndConfirm(envelope, { timeoutMs: options.timeoutMs });
    } catch (error) {
      throw this.asTakeOver(error) ?? error;
    }
  }

  /** Waits for the background confirmations in flight. */
  async settle(): Promise<void> {
    await this.sending;
    await Promise.all([...this.confirmations]);
  }

  /**
   * Builds the envelope now and sends it once the snapshots before it are accepted (`later`: not before the
   * next turn of the event loop): `accepted` settles when the port has it (or refused it before accepting),
   * while its confirmation goes on in the background.
   */
  private send(snapshot: SessionSnapshot, later: boolean): { envelope: SnapshotEnvelope; accepted: Promise<void> } {
    this.throwIfTakenOver();
    const envelope = this.envelope(snapshot);
    const accepted = (later ? this.sending.then(nextTurn) : this.sending).then(() => this.sendNow(envelope));
    this.sending = accepted.catch(() => undefined);
    return { envelope, accepted };
  }

  private sendNow(envelope: SnapshotEnvelope): Promise<void> {
    this.throwIfTakenOver();
    return new Promise<void>((accepted, failed) => {
      let queued = false;
      const confirmation = this.port
        .saveAndConfirm(envelope, {
          onQueued: () => {
            queued = true;
            accepted();
          },
        })
        .then(
          () => undefined,
          (error: unknown) => (queued ? this.backgroundFailure(error, envelope) : failed(this.asTakeOver(error) ?? error)),
        );
      this.confirmations.add(confirmation);
      void confirmation.finally(() => this.confirmations.delete(confirmation));
    });
  }

  private envelope(snapshot: SessionSnapshot): SnapshotEnvelope {
    const takenAt = this.now();
    const seq = snapshot.seq ?? this.nextSeq;
    this.nextSeq = Math.max(this.nextSeq, seq + 1);
    return {
      v: 1,
      service: this.options.service,
      sessionId: this.options.sessionId,
      ownerId: this.options.ownerId,
      epoch: this.options.epoch,
      seq,
      kind: snapshot.kind,
      status: snapshot.status,
      schemaVersion: this.options.schemaVersion,
      takenAt: takenAt.toISOString(),
      state: typeof snapshot.state === "function" ? snapshot.state(takenAt) : snapshot.state,
    };
  }

  private backgroundFailure(error: unknown, envelope: SnapshotEnvelope): void {
    const first = this.lost === undefined;
    const takeOver = this.asTakeOver(error);
    if (takeOver) {
      if (first) this.options.onTakenOver?.(takeOver);
      return;
    }
    const at = { sessionId: envelope.sessionId, epoch: envelope.epoch, seq: envelope.seq, kind: envelope.kind };
    // No answer in time, or the client closed (the service shutting down) before one came: either way the
    // snapshot is queued in Redis, and only the wait for its answer ended.
    if (error instanceof CheckpointTimeoutError || error instanceof CheckpointClientClosedError) {
      this.options.logger.warn({ ...at, problem: error.message }, "checkpoint not confirmed yet; it stays queued in Redis and is stored once the checkpointer catches up");
    } else {
      this.options.logger.error({ ...at, err: error }, "checkpoint refused by the checkpointer");
    }
  }

  private asTakeOver(error: unknown): SessionTakenOverError | undefined {
    if (!(error instanceof CheckpointStaleEpochError)) return undefined;
    const { service, sessionId, epoch } = this.options;
    const description =
      this.options.describeTakeOver?.({ service, sessionId, epoch }) ??
      `session ${sessionId} of ${service} was taken over by an owner with a higher epoch than ${epoch}; this one stops writing.`;
    this.lost ??= new SessionTakenOverError(`${description} ${error.message}`, { cause: error });
    return this.lost;
  }

  private throwIfTakenOver(): void {
    if (this.lost) throw this.lost;
  }
}
