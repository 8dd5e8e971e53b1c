import { seededRandom, type SnapshotEnvelope } from "@savepoint/shared";

const SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "NFLX", "ORCL", "INTC", "CRM"];
const WORDS = [
  "momentum", "faded", "after", "the", "open", "volume", "above", "average", "stop", "raised", "to", "breakeven",
  "earnings", "next", "week", "spread", "widened", "trimmed", "position", "into", "strength", "waiting", "for",
  "pullback", "support", "held", "resistance", "near", "prior", "high", "sector", "rotation", "risk", "off",
];

const price = (next: () => number) => Math.round((20 + next() * 600) * 100) / 100;

function prose(next: () => number, length: number): string {
  let text = "";
  while (text.length < length) text += `${WORDS[Math.floor(next() * WORDS.length)]} `;
  return text.slice(0, length);
}

/**
 * A trader-like state whose JSON is exactly `bytes` long, different for every `n`. Positions and notes
 * compress about as well as real states do, unlike random bytes (which do not) or padding (which vanishes).
 */
export function benchState(bytes: number, n: number): Record<string, unknown> {
  // Seeded: every run stores the same states.
  const next = seededRandom(n + 1);
  const positions: Array<Record<string, unknown>> = [];
  const state = {
    account: { portfolioValue: price(next) * 1000, buyingPower: price(next) * 500, cash: price(next) * 300 },
    strategy: { stopLossPct: 2, takeProfitPct: 5, positionSizePct: 10 },
    closedTrades: n,
    realizedPnl: Math.round((next() - 0.5) * 1e6) / 100,
    positions,
    notes: "",
  };
  let length = JSON.stringify(state).length;
  for (let index = 0; ; index++) {
    const entry = price(next);
    const position = {
      symbol: SYMBOLS[index % SYMBOLS.length],
      qty: 1 + Math.floor(next() * 500),
      side: next() < 0.7 ? "long" : "short",
      entryPrice: entry,
      stopLoss: Math.round(entry * 98) / 100,
      takeProfit: Math.round(entry * 105) / 100,
      orderIds: [`ord-${n}-${index}-${Math.floor(next() * 1e9)}`, `ord-${n}-${index}-${Math.floor(next() * 1e9)}`],
    };
    const added = JSON.stringify(position).length + (positions.length > 0 ? 1 : 0);
    if (length + added > bytes) break;
    positions.push(position);
    length += added;
  }
  state.notes = prose(next, bytes - length);
  return state;
}

/**
 * Distinct states a factory cycles through. Building one costs about as much as sending it, so reusing them
 * keeps the producer's work out of the figures; nothing downstream looks for repeated contents.
 */
const DISTINCT_STATES = 256;

/** Valid snapshots for the benchmark: seq increases per session, every state is `stateBytes` of JSON. */
export class SnapshotFactory {
  private made = 0;
  private readonly seqs = new Map<string, number>();
  private readonly states: Array<Record<string, unknown>> = [];

  constructor(
    private readonly stateBytes: number,
    readonly service = "bench",
  ) {}

  next(sessionId: string): SnapshotEnvelope {
    const seq = (this.seqs.get(sessionId) ?? 0) + 1;
    this.seqs.set(sessionId, seq);
    const slot = this.made % DISTINCT_STATES;
    this.made += 1;
    const state = (this.states[slot] ??= benchState(this.stateBytes, slot));
    return {
      v: 1,
      service: this.service,
      sessionId,
      epoch: 0,
      seq,
      kind: "periodic",
      status: "active",
      schemaVersion: 1,
      takenAt: new Date().toISOString(),
      state,
    };
  }
}
