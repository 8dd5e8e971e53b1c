import type { SessionRow, TimelineEntry } from "../store.js";
import type { ReasoningView } from "../views/reasoning.js";
import type { StoredResume, TradingResume, TradingView } from "../views/trading.js";
import { equityChart } from "./equity-chart.js";
import { formatDuration, formatPl, formatTime, formatUsd } from "./format.js";
import { actionButton } from "./action-button.js";
import { html, type SafeHtml } from "./html.js";
import type { PageSettings } from "./layout.js";
import { statusBadge } from "./sessions-page.js";
import { timelineTable } from "./timeline-table.js";

function facts(entries: Array<[string, SafeHtml | string | number]>): SafeHtml {
  return html`<dl class="facts">${entries.map(([name, value]) => html`<div><dt>${name}</dt><dd>${value}</dd></div>`)}</dl>`;
}

function sessionFacts(session: SessionRow): Array<[string, SafeHtml | string | number]> {
  return [
    ["status", statusBadge(session.status)],
    ["owner", session.ownerId ?? "—"],
    ["latest (epoch, seq)", `${session.latest.epoch}, ${session.latest.seq}`],
    ["started", formatTime(session.startedAt)],
    ["updated", formatTime(session.updatedAt)],
    ["checkpoints", session.checkpoints],
    ["resumes", session.resumes],
  ];
}

const unreadableNote = (unreadable: ReadonlyArray<{ epoch: number; seq: number; problem: string }>) =>
  unreadable.length === 0
    ? ""
    : html`<p class="event">${unreadable.length} checkpoint(s) could not be read and are left out, first (${unreadable[0]!.epoch}, ${unreadable[0]!.seq}): ${unreadable[0]!.problem}</p>`;

/** The trader's headings for the categories of its resume records' changes (resume-record.ts, CHANGE_CATEGORIES). */
const CATEGORY_HEADINGS: Record<string, string> = {
  positions: "Positions adopted or corrected",
  trades: "Trades booked",
  orders: "Orders found at the broker",
  client_order_ids: "Client order ids resolved",
  protection: "Protection",
};

/** Where a category's heading goes: in the order above, any the console does not know after them. */
const categoryRank = (category: string) => {
  const rank = Object.keys(CATEGORY_HEADINGS).indexOf(category);
  return rank === -1 ? Number.POSITIVE_INFINITY : rank;
};

/** A resume's reconciliation as the trader reported it: the counts, then each change under its category's heading. */
function storedReport(report: StoredResume): SafeHtml {
  const categories = [...new Set(report.changes.map((item) => item.category))].sort((a, b) => categoryRank(a) - categoryRank(b));
  return html`<div class="report" data-epoch="${report.epoch}"><p class="summary">Positions: ${report.positions.before} in the checkpoint, ${report.positions.atBroker} at the broker, ${report.positions.after} after reconciling; ${report.closedTradesAdded} trade(s) booked (${formatPl(report.realizedPlAdded)})${report.changes.length === 0 ? "; no differences with the broker" : ""}</p>
${categories.map(
  (category) => html`<h4>${CATEGORY_HEADINGS[category] ?? category}</h4><ul data-category="${category}">${report.changes
    .filter((item) => item.category === category)
    .map((item) => html`<li data-kind="${item.change.kind}">${item.text}</li>`)}</ul>`,
)}</div>`;
}

/** What the two snapshots around a resume differ by: all there is for a resume the trader kept no report of. */
function derivedReport(resume: TradingResume): string {
  if (resume.positionsOpened.length + resume.positionsClosed.length + resume.closedTradesAdded === 0) return "no differences with the broker";
  return [
    resume.positionsOpened.length ? `adopted ${resume.positionsOpened.join(", ")}` : "",
    resume.positionsClosed.length ? `gone at the broker ${resume.positionsClosed.join(", ")}` : "",
    resume.closedTradesAdded ? `${resume.closedTradesAdded} trade(s) booked (${formatPl(resume.realizedPlAdded)})` : "",
  ]
    .filter(Boolean)
    .join("; ");
}

/** Any session: its facts and its checkpoint timeline. */
export function sessionPage(session: SessionRow, timeline: readonly TimelineEntry[]): SafeHtml {
  return html`<h1>${session.service} · ${session.sessionId}</h1>
<section data-live="session">${facts(sessionFacts(session))}
<h2>Checkpoints</h2>${timelineTable(timeline)}</section>`;
}

