import type { TimelineEntry } from "../store.js";
import { formatBytes, formatDuration, formatTime } from "./format.js";
import { html, type SafeHtml } from "./html.js";

/** Between two snapshots, more than this many times the session's usual interval reads as downtime. */
const GAP_FACTOR = 3;

/** The checkpoint timeline, newest last; a row after an unusually long silence (downtime) is marked as a gap. */
export function timelineTable(entries: readonly TimelineEntry[]): SafeHtml {
  if (entries.length === 0) return html`<p class="empty">No checkpoints stored.</p>`;
  const intervals = entries.slice(1).map((entry, index) => Date.parse(entry.takenAt) - Date.parse(entries[index]!.takenAt));
  const usual = [...intervals].sort((a, b) => a - b)[Math.floor(intervals.length / 2)] ?? 0;
  return html`<table class="timeline">
<thead><tr><th class="number">epoch</th><th class="number">seq</th><th>kind</th><th>status</th><th>taken</th><th>persisted</th><th class="number">bytes</th><th>since previous</th></tr></thead>
<tbody>
${entries.map((entry, index) => {
  const since = index === 0 ? null : intervals[index - 1]!;
  const gap = since !== null && (entry.epoch !== entries[index - 1]!.epoch || (usual > 0 && since > usual * GAP_FACTOR));
  return html`<tr${gap ? html` class="gap"` : ""}><td class="number">${entry.epoch}</td><td class="number">${entry.seq}</td><td>${entry.kind}</td><td>${entry.status}</td>
<td>${formatTime(entry.takenAt)}</td><td>${formatTime(entry.persistedAt)}</td><td class="number">${formatBytes(entry.bytes)}</td>
<td>${since === null ? "" : formatDuration(since)}${gap ? (entry.epoch !== entries[index - 1]!.epoch ? " · resumed" : " · gap") : ""}</td></tr>`;
})}
</tbody>
</table>`;
}
