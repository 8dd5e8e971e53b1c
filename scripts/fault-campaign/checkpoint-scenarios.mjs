/**
 * Issue 12, items 4 and 8, as a producer of checkpoints meets them: saveAndConfirm calls in flight while Redis
 * is SIGKILLed, and confirmed saves while a fire-and-forget backlog drains. The checkpointer is the built one,
 * in a process of its own.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { CheckpointClient, snapshotQueues } from "@savepoint/shared";
import { UnfinishedJobs } from "@savepoint/shared/testing";
import { onOwnRedis, Tally } from "./harness.mjs";

const CONFIRMING_LOOPS = 16;
const BACKLOG = 100_000;
const TARGET_P99_MS = 50;
/** How long confirmations go on once the backlog is queued (or until it is stored, if sooner). */
const CONFIRMING_WHILE_DRAINING_MS = 20_000;
const BACKLOG_PRODUCER = fileURLToPath(new URL("./backlog-producer.mjs", import.meta.url));

let takenAt = 0;
const envelope = (sessionId, seq, state = { positions: [], note: "fault campaign" }) => ({
  v: 1, service: "campaign", sessionId, epoch: 0, seq, kind: "periodic", status: "active", schemaVersion: 1,
  takenAt: new Date(Date.now() + ++takenAt).toISOString(), state,
});
const percentile = (samples, q) => [...samples].sort((a, b) => a - b)[Math.max(0, Math.ceil(q * samples.length) - 1)] ?? 0;

/** Confirmed seqs that Postgres does not hold, and rows stored more than once, for sessions starting with `like`. */
async function lostAndDuplicated(env, like, confirmed) {
  const { rows } = await env.query("SELECT session_id, seq, count(*)::int AS n FROM checkpoints WHERE service = 'campaign' AND session_id LIKE $1 GROUP BY 1, 2", [`${like}%`]);
  const stored = new Set(rows.map((row) => `${row.session_id}/${row.seq}`));
  return {
    lost: [...confirmed].filter((key) => !stored.has(key)).length,
    duplicated: rows.reduce((sum, row) => sum + row.n - 1, 0),
  };
}

/** Item 4: saveAndConfirm calls in flight when Redis is SIGKILLed, then restarted. */
export async function confirmDuringRedisCrash({ env: base, trials, stops }) {
  const tally = new Tally(4, "saveAndConfirm in flight during a Redis crash");
  const { redis, env } = await onOwnRedis(base, stops);
  const client = await CheckpointClient.connect({ redisUrl: redis.url, queuePrefix: env.queuePrefix, confirmTimeoutMs: 5_000 });
  stops.push(() => client.close());
  let unhandled = 0;
  const onUnhandled = () => (unhandled += 1);
  process.on("unhandledRejection", onUnhandled);
  stops.push(() => process.off("unhandledRejection", onUnhandled));

  const confirmed = new Set();
  const untyped = new Set();
  let typed = 0;
  let retried = 0;
  let repeated = 0;
  for (let trial = 1; trial <= trials; trial++) {
    let running = true;
    const loop = async (index) => {
      const sessionId = `crash-${trial}-${index}`;
      let retrying = false;
      for (let seq = 1; running; ) {
        try {
          const receipt = await client.saveAndConfirm(envelope(sessionId, seq));
          confirmed.add(`${sessionId}/${seq}`);
          if (retrying && receipt.outcome === "duplicate") repeated += 1;
          retrying = false;
          seq += 1;
        } catch (error) {
          if (String(error?.name).startsWith("Checkpoint")) typed += 1;
          else untyped.add(`${error?.name}: ${error?.message}`);
          // A producer keeps a snapshot it could not confirm and sends it again.
          retrying = true;
          retried += 1;
          await delay(100);
        }
      }
    };
    const loops = Array.from({ length: CONFIRMING_LOOPS }, (_, index) => loop(index));
    await delay(300 + Math.random() * 700);
    await redis.kill();
    await delay(1_000 + Math.random() * 1_000);
    await redis.restart();
    await delay(2_000);
    running = false;
    await Promise.all(loops);
  }
  const { lost, duplicated } = await lostAndDuplicated(env, "crash-", confirmed);
  tally.figure("confirmed", confirmed.size);
  tally.figure("typed errors", typed);
  tally.figure("untyped errors", untyped.size);
  tally.figure("unhandled rejections", unhandled);
  tally.figure("lost", lost);
  tally.figure("duplicated", duplicated);
  tally.figure(`sent again (repeated; ${repeated} answered duplicate)`, retried);
  tally.expect(`no unhandled rejection (got ${unhandled})`, unhandled === 0);
  tally.expect(`every error typed (got ${[...untyped].join("; ")})`, untyped.size === 0);
  tally.expect(`no confirmed save lost (lost ${lost})`, lost === 0);
  tally.expect(`no snapshot stored twice (${duplicated})`, duplicated === 0);
  return tally;
}