/** A trading session: equity curve, positions, closed trades, resumes and the timeline. */
export function tradingPage(session: SessionRow, view: TradingView, timeline: readonly TimelineEntry[], settings: PageSettings): SafeHtml {
  return html`<h1>Trading session ${session.sessionId}</h1>
<section data-live="trading">
${
  session.status === "active"
    ? actionButton(
        settings,
        "stop",
        { sessionId: session.sessionId },
        "Stop session",
        `Stop trading session ${session.sessionId}? Its trader finishes the step in progress, writes a final checkpoint with status stopped and exits; --resume-session ${session.sessionId} continues it later.`,
      )
    : ""
}
${facts([
  ...sessionFacts(session),
  ["symbols", view.symbols.join(", ") || "—"],
  ["strategy", view.strategy ?? "—"],
  ["portfolio value", formatUsd(view.account?.portfolioValue ?? null)],
  ["realized P&L", formatPl(view.realizedPl)],
  ["closed trades", view.closedTrades],
])}
${unreadableNote(view.unreadable)}
<h2>Equity curve</h2>
${equityChart(view.equity)}
<h2>Open positions</h2>
${
  view.positions.length === 0
    ? html`<p class="empty">None.</p>`
    : html`<table class="positions"><thead><tr><th>symbol</th><th>side</th><th class="number">qty</th><th class="number">entry</th><th class="number">stop loss</th><th class="number">take profit</th><th>origin</th><th>opened</th></tr></thead><tbody>
${view.positions.map(
  (position) => html`<tr><td>${position.symbol}</td><td>${position.side}</td><td class="number">${position.qty}</td><td class="number">${formatUsd(position.entryPrice)}</td>
<td class="number">${formatUsd(position.stopLoss)}</td><td class="number">${formatUsd(position.takeProfit)}</td><td>${position.origin}</td><td>${formatTime(position.openedAt)}</td></tr>`,
)}</tbody></table>`
}
<h2>Closed trades</h2>
${
  view.closings.length === 0
    ? html`<p class="empty">None yet.</p>`
    : html`<table class="closings"><thead><tr><th>booked at</th><th class="number">trades</th><th>positions closed</th><th class="number">realized P&amp;L</th></tr></thead><tbody>
${view.closings.map(
  (closing) => html`<tr><td>${formatTime(closing.takenAt)}</td><td class="number">${closing.trades}</td>
<td>${closing.positions.map((position) => `${position.symbol} ${position.side} ${position.qty} @ ${formatUsd(position.entryPrice)}`).join("; ") || "(opened and closed between checkpoints)"}</td>
<td class="number">${formatPl(closing.realizedPl)}</td></tr>`,
)}</tbody></table>`
}
<h2>Resumes</h2>
${
  view.resumes.length === 0
    ? html`<p class="empty">Never interrupted.</p>`
    : html`<table class="resumes"><thead><tr><th>epoch</th><th>down</th><th>last before</th><th>first after</th><th>reconciliation</th></tr></thead><tbody>
${view.resumes.map(
  (resume) => html`<tr><td>${resume.fromEpoch} → ${resume.toEpoch}</td><td>${formatDuration(resume.report?.downtimeMs ?? resume.downtimeMs)}</td>
<td>${formatTime(resume.lastBefore.takenAt)} (${resume.lastBefore.kind}, ${resume.lastBefore.status})</td><td>${formatTime(resume.firstAfter.takenAt)} (${resume.firstAfter.kind})</td>
<td>${resume.report ? storedReport(resume.report) : derivedReport(resume)}</td></tr>`,
)}</tbody></table>`
}
<h2>Checkpoints</h2>
${timelineTable(timeline)}
</section>`;
}

