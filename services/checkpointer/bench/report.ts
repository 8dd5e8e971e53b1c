import type { BatchCounters } from "./batch-counters.js";
import type { CpuSpend } from "./cpu-meter.js";
import type { LatencySummary } from "./timing.js";

export type LatencyName = "confirmedSave" | "restore" | "noopRoundTrip" | "directInsert" | "langgraphPut" | "langgraphGetTuple";
/** `directSerial`: one connection, one INSERT after another; `direct`: a pool of BENCH_DIRECT_CONNECTIONS. */
export type DrainName = "checkpointer" | "noop" | "directSerial" | "direct";

export interface DrainFigures {
  snapshots: number;
  seconds: number;
  cpu: CpuSpend;
  /** Per-item latency while draining, where each item is timed on its own (the direct INSERT). */
  perItem?: LatencySummary;
}

export interface BenchResults {
  stateBytes: number;
  sessions: number;
  rounds: number;
  directConnections: number;
  checkpointer: { snapshotConcurrency: number; batchMaxSize: number; batchMaxConcurrency: number; pgPoolSize: number };
  latency: Record<LatencyName, LatencySummary>;
  throughput: Record<DrainName, DrainFigures>;
  batches: { confirmedSaves: BatchCounters; drain: BatchCounters };
  elapsedSeconds: number;
}

export interface TargetCheck {
  target: string;
  figures: string;
  met: boolean;
}

const rate = (figures: DrainFigures) => figures.snapshots / figures.seconds;
const ms = (value: number) => value.toFixed(2);
const times = (value: number) => `${value.toFixed(2)}×`;

export function checkTargets(results: BenchResults): TargetCheck[] {
  const saved = rate(results.throughput.checkpointer);
  const directSerial = rate(results.throughput.directSerial);
  const noop = rate(results.throughput.noop);
  const confirmP99 = results.latency.confirmedSave.p99Ms;
  const noopP99 = results.latency.noopRoundTrip.p99Ms;
  const restoreP99 = results.latency.restore.p99Ms;
  return [
    {
      target: "throughput ≥ 2× direct INSERT, 1 connection",
      figures: `${Math.round(saved)} vs ${Math.round(directSerial)} /s = ${times(saved / directSerial)}`,
      met: saved >= 2 * directSerial,
    },
    {
      target: "throughput ≥ 0.6× no-op drain",
      figures: `${Math.round(saved)} vs ${Math.round(noop)} /s = ${times(saved / noop)}`,
      met: saved >= 0.6 * noop,
    },
    {
      target: "confirmed-save p99 ≤ 1.5× no-op p99",
      figures: `${ms(confirmP99)} vs ${ms(noopP99)} ms = ${times(confirmP99 / noopP99)}`,
      met: confirmP99 <= 1.5 * noopP99,
    },
    { target: "restore p99 < 10 ms", figures: `${ms(restoreP99)} ms`, met: restoreP99 < 10 },
  ];
}

/** Beside LangGraph's PostgresSaver, measured in the same run on the same states (issue 11's peer targets). */
export function checkPeerTargets(results: BenchResults): TargetCheck[] {
  const { latency, throughput } = results;
  const confirm = latency.confirmedSave.p99Ms / latency.langgraphPut.p99Ms;
  const restore = latency.restore.p99Ms / (2 * latency.langgraphGetTuple.p99Ms);
  const drain = rate(throughput.checkpointer) / rate(throughput.direct);
  return [
    {
      target: "confirmed-save p99 / PostgresSaver put p99 ≤ 1",
      figures: `${ms(latency.confirmedSave.p99Ms)} vs ${ms(latency.langgraphPut.p99Ms)} ms = ${times(confirm)}`,
      met: confirm <= 1,
    },
    {
      target: "restore p99 / (2 × PostgresSaver getTuple p99) ≤ 1",
      figures: `${ms(latency.restore.p99Ms)} vs 2 × ${ms(latency.langgraphGetTuple.p99Ms)} ms = ${times(restore)}`,
      met: restore <= 1,
    },
    {
      target: `fire-and-forget throughput / direct INSERT, ${results.directConnections} connections ≥ 1`,
      figures: `${Math.round(rate(throughput.checkpointer))} vs ${Math.round(rate(throughput.direct))} /s = ${times(drain)}`,
      met: drain >= 1,
    },
  ];
}

/**
 * The targets' INSERT baseline is one INSERT per snapshot, one after another, as a producer writing its own
 * snapshots would. A pool of writers is shown beside it, with the ceiling any BullMQ consumer has here.
 */
function poolContext(results: BenchResults): string {
  const { checkpointer, noop, direct } = results.throughput;
  return (
    `  for context (the peer targets below judge this one): ${results.directConnections} connections inserting side by side reach ${Math.round(rate(direct))}/s; ` +
    `the checkpointer ${times(rate(checkpointer) / rate(direct))} that, the no-op drain ${times(rate(noop) / rate(direct))}`
  );
}

