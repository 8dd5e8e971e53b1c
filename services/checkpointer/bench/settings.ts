import { DEFAULT_MAX_STATE_BYTES, parseEnv } from "@savepoint/shared";
import { z } from "zod";

const count = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** What the benchmark measures, overridable by BENCH_* variables. */
export const benchSettingsSchema = z.object({
  /** Serialized size of each snapshot's `state`. */
  BENCH_STATE_BYTES: count(512, DEFAULT_MAX_STATE_BYTES).default(8 * 1024),
  /** Timed operations per latency figure; the scenarios take turns operation by operation. */
  BENCH_LATENCY_SAMPLES: count(10, 1_000_000).default(2_000),
  /** Snapshots per throughput figure, over all rounds. */
  BENCH_SNAPSHOTS: count(100, 10_000_000).default(20_000),
  /** Untimed operations per latency scenario before measuring. */
  BENCH_WARMUP_OPS: count(0, 1_000_000).default(200),
  /** Untimed snapshots per throughput scenario before measuring. */
  BENCH_WARMUP_SNAPSHOTS: count(0, 10_000_000).default(2_000),
  /** The throughput scenarios take turns this many times, so background load falls on all of them alike. */
  BENCH_ROUNDS: count(1, 100).default(4),
  /** Sessions the snapshots are spread over. */
  BENCH_SESSIONS: count(1, 100_000).default(100),
  /** Connections of the direct-INSERT baseline's pool. */
  BENCH_DIRECT_CONNECTIONS: count(1, 64).default(8),
  /** Saves in flight while a backlog is being pre-loaded (not timed). */
  BENCH_PRELOAD_CONCURRENCY: count(1, 4_096).default(64),
  /** Longest a backlog may take to drain before the benchmark gives up. */
  BENCH_DRAIN_TIMEOUT_SECONDS: count(1, 3_600).default(120),
});
export type BenchSettings = z.infer<typeof benchSettingsSchema>;

export function loadBenchSettings(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  return parseEnv(benchSettingsSchema, env);
}
