import { CheckpointTimeoutError, CheckpointUnavailableError, type CheckpointClient, type SnapshotEnvelope, type SnapshotReceipt } from "@savepoint/shared";
import type { ServiceProcess, TestEnvironment } from "@savepoint/shared/testing";
import { snapshot } from "./support.js";

/**
 * A producer that keeps saving: one snapshot per session every `everyMs`, seq counting up from 1, each
 * either fire-and-forget or confirmed. It remembers everything it sent and what every confirmation said.
 */
export class SnapshotStream {
  readonly sent: SnapshotEnvelope[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly outcomes: Array<Promise<SnapshotReceipt | Error>> = [];
  private readonly sendErrors: Error[] = [];
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;

  constructor(
    private readonly client: CheckpointClient,
    private readonly options: { sessions: string[]; everyMs: number; confirm: boolean },
  ) {}

  start(): this {
    this.timer = setInterval(() => this.tick(), this.options.everyMs);
    return this;
  }

  /** Stops producing; resolves once every snapshot sent is in Redis. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.inFlight);
    if (this.sendErrors.length) throw new AggregateError(this.sendErrors, `${this.sendErrors.length} snapshots could not be queued`);
  }

  /** What each confirmation ended with (a receipt, or the error it failed with), once all have settled. */
  confirmations(): Promise<Array<SnapshotReceipt | Error>> {
    return Promise.all(this.outcomes);
  }

  private tick(): void {
    this.seq += 1;
    for (const sessionId of this.options.sessions) {
      const envelope = snapshot({ sessionId, seq: this.seq, state: { sessionId, seq: this.seq } });
      this.sent.push(envelope);
      if (this.options.confirm) {
        const outcome = this.client.saveAndConfirm(envelope).catch((error: Error) => error);
        this.outcomes.push(outcome);
        this.track(outcome);
      } else {
        this.track(this.client.save(envelope).catch((error: Error) => void this.sendErrors.push(error)));
      }
    }
  }

  private track(promise: Promise<unknown>): void {
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise));
  }
}

/** `service/session/epoch/seq` of each snapshot, sorted. */
export const keysOf = (snapshots: SnapshotEnvelope[]): string[] =>
  snapshots.map((s) => `${s.service}/${s.sessionId}/${s.epoch}/${s.seq}`).sort();

/** Every row of the checkpoints table as `service/session/epoch/seq`, sorted, read directly from Postgres. */
export async function storedKeys(env: TestEnvironment): Promise<string[]> {
  const { rows } = await env.query<{ key: string }>(
    "SELECT service || '/' || session_id || '/' || epoch || '/' || seq AS key FROM checkpoints",
  );
  return rows.map((row) => row.key).sort();
}

export async function countStored(env: TestEnvironment): Promise<number> {
  const { rows } = await env.query<{ n: number }>("SELECT count(*)::int AS n FROM checkpoints");
  return rows[0]!.n;
}

/** The base URL of a spawned service's ops server (/readyz, /metrics), from its start-up log line. */
export async function opsUrl(service: ServiceProcess): Promise<string> {
  const line = await service.waitForLog((logLine) => typeof logLine.httpPort === "number");
  return `http://127.0.0.1:${String(line.httpPort)}`;
}

export async function readiness(baseUrl: string): Promise<{ status: number; body: { status: string; checks: Record<string, string> } }> {
  const response = await fetch(`${baseUrl}/readyz`);
  return { status: response.status, body: (await response.json()) as { status: string; checks: Record<string, string> } };
}

/** The sum over all label sets of a metric on the service's /metrics. */
export async function metricValue(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

/**
 * Saves `envelope` until a save is confirmed: the first tries after Redis comes back may come before every
 * connection is back (the client has no event for that), so a try that timed out or found Redis unreachable
 * waits `retryMs` before the next, for up to `withinMs`; any other failure is the test's.
 */
export async function confirmEventually(
  client: CheckpointClient,
  envelope: SnapshotEnvelope,
  { withinMs, retryMs }: { withinMs: number; retryMs: number },
): Promise<SnapshotReceipt> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await client.saveAndConfirm(envelope);
    } catch (error) {
      if (Date.now() > deadline || !(error instanceof CheckpointTimeoutError || error instanceof CheckpointUnavailableError)) throw error;
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }
}
