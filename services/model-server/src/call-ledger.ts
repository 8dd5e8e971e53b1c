/** Model calls of one session, as the local model server saw them. */
export interface SessionCalls {
  /** Requests received. */
  calls: number;
  /** Of those, asked for a streamed answer (`stream: true`). */
  streamed: number;
  /** Answered with a message. */
  answered: number;
  /** Abandoned by the client before the answer was out (an aborted or timed-out call). */
  aborted: number;
  /** Answered with an injected error. */
  failed: number;
  /** Answers per iteration (as the conversation numbered it). */
  answeredByIteration: Record<string, number>;
  /** Answers given for an iteration that had been answered before: work done twice. */
  repeated: number;
}

export type CallOutcome = "answered" | "aborted" | "failed";

const emptyCalls = (): SessionCalls => ({ calls: 0, streamed: 0, answered: 0, aborted: 0, failed: 0, answeredByIteration: {}, repeated: 0 });

/** Per-session call counts, for tests and benchmarks (the admin routes expose them). */
export class CallLedger {
  private readonly sessions = new Map<string, SessionCalls>();

  /** A call arrived (counted at once, so a call still in flight shows). */
  received(sessionId: string, streamed: boolean): void {
    const entry = this.sessions.get(sessionId) ?? emptyCalls();
    entry.calls += 1;
    if (streamed) entry.streamed += 1;
    this.sessions.set(sessionId, entry);
  }

  /** How a received call ended; `iteration` is the one the conversation was at. */
  settled(sessionId: string, iteration: number, outcome: CallOutcome): void {
    const entry = this.sessions.get(sessionId) ?? emptyCalls();
    entry[outcome] += 1;
    if (outcome === "answered") {
      const key = String(iteration);
      const before = entry.answeredByIteration[key] ?? 0;
      entry.answeredByIteration[key] = before + 1;
      if (before > 0) entry.repeated += 1;
    }
    this.sessions.set(sessionId, entry);
  }

  session(sessionId: string): SessionCalls {
    return structuredClone(this.sessions.get(sessionId) ?? emptyCalls());
  }

  all(): { sessions: Record<string, SessionCalls>; total: Omit<SessionCalls, "answeredByIteration"> } {
    const total = { calls: 0, streamed: 0, answered: 0, aborted: 0, failed: 0, repeated: 0 };
    for (const entry of this.sessions.values()) {
      for (const key of Object.keys(total) as Array<keyof typeof total>) total[key] += entry[key];
    }
    return { sessions: Object.fromEntries([...this.sessions].map(([id, entry]) => [id, structuredClone(entry)])), total };
  }

  reset(): void {
    this.sessions.clear();
  }
}
