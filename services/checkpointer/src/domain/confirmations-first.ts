export interface ConfirmationsFirstOptions {
  /** How long after the last confirmed save has settled the backlog keeps yielding. */
  quietMs: number;
  /** Confirmed saves have started flowing: the backlog should give way. */
  onYield: () => void;
  /** None in flight and none settled for `quietMs`: the backlog may take the machine again. */
  onRestore: () => void;
}

/**
 * Decides when a fire-and-forget backlog gives way to confirmed saves. A confirmed save waits for the CPU, the
 * event loop and Redis behind whatever the backlog has in hand, so while confirmed saves are in flight, or
 * settled within `quietMs` (the next one of a producer that confirms in a loop is usually on its way), the
 * backlog yields; once they go quiet it is restored, so alone it drains at full speed. One timer at a time,
 * re-armed only when it fires, so a stream of confirmations costs a counter and a clock read each.
 */
export class ConfirmationsFirst {
  private inFlight = 0;
  private lastSettledAt = 0;
  private yielding = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ConfirmationsFirstOptions) {}

  get isYielding(): boolean {
    return this.yielding;
  }

  /** A confirmed save has started. */
  begin(): void {
    this.inFlight += 1;
    if (this.yielding) return;
    this.yielding = true;
    this.options.onYield();
  }

  /** A confirmed save begun with `begin` has settled (answered or failed). */
  end(): void {
    this.inFlight -= 1;
    this.lastSettledAt = Date.now();
    if (this.inFlight === 0 && !this.timer) this.arm(this.options.quietMs);
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.check(), ms);
    // Only a pending restore: it must not keep a closing process alive.
    this.timer.unref();
  }

  private check(): void {
    this.timer = undefined;
    // In flight again: the last of those to settle arms the timer anew.
    if (this.inFlight > 0) return;
    const quietFor = Date.now() - this.lastSettledAt;
    if (quietFor < this.options.quietMs) return this.arm(this.options.quietMs - quietFor);
    this.yielding = false;
    this.options.onRestore();
  }
}
