import { SESSION_STATUSES } from "@savepoint/shared";
import type { SessionRow } from "../store.js";
import { formatBytes, formatTime } from "./format.js";
import { html, type SafeHtml } from "./html.js";

export interface SessionsPageFilter {
  service?: string;
  status?: string;
  owner?: string;
  limit: number;
}

export const sessionHref = (session: Pick<SessionRow, "service" | "sessionId">) =>
  `/sessions/${encodeURIComponent(session.service)}/${encodeURIComponent(session.sessionId)}`;

export const statusBadge = (status: string) => html`<span class="status status-${status}">${status}</span>`;

function query(filter: SessionsPageFilter, after?: string): string {
  const parameters = new URLSearchParams();
  for (const name of ["service", "status", "owner"] as const) if (filter[name]) parameters.set(name, filter[name]);
  if (after) parameters.set("after", after);
  return parameters.toString();
}

/** The sessions list: a filter form, one row per session, and the link to the next page (keyset). */
export function sessionsPage(sessions: readonly SessionRow[], filter: SessionsPageFilter, next: string | null): SafeHtml {
  const title = filter.service === "reasoner" && filter.status === "interrupted" ? "Interrupted reasoning runs" : "Sessions";
  return html`<h1>${title}</h1>
<form class="filters" method="get" action="/sessions">
  <label>service <input name="service" value="${filter.service ?? ""}" placeholder="trader, reasoner …" size="12"></label>
  <label>status <select name="status"><option value="">any</option>${SESSION_STATUSES.map(
    (status) => html`<option value="${status}"${status === filter.status ? html` selected` : ""}>${status}</option>`,
  )}</select></label>
  <label>owner <input name="owner" value="${filter.owner ?? ""}" placeholder="account or agent id" size="16"></label>
  <button type="submit">Filter</button>
</form>
<section data-live="sessions">
${
  sessions.length === 0
    ? html`<p class="empty">No sessions match.</p>`
    : html`<table class="sessions">
<thead><tr><th>service</th><th>session</th><th>owner</th><th>status</th><th class="number">latest (epoch, seq)</th><th>updated</th><th class="number">checkpoints</th><th class="number">bytes</th><th class="number">resumes</th></tr></thead>
<tbody>
${sessions.map(
  (session) => html`<tr data-session="${session.service}/${session.sessionId}">
<td>${session.service}</td><td><a href="${sessionHref(session)}">${session.sessionId}</a></td><td>${session.ownerId ?? "—"}</td>
<td>${statusBadge(session.status)}</td><td class="number">${session.latest.epoch}, ${session.latest.seq}</td><td>${formatTime(session.updatedAt)}</td>
<td class="number">${session.checkpoints}</td><td class="number">${formatBytes(session.bytes)}</td><td class="number">${session.resumes}</td>
</tr>`,
)}
</tbody>
</table>`
}
</section>
${next ? html`<nav class="pages"><a rel="next" href="/sessions?${query(filter, next)}">Older sessions →</a></nav>` : ""}`;
}
