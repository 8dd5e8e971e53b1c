import { migrate } from "@savepoint/shared";
import pg from "pg";
import { summarize, timeEach, type LatencySummary } from "./timing.js";
import { CheckpointStore, createPool } from "../src/store/checkpoint-store.js";
import { ROWS_PER_CHUNK } from "../src/store/retention.js";

export interface PostgresScaleSettings {
  databaseUrl: string;
  /** Table sizes measured, in snapshots, ascending; each grows the table of the one before. */
  sizes: number[];
  samples: number;
  keepCount: number;
  log: (line: string) => void;
}

/** Snapshots per unfinished session; a finished one holds FINISHED_ROWS until the first retention run. */
const ACTIVE_ROWS = 100;
const FINISHED_ROWS = 150;
/** One in FINISHED_EVERY sessions is completed. */
const FINISHED_EVERY = 4;
const LONG_SESSION_ROWS = 50_000;
const LONG_SESSION_FROM_SIZE = 1_000_000;
const OWNERS = 1_000;
const SESSIONS_PER_FILL_STATEMENT = 5_000;

export interface SizeFigures {
  rows: number;
  sessions: number;
  tableBytes: number;
  fillSeconds: number;
  firstRetention: { seconds: number; deleted: number; walBytes: number };
  idleRetention: LatencySummary;
  latest: LatencySummary;
  /** `latest` on a 10k-snapshot table, timed in turns with `latest`. */
  latestReference: LatencySummary;
  latestLongSession: LatencySummary | undefined;
  historyFirstPage: LatencySummary;
  historyMiddleOfLongSession: LatencySummary | undefined;
  latestByOwner: LatencySummary;
  statsAll: LatencySummary;
  statsService: LatencySummary;
}

const sessionsFor = (rows: number) => {
  // Rows left once retention has trimmed the finished sessions to ACTIVE_ROWS (= keepCount), long session apart.
  const regular = rows - (rows >= LONG_SESSION_FROM_SIZE ? LONG_SESSION_ROWS : 0);
  return Math.floor(regular / ACTIVE_ROWS);
};

/**
 * Fills sessions [from, to) as the store's write statement would have left them: the snapshots, and each
 * session's row with its position, status and counters, written in one statement per batch of sessions.
 */
async function fillSessions(pool: pg.Pool, from: number, to: number): Promise<void> {
  for (let start = from; start < to; start += SESSIONS_PER_FILL_STATEMENT) {
    const end = Math.min(to, start + SESSIONS_PER_FILL_STATEMENT);
    await pool.query(
      `WITH stored AS (
         INSERT INTO checkpoints (service, session_id, epoch, seq, owner_id, kind, status, schema_version, taken_at, state, state_bytes)
         SELECT 'trader', 'session-' || k, 0, g, 'owner-' || (k % $3::int), 'periodic',
                CASE WHEN k % $4::int = 0 THEN 'completed' ELSE 'active' END, 1, now(), s.text::json, octet_length(s.text)
         FROM generate_series($1::int, $2::int - 1) k
         CROSS JOIN LATERAL generate_series(1, CASE WHEN k % $4::int = 0 THEN $5::int ELSE $6::int END) g
         CROSS JOIN LATERAL (SELECT '{"seq":' || g || ',"positions":[{"symbol":"AAPL","qty":' || (g % 50) ||
                                    ',"side":"long","entryPrice":187.25,"stopLoss":180.5,"takeProfit":199}],' ||
                                    '"account":{"portfolioValue":100000,"buyingPower":200000,"cash":' || (100000 - g) || '},' ||
                                    '"closedTrades":' || (g / 10) || ',"note":"' || repeat('x', 96) || '"}' AS text) s
         RETURNING service, session_id, seq, owner_id, status, state_bytes, persisted_at
       )
       INSERT INTO checkpoint_sessions (service, session_id, owner_id, status, latest_epoch, latest_seq,
                                        snapshot_count, snapshot_bytes, oldest_persisted_at, newest_persisted_at)
       SELECT service, session_id, min(owner_id), min(status), 0, max(seq), count(*), sum(state_bytes), min(persisted_at), max(persisted_at)
       FROM stored GROUP BY service, session_id`,
      [start, end, OWNERS, FINISHED_EVERY, FINISHED_ROWS, ACTIVE_ROWS],
    );
  }
}

async function fillLongSession(pool: pg.Pool): Promise<void> {
  await pool.query(
    `WITH stored AS (
       INSERT INTO checkpoints (service, session_id, epoch, seq, owner_id, kind, status, schema_version, taken_at, state, state_bytes)
       SELECT 'reasoner', 'long-run', g / 10000, g, 'agent-long', 'iteration', 'active', 1, now(), s.text::json, octet_length(s.text)
       FROM generate_series(1, $1::int) g
       CROSS JOIN LATERAL (SELECT '{"chain":0,"step":{"iteration":' || g || ',"thought":"' || repeat('t', 160) || '"}}' AS text) s
       RETURNING epoch, seq, state_bytes, persisted_at
     )
     INSERT INTO checkpoint_sessions (service, session_id, owner_id, status, latest_epoch, latest_seq,
                                      snapshot_count, snapshot_bytes, oldest_persisted_at, newest_persisted_at)
     SELECT 'reasoner', 'long-run', 'agent-long', 'active', max(epoch), max(seq), count(*), sum(state_bytes), min(persisted_at), max(persisted_at)
     FROM stored`,
    [LONG_SESSION_ROWS],
  );
}