/** A reasoning run: each iteration's step, who wrote it, and the interruptions and resumes between them. */
export function reasoningPage(session: SessionRow, view: ReasoningView, settings: PageSettings): SafeHtml {
  const resumedAt = new Map(view.resumes.filter((resume) => resume.resumedAtIteration !== null).map((resume) => [resume.resumedAtIteration!, resume]));
  // A fork starts from steps before the decision, and must leave an iteration to think on.
  const decidedAt = view.iterations.find((step) => step.decision)?.iteration ?? Number.POSITIVE_INFINITY;
  const forkable = (iteration: number) => iteration < decidedAt && (view.maxIterations === null || iteration < view.maxIterations);
  return html`<h1>Reasoning run ${session.sessionId}</h1>
<section data-live="reasoning">
${view.forkOf ? html`<p class="event fork-of">Forked from <a href="/sessions/reasoner/${encodeURIComponent(view.forkOf.sessionId)}">${view.forkOf.sessionId}</a> at iteration ${view.forkOf.iteration}: its first ${view.forkOf.iteration} iteration(s) were copied into this run.</p>` : ""}
${
  view.deadLettered
    ? html`<p class="event dead-letter">Dead-lettered: the run failed for good and its checkpoints are kept. ${actionButton(
        settings,
        "redrive",
        { sessionId: session.sessionId },
        "Re-drive",
        `Re-drive ${session.sessionId}? Its failed think job goes back to the reasoning queue and the next attempt resumes from its last checkpoint (iteration ${view.iterations.length}).`,
      )}</p>`
    : ""
}
${facts([
  ...sessionFacts(session),
  ["agent", view.agentId ?? "—"],
  ["symbol", view.symbol ?? "—"],
  ["iterations", `${view.iterations.length} of ${view.maxIterations ?? "?"}`],
  ["model calls", view.modelCalls],
  ["model calls saved by resumes", view.resumes.reduce((sum, resume) => sum + resume.modelCallsSaved, 0)],
])}
${unreadableNote(view.unreadable)}
<h2>Attempts</h2>
<table class="attempts"><thead><tr><th class="number">epoch</th><th>worker</th><th>claimed</th><th>market</th></tr></thead><tbody>
${view.attempts.map(
  (attempt) => html`<tr><td class="number">${attempt.epoch}</td><td>${attempt.worker}</td><td>${formatTime(attempt.claimedAt)}</td>
<td>${attempt.market ? `${formatUsd(attempt.market.price)} (${attempt.market.source}, as of ${formatTime(attempt.marketAsOf)})` : formatTime(attempt.marketAsOf)}</td></tr>`,
)}
</tbody></table>
<h2>Trace</h2>
${view.iterations.map((step) => {
  const resume = resumedAt.get(step.iteration);
  return html`${resume ? html`<div class="event resume">Resumed by ${resume.worker ?? "?"} (epoch ${resume.toEpoch}) after ${formatDuration(resume.downtimeMs)}: ${resume.modelCallsSaved} model call(s) taken from checkpoints</div>` : ""}
<article class="step${resume ? " resumed" : ""}" data-iteration="${step.iteration}">
<h3>Iteration ${step.iteration} · ${step.type}</h3>
<div class="meta">${view.forkOf && step.iteration <= view.forkOf.iteration ? html`<span class="copied">copied from ${view.forkOf.sessionId}</span> · ` : ""}epoch ${step.epoch} · seq ${step.seq} · ${step.worker} · ${step.model.model} · ${step.model.calls} call(s), ${step.model.inputTokens}+${step.model.outputTokens} tokens, ${step.model.ms} ms · ${formatTime(step.finishedAt)}</div>
${step.text ? html`<p>${step.text}</p>` : ""}
${step.question ? html`<p><strong>Q:</strong> ${step.question.question}<br><strong>A:</strong> ${step.question.answer}</p>` : ""}
${step.options ? html`<ul>${step.options.map((option) => html`<li><strong>${option.id}</strong> ${option.action}: ${option.thesis}</li>`)}</ul>` : ""}
${step.evaluation ? html`<p>Option ${step.evaluation.optionId} scored ${step.evaluation.score}${step.evaluation.pros?.length ? `; pros: ${step.evaluation.pros.join("; ")}` : ""}${step.evaluation.cons?.length ? `; cons: ${step.evaluation.cons.join("; ")}` : ""}</p>` : ""}
${step.decision ? html`<p class="decision"><strong>Decision: ${step.decision.action}</strong> (confidence ${step.decision.confidence}): ${step.decision.rationale}</p>` : ""}
${step.toolCalls.map((call) => html`<pre>${call.name}(${JSON.stringify(call.input)}) → ${call.isError ? "error: " : ""}${JSON.stringify(call.result)}</pre>`)}
${
  forkable(step.iteration)
    ? actionButton(
        settings,
        "fork",
        { sessionId: session.sessionId, iteration: step.iteration },
        `Fork from iteration ${step.iteration}`,
        `Fork ${session.sessionId} at iteration ${step.iteration}? A new run starts from its first ${step.iteration} iteration(s) and thinks on from there; this run is untouched.`,
      )
    : ""
}
</article>`;
})}
<h2>Events</h2>
${
  view.events.length === 0
    ? html`<p class="empty">None.</p>`
    : view.events.map((event) =>
        event.type === "interrupted"
          ? html`<div class="event">${formatTime(event.takenAt)} · interrupted at iteration ${event.atIteration} on ${event.worker} (epoch ${event.epoch}): ${event.reason}</div>`
          : event.type === "dead_lettered"
            ? html`<div class="event">${formatTime(event.takenAt)} · dead-lettered (${event.cause}) on ${event.worker}: ${event.reason}</div>`
            : html`<div class="event">${formatTime(event.takenAt)} · completed (epoch ${event.epoch}): ${JSON.stringify(event.result)}</div>`,
      )
}
</section>`;
}
