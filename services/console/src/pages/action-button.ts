import { html, type SafeHtml } from "./html.js";
import type { PageSettings } from "./layout.js";

/** A button that asks `confirm` in a dialog, then posts `body` to /api/actions/<action>; nothing while read-only. */
export function actionButton(settings: PageSettings, action: "fork" | "redrive" | "stop", body: object, label: string, confirm: string): SafeHtml | "" {
  if (!settings.actionsEnabled) return "";
  return html`<button type="button" class="action action-${action}" data-action="${action}" data-body="${JSON.stringify(body)}" data-confirm="${confirm}">${label}</button>`;
}
