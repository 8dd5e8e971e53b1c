/**
 * The pages' only script, served as /assets/live.js: every `data-refresh-seconds` it fetches the page again
 * (while the tab is visible) and swaps in the parts marked `data-live` whose content changed, so a live
 * session's curve, positions and trace follow new checkpoints without a reload and without losing what a
 * person typed into a filter.
 */
export const LIVE_SCRIPT = `"use strict";
(() => {
  const main = document.querySelector("main[data-refresh-seconds]");
  if (!main) return;
  const seconds = Number(main.dataset.refreshSeconds) || 5;
  let busy = false;
  async function refresh() {
    if (busy || document.visibilityState !== "visible") return;
    busy = true;
    try {
      const response = await fetch(location.href, { headers: { accept: "text/html" }, credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const part of document.querySelectorAll("[data-live]")) {
        const next = fresh.querySelector('[data-live="' + part.dataset.live + '"]');
        if (next && next.innerHTML !== part.innerHTML) part.innerHTML = next.innerHTML;
      }
      document.documentElement.dataset.refreshedAt = new Date().toISOString();
    } catch {
      // The console or the network is away for a moment: the next tick tries again.
    } finally {
      busy = false;
    }
  }
  setInterval(refresh, seconds * 1000);
})();
`;
