import { SESSION_STATUSES } from "@savepoint/shared";
import { JOB_STATES, type FleetView } from "../fleet.js";
import { actionButton } from "./action-button.js";
import { formatDuration, formatTime } from "./format.js";
import { html, type SafeHtml } from "./html.js";
import type { PageSettings } from "./layout.js";
import { statusBadge } from "./sessions-page.js";

const sessionLink = (service: string, sessionId: string) => html`<a href="/sessions/${encodeURIComponent(service)}/${encodeURIComponent(sessionId)}">${sessionId}</a>`;

/** The fleet: sessions per state, how runs started, checkpoint rate, queue depths, workers and dead letters. */
export function fleetPage(fleet: FleetView, settings: PageSettings): SafeHtml {
  const services = [...new Set(fleet.sessionsByState.map((row) => row.service))].sort();
  const sessions = (service: string, status: string) => fleet.sessionsByState.find((row) => row.service === service && row.status === status)?.sessions ?? 0;
  return html`<h1>Fleet</h1>
<section data-live="fleet">
<h2>Sessions per state</h2>
${
  services.length === 0
    ? html`<p class="empty">No sessions stored.</p>`
    : html`<table class="sessions-per-state"><thead><tr><th>service</th>${SESSION_STATUSES.map((status) => html`<th class="number">${statusBadge(status)}</th>`)}<th class="number">all</th></tr></thead><tbody>
${services.map(
  (service) => html`<tr data-service="${service}"><td>${service}</td>${SESSION_STATUSES.map(
    (status) => html`<td class="number"><a href="/sessions?service=${encodeURIComponent(service)}&amp;status=${status}">${sessions(service, status)}</a></td>`,
  )}<td class="number">${SESSION_STATUSES.reduce((sum, status) => sum + sessions(service, status), 0)}</td></tr>`,
)}</tbody></table>`
}
<h2>Resumed vs fresh</h2>
<p class="empty">Of the ${fleet.startsOf} sessions written most recently: resumed ones had more than one owner (a restart, a crash, a retry).</p>
<table class="starts"><thead><tr><th>service</th><th class="number">resumed</th><th class="number">fresh</th></tr></thead><tbody>
${fleet.starts.map((row) => html`<tr data-service="${row.service}"><td>${row.service}</td><td class="number">${row.resumed}</td><td class="number">${row.fresh}</td></tr>`)}
</tbody></table>
<h2>Checkpoints per second</h2>
${
  fleet.checkpointRate.length === 0
    ? html`<p class="empty">No checkpoint stored in the last ${fleet.rateSeconds} s.</p>`
    : html`<table class="checkpoint-rate"><thead><tr><th>service</th><th class="number">last ${fleet.rateSeconds} s</th><th class="number">per second</th></tr></thead><tbody>
${fleet.checkpointRate.map((row) => html`<tr data-service="${row.service}"><td>${row.service}</td><td class="number">${row.checkpoints}</td><td class="number">${row.perSecond.toFixed(2)}</td></tr>`)}
</tbody></table>`
}
<h2>Queues</h2>
<table class="queues"><thead><tr><th>queue</th>${JOB_STATES.map((state) => html`<th class="number">${state}</th>`)}<th class="number">workers</th></tr></thead><tbody>
${fleet.queues.map(
  (queue) => html`<tr data-queue="${queue.name}"><td>${queue.name}</td>${JOB_STATES.map((state) => html`<td class="number">${queue.counts[state]}</td>`)}<td class="number">${queue.workers}</td></tr>`,
)}
</tbody></table>
<h2>Workers</h2>
${
  fleet.workers.length === 0
    ? html`<p class="empty">No worker is connected.</p>`
    : html`<table class="workers"><thead><tr><th>queue</th><th>worker</th><th>address</th><th>connected</th><th>idle</th></tr></thead><tbody>
${fleet.workers.map(
  (worker) => html`<tr><td>${worker.queue}</td><td>${worker.name ?? "—"}</td><td>${worker.address}</td><td>${formatDuration(worker.ageSeconds * 1000)}</td><td>${formatDuration(worker.idleSeconds * 1000)}</td></tr>`,
)}</tbody></table>`
}
<h2>Dead-lettered runs</h2>
${
  fleet.deadLetters.length === 0
    ? html`<p class="empty">None: no think job has failed for good.</p>`
    : html`<p class="empty">${fleet.deadLettersTotal} failed think job(s) in the reasoning queue${fleet.deadLettersTotal > fleet.deadLetters.length ? `, the newest ${fleet.deadLetters.length} shown` : ""}.</p>
<table class="dead-letters"><thead><tr><th>run</th><th>failed</th><th class="number">attempts</th><th>reason</th><th></th></tr></thead><tbody>
${fleet.deadLetters.map(
  (dead) => html`<tr data-session="${dead.sessionId}"><td>${sessionLink("reasoner", dead.sessionId)}</td><td>${formatTime(dead.failedAt)}</td><td class="number">${dead.attemptsStarted}</td><td>${dead.failedReason}</td>
<td>${actionButton(settings, "redrive", { sessionId: dead.sessionId }, "Re-drive", `Re-drive ${dead.sessionId}? Its think job goes back to the reasoning queue and the next attempt resumes from its last checkpoint.`)}</td></tr>`,
)}</tbody></table>`
}
</section>`;
}
