import { commonEnvSchema, databaseEnvSchema, DEFAULT_MAX_STATE_BYTES, envInt, envPositive, port } from "@savepoint/shared";
import { z } from "zod";

const positiveInt = (max: number) => envInt(1, max);

/** The checkpointer's environment; see the configuration table in README.md. */
export const checkpointerEnvSchema = commonEnvSchema.extend(databaseEnvSchema.shape).extend({
  HTTP_PORT: port().default(8081),
  /**
   * Which snapshot queues this process consumes: both kinds, or one. A checkpointer of its own for `confirmed`
   * keeps confirmations off the event loop (and the CPU share) a fire-and-forget backlog uses up.
   */
  SNAPSHOT_LANES: z.enum(["all", "confirmed", "fire-and-forget"]).default("all"),
  /**
   * The nice value this process runs its event loop at (0 to 19, higher yields the CPU to others). A
   * `fire-and-forget` checkpointer beside a `confirmed` one on the same cores runs at 19 so the backlog it
   * drains takes the cores only when confirmations do not want them; its Redis and Postgres work, asked for
   * by it, slows with it. Negative values need privileges a service should not hold, so they are refused.
   */
  PROCESS_NICENESS: envInt(0, 19).default(0),
  /** Snapshot jobs held at once; also the largest possible batch. */
  SNAPSHOT_CONCURRENCY: positiveInt(10_000).default(256),
  /**
   * Workers fetching confirmed snapshots at once, over all confirmed queues. A BullMQ worker fetches one job per
   * round trip, in sequence, so a burst of confirmed saves waits for as many round trips as it holds jobs unless
   * several workers fetch side by side.
   */
  CONFIRMED_FETCHERS: positiveInt(64).default(8),
  /**
   * Confirmations first: while confirmed saves flow through this process (or another checkpointer on the same
   * Redis, told through ConfirmationsBeacon's key, whose TTL this also is), and for this long after the last one
   * settled, its fire-and-forget workers hold at most BACKLOG_YIELD_CONCURRENCY jobs between them, so a confirmed
   * save waits behind a few backlog jobs' CPU, event-loop and Redis work rather than a full batch's. 0: never
   * yield, and tell no other checkpointer.
   */
  BACKLOG_YIELD_MS: envInt(0, 600_000).default(1_000),
  /**
   * 4 rather than 16: in item 8's scenario of the fault campaign (a 20k backlog, 2 cores), 4 gave confirmed saves a lower p99 than 16 in
   * each of four same-run comparisons (0.76–0.98×) and drained the backlog 3× faster than 1 did meanwhile,
   * which was not reliably faster for confirmations. Never below one job per worker, so the backlog always
   * drains, even under confirmations that never pause.
   */
  BACKLOG_YIELD_CONCURRENCY: positiveInt(10_000).default(4),
  BATCH_MAX_SIZE: positiveInt(5_000).default(256),
  /** Batches written at once, each by its own lane of sessions (and on its own connection). */
  BATCH_MAX_CONCURRENCY: positiveInt(64).default(2),
  REQUEST_CONCURRENCY: positiveInt(1_000).default(16),
  MAX_STATE_BYTES: positiveInt(64 * 1024 * 1024).default(DEFAULT_MAX_STATE_BYTES),
  PG_POOL_SIZE: positiveInt(200).default(8),
  PG_STATEMENT_TIMEOUT_MS: positiveInt(3_600_000).default(30_000),
  /** How long a job stays owned by a worker that stopped renewing it (crashed) before another takes it. */
  JOB_LOCK_DURATION_MS: positiveInt(600_000).default(30_000),
  CLEANUP_KEEP_COUNT: positiveInt(1_000_000).default(100),
  CLEANUP_OLDER_THAN_HOURS: envPositive().optional(),
  CLEANUP_INTERVAL_MINUTES: envPositive().default(15),
  /** Completed or stopped sessions lose all their snapshots this long after their last one. */
  FINISHED_SESSION_TTL_HOURS: envPositive().default(168),
});
export type CheckpointerConfig = z.infer<typeof checkpointerEnvSchema>;
