import type { SessionRow, TimelineEntry } from "../store.js";
import type { ReasoningView } from "../views/reasoning.js";
import type { TradingView } from "../views/trading.js";
import { equityChart } from "./equity-chart.js";
import { formatDuration, formatPl, formatTime, formatUsd } from "./format.js";
import { html, type SafeHtml } from "./html.js";
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

/** Any session: its facts and its checkpoint timeline. */
export function sessionPage(session: SessionRow, timeline: readonly TimelineEntry[]): SafeHtml {
  return html`<h1>${session.service} · ${session.sessionId}</h1>
<section data-live="session">${facts(sessionFacts(session))}
<h2>Checkpoints</h2>${timelineTable(timeline)}</section>`;
}

/** A trading session: equity curve, positions, closed trades, resumes and the timeline. */
export function tradingPage(session: SessionRow, view: TradingView, timeline: readonly TimelineEntry[]): SafeHtml {
  return html`<h1>Trading session ${session.sessionId}</h1>
<section data-live="trading">
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
  (resume) => html`<tr><td>${resume.fromEpoch} → ${resume.toEpoch}</td><td>${formatDuration(resume.downtimeMs)}</td>
<td>${formatTime(resume.lastBefore.takenAt)} (${resume.lastBefore.kind}, ${resume.lastBefore.status})</td><td>${formatTime(resume.firstAfter.takenAt)} (${resume.firstAfter.kind})</td>
<td>${
    resume.positionsOpened.length + resume.positionsClosed.length + resume.closedTradesAdded === 0
      ? "no differences with the broker"
      : [
          resume.positionsOpened.length ? `adopted ${resume.positionsOpened.join(", ")}` : "",
          resume.positionsClosed.length ? `gone at the broker ${resume.positionsClosed.join(", ")}` : "",
          resume.closedTradesAdded ? `${resume.closedTradesAdded} trade(s) booked (${formatPl(resume.realizedPlAdded)})` : "",
        ]
          .filter(Boolean)
          .join("; ")
  }</td></tr>`,
)}</tbody></table>`
}
<h2>Checkpoints</h2>
${timelineTable(timeline)}
</section>`;
}

/** A reasoning run: each iteration's step, who wrote it, and the interruptions and resumes between them. */
export function reasoningPage(session: SessionRow, view: ReasoningView): SafeHtml {
  const resumedAt = new Map(view.resumes.filter((resume) => resume.resumedAtIteration !== null).map((resume) => [resume.resumedAtIteration!, resume]));
  return html`<h1>Reasoning run ${session.sessionId}</h1>
<section data-live="reasoning">
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
<div class="meta">epoch ${step.epoch} · seq ${step.seq} · ${step.worker} · ${step.model.model} · ${step.model.calls} call(s), ${step.model.inputTokens}+${step.model.outputTokens} tokens, ${step.model.ms} ms · ${formatTime(step.finishedAt)}</div>
${step.text ? html`<p>${step.text}</p>` : ""}
${step.question ? html`<p><strong>Q:</strong> ${step.question.question}<br><strong>A:</strong> ${step.question.answer}</p>` : ""}
${step.options ? html`<ul>${step.options.map((option) => html`<li><strong>${option.id}</strong> ${option.action}: ${option.thesis}</li>`)}</ul>` : ""}
${step.evaluation ? html`<p>Option ${step.evaluation.optionId} scored ${step.evaluation.score}${step.evaluation.pros?.length ? `; pros: ${step.evaluation.pros.join("; ")}` : ""}${step.evaluation.cons?.length ? `; cons: ${step.evaluation.cons.join("; ")}` : ""}</p>` : ""}
${step.decision ? html`<p class="decision"><strong>Decision: ${step.decision.action}</strong> (confidence ${step.decision.confidence}): ${step.decision.rationale}</p>` : ""}
${step.toolCalls.map((call) => html`<pre>${call.name}(${JSON.stringify(call.input)}) → ${call.isError ? "error: " : ""}${JSON.stringify(call.result)}</pre>`)}
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