/**
 * Item 8: two confirming producers while a backlog of BACKLOG fire-and-forget snapshots is queued (by a process
 * of its own, on this machine) and then drains; `lanePerProcess` when the campaign runs one checkpointer per kind
 * of snapshot queue (SNAPSHOT_LANES) instead of one for both; `label` adds to the title what else sets this run
 * apart (the checkpointers' overrides); `baseline` when it runs without confirmations first, to compare with, so
 * the latency target is not held against it. The issue's target is confirmed p99 while the backlog drains: from the
 * moment it is all queued until it is all stored. The time it is being queued is a figure of its own, since
 * then a producer of 5k+ jobs a second shares the machine's two cores with everything measured.
 * Confirmations go on for CONFIRMING_WHILE_DRAINING_MS of the drain; the rest drains without them.
 */
export async function confirmedUnderBacklog({ env, trials, lanePerProcess = false, label, baseline = false }) {
  const where = (lanePerProcess ? ", confirmed lane in a checkpointer of its own" : ", one checkpointer") + (label ? `, ${label}` : "");
  const tally = new Tally(8, `confirmed saves behind a ${BACKLOG / 1000}k fire-and-forget backlog${where}`);
  const producers = await Promise.all([1, 2].map(() => CheckpointClient.connect({ redisUrl: env.redisUrl, queuePrefix: env.queuePrefix, confirmTimeoutMs: 10_000 })));
  const confirmed = new Set();
  const whileQueued = [];
  const whileDraining = [];
  const drainP99PerTrial = [];
  // Watched in Redis while it drains: counting its rows in Postgres ten times a second would scan a table that
  // grows by BACKLOG rows a trial, and that scan's cost, not the checkpointer's, would grow every trial's latency.
  const backlog = new UnfinishedJobs({ url: env.redisUrl, maxRetriesPerRequest: null }, snapshotQueues(env.queuePrefix, false).fireAndForget);
  const backlogStored = async (trial) =>
    (await env.query("SELECT count(*)::int AS n FROM checkpoints WHERE service = 'campaign' AND session_id LIKE $1", [`backlog-${trial}-%`])).rows[0].n;
  let timedOut = 0;
  let drainSeconds = 0;
  let queueSeconds = 0;
  try {
    for (let trial = 1; trial <= trials; trial++) {
      let phase = "queued";
      const drainingThisTrial = [];
      const backlogStarted = performance.now();
      const queueAndDrainBacklog = async () => {
        const producer = spawn(process.execPath, [BACKLOG_PRODUCER, env.redisUrl, env.queuePrefix, `backlog-${trial}-`, String(BACKLOG)], { stdio: "inherit" });
        const [code] = await once(producer, "exit");
        if (code !== 0) throw new Error(`the backlog producer exited with code ${code}`);
        queueSeconds += (performance.now() - backlogStarted) / 1000;
        phase = "draining";
        const stopConfirming = setTimeout(() => (phase = "drained"), CONFIRMING_WHILE_DRAINING_MS);
        // The drain rate is the other half of the trade: confirmations must not come first by starving the backlog.
        for (let left = await backlog.count(), progressAt = performance.now(); left > 0; ) {
          if (performance.now() - progressAt > 60_000) throw new Error(`the backlog stopped draining with ${left} of ${BACKLOG} jobs left`);
          await delay(100);
          const now = await backlog.count();
          if (now < left) progressAt = performance.now();
          left = now;
        }
        drainSeconds += (performance.now() - backlogStarted) / 1000;
        clearTimeout(stopConfirming);
        phase = "drained";
        const stored = await backlogStored(trial);
        if (stored !== BACKLOG) throw new Error(`the backlog's queue is empty but ${stored} of its ${BACKLOG} snapshots are stored`);
      };
      // Each producer keeps 8 confirmations in flight from the start, as the campaign did.
      await Promise.all([
        queueAndDrainBacklog(),
        ...producers.flatMap((producer, which) =>
          Array.from({ length: 8 }, async (_, index) => {
            const sessionId = `confirmed-${trial}-${which}-${index}`;
            for (let seq = 1; phase !== "drained"; seq++) {
              const startedIn = phase;
              const started = performance.now();
              try {
                await producer.saveAndConfirm(envelope(sessionId, seq));
                const took = performance.now() - started;
                // A save counts in a phase only if it started and ended in it.
                if (startedIn === phase) (startedIn === "queued" ? whileQueued : drainingThisTrial).push(took);
                confirmed.add(`${sessionId}/${seq}`);
              } catch (error) {
                if (error?.name !== "CheckpointTimeoutError") throw error;
                timedOut += 1;
              }
            }
          }),
        ),
      ]);
      whileDraining.push(...drainingThisTrial);
      drainP99PerTrial.push(percentile(drainingThisTrial, 0.99).toFixed(1));
    }
  } finally {
    await Promise.all([...producers.map((client) => client.close()), backlog.close()]);
  }
  const { lost, duplicated } = await lostAndDuplicated(env, "confirmed-", confirmed);
  const p99 = percentile(whileDraining, 0.99);
  tally.figure("confirmed", confirmed.size);
  tally.figure("timed out", timedOut);
  tally.figure("while it drains: saves", whileDraining.length);
  tally.figure("p50 ms", percentile(whileDraining, 0.5).toFixed(1));
  tally.figure("p99 ms", p99.toFixed(1));
  tally.figure("p99 ms per trial", drainP99PerTrial.join("/"));
  tally.figure("while it is queued: saves", whileQueued.length);
  tally.figure("p50 ms", percentile(whileQueued, 0.5).toFixed(1));
  tally.figure("p99 ms", percentile(whileQueued, 0.99).toFixed(1));
  tally.figure("backlog queued per s", Math.round((BACKLOG * trials) / queueSeconds));
  tally.figure(`backlog drained per s (queued to stored; confirmations for the drain's first ${CONFIRMING_WHILE_DRAINING_MS / 1000} s)`, Math.round((BACKLOG * trials) / drainSeconds));
  tally.figure("lost", lost);
  tally.figure("duplicated", duplicated);
  tally.figure("repeated", 0);
  tally.expect(`no confirmation timed out (${timedOut})`, timedOut === 0);
  // A baseline (confirmations first turned off) is there to compare with: only its other guarantees must hold.
  if (baseline) tally.figure(`p99 target (${TARGET_P99_MS} ms)`, "not applied, a baseline");
  else tally.expect(`confirmed p99 while the backlog drains under ${TARGET_P99_MS} ms (${p99.toFixed(1)} ms)`, p99 < TARGET_P99_MS);
  tally.expect(`no confirmed save lost (lost ${lost})`, lost === 0);
  tally.expect(`no snapshot stored twice (${duplicated})`, duplicated === 0);
  return tally;
}
