import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";

export interface LatencySummary {
  samples: number;
  p50Ms: number;
  p99Ms: number;
}

/** Nearest-rank percentile of unsorted samples. */
export function percentile(samplesMs: number[], p: number): number {
  if (samplesMs.length === 0) throw new Error("percentile of no samples");
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function summarize(samplesMs: number[]): LatencySummary {
  return { samples: samplesMs.length, p50Ms: percentile(samplesMs, 50), p99Ms: percentile(samplesMs, 99) };
}

/** Runs `count` operations one after another; only the operation `prepare` returns is timed. */
export async function timeEach(count: number, prepare: (index: number) => () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let index = 0; index < count; index++) {
    const operation = prepare(index);
    const started = performance.now();
    await operation();
    samples.push(performance.now() - started);
  }
  return samples;
}

/** Runs `task` for indexes 0..count-1 with at most `concurrency` in flight. */
export async function runConcurrently(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}

/** Polls `done` every `intervalMs` until it holds; fails naming `what` after `timeoutMs`. */
export async function pollUntil(
  done: () => Promise<boolean>,
  { what, intervalMs, timeoutMs }: { what: string; intervalMs: number; timeoutMs: number },
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await delay(intervalMs);
  }
}
