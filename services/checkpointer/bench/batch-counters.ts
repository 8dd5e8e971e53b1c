/** The checkpointer's own account of its writes, from /metrics: how it batched and how long commits took. */
export interface BatchCounters {
  batches: number;
  snapshots: number;
  commitSeconds: number;
}

function sumOf(metrics: string, name: string): number {
  let total = 0;
  for (const match of metrics.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))) total += Number(match[1]);
  return total;
}

export async function readBatchCounters(metricsUrl: string): Promise<BatchCounters> {
  const response = await fetch(metricsUrl);
  if (!response.ok) throw new Error(`GET ${metricsUrl} answered ${response.status}; is the checkpointer's ops server up?`);
  const metrics = await response.text();
  return {
    batches: sumOf(metrics, "savepoint_checkpoint_batch_size_count"),
    snapshots: sumOf(metrics, "savepoint_checkpoint_batch_size_sum"),
    commitSeconds: sumOf(metrics, "savepoint_checkpoint_persist_seconds_sum"),
  };
}

export function batchCountersBetween(start: BatchCounters, end: BatchCounters): BatchCounters {
  return {
    batches: end.batches - start.batches,
    snapshots: end.snapshots - start.snapshots,
    commitSeconds: end.commitSeconds - start.commitSeconds,
  };
}

export function addBatchCounters(a: BatchCounters, b: BatchCounters): BatchCounters {
  return { batches: a.batches + b.batches, snapshots: a.snapshots + b.snapshots, commitSeconds: a.commitSeconds + b.commitSeconds };
}