function table(rows: string[][], alignLeft = 1): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map(
    (row) =>
      "  " +
      row
        .map((cell, column) => (column < alignLeft ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
        .join("  ")
        .trimEnd(),
  );
}

const share = (seconds: number | undefined, wall: number) => (seconds === undefined ? "n/a" : String(Math.round((seconds / wall) * 100)));

function batching(label: string, counters: BatchCounters, wallSeconds: number | undefined, flushSlots: number): string {
  if (counters.batches === 0) return `  ${label}: no batches`;
  const perBatch = (counters.snapshots / counters.batches).toFixed(1);
  const commitMs = ms((counters.commitSeconds / counters.batches) * 1000);
  const busy = wallSeconds === undefined ? "" : `, flush slots busy ${Math.round((counters.commitSeconds / (wallSeconds * flushSlots)) * 100)}%`;
  return `  ${label}: ${counters.batches} batches, ${perBatch} snapshots/batch, ${commitMs} ms/commit${busy}`;
}

export function formatReport(results: BenchResults, cpuCount: number): string {
  const { latency, throughput, checkpointer } = results;
  const lines = [
    "Savepoint checkpointer benchmark",
    `  ${results.stateBytes}-byte states over ${results.sessions} sessions; latency scenarios taking turns op by op, throughput ones in ${results.rounds} rounds`,
    `  worker concurrency ${checkpointer.snapshotConcurrency} (checkpointer and no-op worker, SNAPSHOT_CONCURRENCY); ` +
      `checkpointer batches ≤ ${checkpointer.batchMaxSize}, ${checkpointer.batchMaxConcurrency} at once, ${checkpointer.pgPoolSize} Postgres connections`,
    `  Node ${process.version}, ${cpuCount} CPUs shared with other work on this machine: figures are noisy`,
    "",
    ...table([
      ["latency, one at a time", "samples", "p50 ms", "p99 ms"],
      ...(
        [
          ["confirmed save (saveAndConfirm)", latency.confirmedSave],
          ["restore (latest by sessionId)", latency.restore],
          ["BullMQ no-op round trip", latency.noopRoundTrip],
          ["direct INSERT, autocommit", latency.directInsert],
          ["LangGraph PostgresSaver put", latency.langgraphPut],
          ["LangGraph PostgresSaver getTuple", latency.langgraphGetTuple],
        ] as const
      ).map(([label, summary]) => [label, String(summary.samples), ms(summary.p50Ms), ms(summary.p99Ms)]),
    ]),
    "",
    ...table([
      ["throughput, pre-loaded backlog", "snapshots", "seconds", "per s", "p50 ms", "p99 ms"],
      ...(
        [
          ["checkpointer, fire-and-forget save", throughput.checkpointer],
          ["BullMQ no-op drain", throughput.noop],
          ["direct INSERT, 1 connection", throughput.directSerial],
          [`direct INSERT, ${results.directConnections} connections`, throughput.direct],
        ] as const
      ).map(([label, figures]) => [
        label,
        String(figures.snapshots),
        figures.seconds.toFixed(2),
        String(Math.round(rate(figures))),
        figures.perItem ? ms(figures.perItem.p50Ms) : "-",
        figures.perItem ? ms(figures.perItem.p99Ms) : "-",
      ]),
    ]),
    "",
    ...table([
      ["cpu while draining", "bench", "consumer", "redis", "postgres", "machine", "others"],
      ["", "µs/snap", "µs/snap", "µs/snap", "µs/snap", "% busy", "% busy"],
      ...(
        [
          ["checkpointer", throughput.checkpointer],
          ["BullMQ no-op", throughput.noop],
          ["direct INSERT, 1 conn", throughput.directSerial],
          [`direct INSERT, ${results.directConnections} conn`, throughput.direct],
        ] as const
      ).map(([label, { cpu, snapshots }]) => {
        const perSnapshot = (seconds: number | undefined) => (seconds === undefined ? "n/a" : String(Math.round((seconds / snapshots) * 1e6)));
        const attributed = [cpu.bench, cpu.consumer ?? 0, cpu.redis, cpu.postgres];
        const others = attributed.every((seconds) => seconds !== undefined)
          ? share(cpu.machine - attributed.reduce((sum: number, seconds) => sum + seconds!, 0), cpu.wallSeconds)
          : "n/a";
        return [
          label,
          perSnapshot(cpu.bench),
          cpu.consumer === undefined ? "-" : perSnapshot(cpu.consumer),
          perSnapshot(cpu.redis),
          perSnapshot(cpu.postgres),
          share(cpu.machine, cpu.wallSeconds),
          others,
        ];
      }),
    ]),
    `  (CPU time per snapshot by process; consumer = checkpointer or no-op worker process; redis = the whole shared server;`,
    `  postgres = this database's backends; machine = all ${cpuCount} cores, ${cpuCount * 100}% when saturated; ` +
      "others = machine minus those: other work here, Postgres' background writers)",
    "",
    "checkpointer batching (its /metrics)",
    batching("confirmed saves", results.batches.confirmedSaves, undefined, checkpointer.batchMaxConcurrency),
    batching("backlog drain", results.batches.drain, throughput.checkpointer.seconds, checkpointer.batchMaxConcurrency),
    "",
    "targets",
    ...table(checkTargets(results).map((check) => [check.target, check.figures, check.met ? "met" : "NOT met"]), 3),
    poolContext(results),
    "",
    "peer: LangGraph's PostgresSaver (@langchain/langgraph-checkpoint-postgres), same states, same run",
    ...table(checkPeerTargets(results).map((check) => [check.target, check.figures, check.met ? "met" : "NOT met"]), 3),
    "",
    `finished in ${results.elapsedSeconds.toFixed(0)} s`,
  ];
  return lines.join("\n");
}
