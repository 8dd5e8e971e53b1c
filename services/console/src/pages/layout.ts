import { html, SafeHtml } from "./html.js";

export interface PageSettings {
  actionsEnabled: boolean;
  refreshSeconds: number;
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
header { display: flex; gap: 1.5em; align-items: baseline; padding: .8em 1.5em; background: #1d232a; color: #fff; }
header a { color: #cfe3ff; text-decoration: none; } header .brand { font-weight: 600; color: #fff; }
header .mode { margin-left: auto; font-size: 12px; padding: .1em .6em; border-radius: 1em; background: #3b4652; }
main { padding: 1em 1.5em 3em; }
h1 { font-size: 20px; margin: .3em 0 .6em; } h2 { font-size: 16px; margin: 1.6em 0 .5em; }
table { border-collapse: collapse; background: #fff; width: 100%; }
th, td { text-align: left; padding: .35em .7em; border-bottom: 1px solid #e4e7eb; vertical-align: top; }
th { background: #eef1f4; font-weight: 600; } td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
.status { padding: .05em .5em; border-radius: .8em; font-size: 12px; background: #e4e7eb; }
.status-active { background: #d5f5dd; } .status-interrupted { background: #ffe3b8; } .status-completed { background: #dce8ff; } .status-stopped { background: #e4e7eb; }
form.filters { display: flex; gap: .8em; align-items: end; margin-bottom: 1em; flex-wrap: wrap; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: #56606b; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: .6em; margin: 0 0 1em; }
.facts div { background: #fff; padding: .5em .8em; border-radius: 6px; } .facts dt { font-size: 12px; color: #56606b; } .facts dd { margin: 0; font-weight: 600; }
svg.equity { width: 100%; max-width: 900px; background: #fff; border-radius: 6px; }
svg .axis { stroke: #9aa4ae; } svg .label { font-size: 11px; fill: #56606b; }
svg .curve { fill: none; stroke: #1f6feb; stroke-width: 2; } svg .curve-point { fill: #1f6feb; }
svg .resume { stroke: #d97706; stroke-dasharray: 4 3; }
.gap td { background: #fff6e5; } .empty { color: #56606b; }
.step { background: #fff; border-radius: 6px; padding: .6em .9em; margin: .6em 0; border-left: 4px solid #1f6feb; }
.step.resumed { border-left-color: #d97706; } .step h3 { font-size: 14px; margin: 0 0 .3em; } .step .meta { font-size: 12px; color: #56606b; }
.step pre { white-space: pre-wrap; background: #f6f7f9; padding: .4em .6em; margin: .3em 0; font-size: 12px; }
.event { background: #fff6e5; padding: .4em .8em; border-radius: 6px; margin: .6em 0; }
nav.pages { margin-top: 1em; }
button.action { font-size: 12px; margin: .2em 0; }
.outcome:empty { display: none; } .outcome { padding: .5em .8em; border-radius: 6px; margin: 0 0 1em; background: #dce8ff; }
.outcome.refused { background: #ffe0e0; } .outcome.done { background: #d5f5dd; }
dialog { border: 1px solid #9aa4ae; border-radius: 8px; max-width: 36em; } dialog menu { display: flex; gap: .6em; justify-content: flex-end; padding: 0; }
.copied { font-size: 12px; color: #8a5a00; }
`;

/** Every page: the header, the mode, and the live script that refreshes the `data-live` parts as data changes. */
export function layout(title: string, settings: PageSettings, body: SafeHtml): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Savepoint console</title>
<style>${new SafeHtml(STYLE)}</style>
</head>
<body>
<header>
  <a class="brand" href="/sessions">Savepoint console</a>
  <a href="/sessions">Sessions</a>
  <a href="/sessions?service=reasoner&amp;status=interrupted">Interrupted runs</a>
  <a href="/fleet">Fleet</a>
  <span class="mode">${settings.actionsEnabled ? "actions enabled" : "read-only"}</span>
</header>
<main data-refresh-seconds="${settings.refreshSeconds}">
${settings.actionsEnabled ? html`<div id="action-outcome" class="outcome" role="status"></div>` : ""}
${body}
</main>
${
  settings.actionsEnabled
    ? html`<dialog id="confirm-action"><form method="dialog"><p class="question"></p>
<menu><button value="cancel" class="cancel">Cancel</button> <button value="confirm" class="confirm">Confirm</button></menu></form></dialog>
<script src="/assets/actions.js" defer></script>`
    : ""
}
<script src="/assets/live.js" defer></script>
</body>
</html>`;
}