async function walPosition(pool: pg.Pool): Promise<string> {
  return (await pool.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn")).rows[0]!.lsn;
}

async function walSince(pool: pg.Pool, lsn: string): Promise<number> {
  return (await pool.query<{ bytes: number }>("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::float8 AS bytes", [lsn])).rows[0]!.bytes;
}

const random = (limit: number) => Math.floor(Math.random() * limit);

/**
 * `latest`, `history`, latest-by-owner, `stats` and retention through the checkpointer's own store (its
 * statements, on a pool like its own) on a table grown to each size in turn. The table is filled by bulk
 * INSERT … SELECT statements that write what the store's write statement would (see fillSessions), not by
 * the store's write path, which would take hours at 5M rows on this machine. `latest` is also timed, in turns,
 * on a second database of 10k snapshots.
 */
export async function measurePostgresScale(settings: PostgresScaleSettings): Promise<SizeFigures[]> {
  const { databaseUrl, log } = settings;
  const reference = await freshStore(withDatabaseSuffix(databaseUrl, "_reference"));
  await fillSessions(reference.pool, 0, sessionsFor(REFERENCE_ROWS));
  await reference.store.runRetention({ keepCount: settings.keepCount });
  await reference.pool.query("VACUUM ANALYZE checkpoints");
  const { pool, store } = await freshStore(databaseUrl);
  const figures: SizeFigures[] = [];
  let filledSessions = 0;
  let longSession = false;
  try {
    for (const size of settings.sizes) {
      const sessions = sessionsFor(size);
      const fillStarted = performance.now();
      log(`filling to ${size.toLocaleString("en-US")} snapshots (${sessions.toLocaleString("en-US")} sessions)…`);
      await fillSessions(pool, filledSessions, sessions);
      filledSessions = sessions;
      if (!longSession && size >= LONG_SESSION_FROM_SIZE) {
        await fillLongSession(pool);
        longSession = true;
      }
      await pool.query("VACUUM ANALYZE checkpoints");
      await pool.query("VACUUM ANALYZE checkpoint_sessions");
      const fillSeconds = (performance.now() - fillStarted) / 1000;

      // The finished sessions just added hold FINISHED_ROWS: the first run trims them to keepCount.
      const lsn = await walPosition(pool);
      const retentionStarted = performance.now();
      const first = await store.runRetention({ keepCount: settings.keepCount, finishedTtlHours: 168 });
      const firstRetention = { seconds: (performance.now() - retentionStarted) / 1000, deleted: first.deleted, walBytes: await walSince(pool, lsn) };
      await pool.query("VACUUM ANALYZE checkpoints");

      const { rows: counted } = await pool.query<{ rows: number; bytes: number }>(
        "SELECT sum(snapshot_count)::float8 AS rows, pg_total_relation_size('checkpoints')::float8 AS bytes FROM checkpoint_sessions",
      );
      const idleRetention = summarize(await timeEach(5, () => () => store.runRetention({ keepCount: settings.keepCount, finishedTtlHours: 168 })));

      const session = () => `session-${random(sessions)}`;
      const warm = async (operation: () => Promise<unknown>) => {
        for (let index = 0; index < 100; index++) await operation();
      };
      await warm(() => store.latestBySession("trader", session()));
      await warm(() => reference.store.latestBySession("trader", `session-${random(sessionsFor(REFERENCE_ROWS))}`));
      // Taking turns with the same call on a 10k-snapshot table, so that both figures meet the same background load.
      const [latest, latestReference] = await alternate(
        settings.samples,
        () => store.latestBySession("trader", session()),
        () => reference.store.latestBySession("trader", `session-${random(sessionsFor(REFERENCE_ROWS))}`),
      );
      const latestLongSession = longSession
        ? summarize(await timeEach(settings.samples, () => () => store.latestBySession("reasoner", "long-run")))
        : undefined;
      const historyFirstPage = summarize(await timeEach(settings.samples, () => () => store.history("trader", session(), 20)));
      const historyMiddleOfLongSession = longSession
        ? summarize(
            await timeEach(settings.samples, () => {
              const seq = 1 + random(LONG_SESSION_ROWS);
              return () => store.history("reasoner", "long-run", 20, { epoch: Math.floor(seq / 10000), seq });
            }),
          )
        : undefined;
      const latestByOwner = summarize(
        await timeEach(settings.samples, () => () => store.latestByOwner("trader", `owner-${random(OWNERS)}`, ["active", "interrupted"])),
      );
      const statsAll = summarize(await timeEach(20, () => () => store.stats({})));
      const statsService = summarize(await timeEach(20, () => () => store.stats({ service: "trader" })));

      const result: SizeFigures = {
        rows: counted[0]!.rows,
        sessions: sessions + (longSession ? 1 : 0),
        tableBytes: counted[0]!.bytes,
        fillSeconds,
        firstRetention,
        idleRetention,
        latest,
        latestReference,
        latestLongSession,
        historyFirstPage,
        historyMiddleOfLongSession,
        latestByOwner,
        statsAll,
        statsService,
      };
      figures.push(result);
      log(describeSize(result));
    }
  } finally {
    await pool.end();
    await reference.pool.end();
    // Gigabytes on a shared machine: nothing is left behind.
    await dropDatabase(databaseUrl);
    await dropDatabase(withDatabaseSuffix(databaseUrl, "_reference"));
  }
  return figures;
}

/** The size of the table `latest` is compared with, in a database of its own. */
const REFERENCE_ROWS = 10_000;

function withDatabaseSuffix(databaseUrl: string, suffix: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `${url.pathname}${suffix}`;
  return url.toString();
}

async function dropDatabase(databaseUrl: string): Promise<void> {
  const admin = new URL(databaseUrl);
  const name = decodeURIComponent(admin.pathname.slice(1));
  admin.pathname = "/postgres";
  const adminClient = new pg.Client({ connectionString: admin.toString() });
  await adminClient.connect();
  try {
    await adminClient.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)}`);
  } finally {
    await adminClient.end();
  }
}

/** The database in `databaseUrl` dropped, created again and migrated, and a store on it. */
async function freshStore(databaseUrl: string): Promise<{ pool: pg.Pool; store: CheckpointStore }> {
  await dropDatabase(databaseUrl);
  await migrate({ databaseUrl, direction: "up" });
  const pool = createPool({ databaseUrl, maxConnections: 4, statementTimeoutMs: 3_600_000, onConnectionLost: () => undefined });
  return { pool, store: new CheckpointStore(pool) };
}

/** Times `first` and `second` in turns, `samples` times each. */
async function alternate(samples: number, first: () => Promise<unknown>, second: () => Promise<unknown>): Promise<[LatencySummary, LatencySummary]> {
  const timings = await timeEach(samples * 2, (index) => (index % 2 === 0 ? first : second));
  return [summarize(timings.filter((_, index) => index % 2 === 0)), summarize(timings.filter((_, index) => index % 2 === 1))];
}

const ms = (value: number) => (value < 10 ? value.toFixed(2) : value.toFixed(0));
const latency = (summary: LatencySummary | undefined) => (summary ? `p50 ${ms(summary.p50Ms)} ms, p99 ${ms(summary.p99Ms)} ms` : "—");

export function describeSize(figures: SizeFigures): string {
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
  return [
    `${figures.rows.toLocaleString("en-US")} snapshots in ${figures.sessions.toLocaleString("en-US")} sessions (checkpoints ${mib(figures.tableBytes)}; filled in ${figures.fillSeconds.toFixed(0)} s)`,
    `  latest (a 100-snapshot session)       ${latency(figures.latest)}`,
    `    … on 10k snapshots, in turns         ${latency(figures.latestReference)}`,
    `  latest (the 50,000-snapshot session)  ${latency(figures.latestLongSession)}`,
    `  history, first page of 20             ${latency(figures.historyFirstPage)}`,
    `  history, 20 from mid 50,000-session   ${latency(figures.historyMiddleOfLongSession)}`,
    `  latest by owner (active/interrupted)  ${latency(figures.latestByOwner)}`,
    `  stats({})                             ${latency(figures.statsAll)}`,
    `  stats({ service })                    ${latency(figures.statsService)}`,
    `  retention, first run                  ${figures.firstRetention.seconds.toFixed(2)} s, ${figures.firstRetention.deleted.toLocaleString("en-US")} deleted ` +
      `in chunks of ≤ ${ROWS_PER_CHUNK.toLocaleString("en-US")}, ${mib(figures.firstRetention.walBytes)} WAL`,
    `  retention, nothing to delete          ${latency(figures.idleRetention)}`,
  ].join("\n");
}

/** The targets against these figures. */
export function describeTargets(figures: SizeFigures[]): string[] {
  const largest = figures[figures.length - 1]!;
  const size = (f: SizeFigures) => f.rows.toLocaleString("en-US");
  const verdict = (held: boolean) => (held ? "met" : "NOT met");
  const ratio = largest.latest.p99Ms / largest.latestReference.p99Ms;
  return [
    `latest p99 at ${size(largest)} within 1.2× its p99 at 10,000 (timed in turns): ${ms(largest.latest.p99Ms)} ms vs ${ms(largest.latestReference.p99Ms)} ms = ${ratio.toFixed(2)}× — ${verdict(ratio <= 1.2)}`,
    `stats({}) under 100 ms at ${size(largest)}: p99 ${ms(largest.statsAll.p99Ms)} ms — ${verdict(largest.statsAll.p99Ms < 100)}`,
    `a cleanup with nothing to delete under 1 s at ${size(largest)}: p99 ${ms(largest.idleRetention.p99Ms)} ms — ${verdict(largest.idleRetention.p99Ms < 1000)}`,
  ];
}
