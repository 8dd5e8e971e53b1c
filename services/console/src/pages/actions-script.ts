/**
 * The script behind the action buttons, served as /assets/actions.js on consoles with actions enabled. A
 * button names its action and its JSON body; clicking it asks for confirmation in a dialog, and only then
 * posts the action (same origin, JSON: see crossSiteProblem in console-routes.ts). The answer, or the
 * refusal's code and message, is shown under the header, outside the parts the live script refreshes.
 */
export const ACTIONS_SCRIPT = `"use strict";
(() => {
  const dialog = document.getElementById("confirm-action");
  const outcome = document.getElementById("action-outcome");
  if (!dialog || !outcome) return;
  let pending = null;
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("button[data-action]") : null;
    if (!button) return;
    pending = { action: button.dataset.action, body: button.dataset.body };
    dialog.querySelector(".question").textContent = button.dataset.confirm;
    dialog.showModal();
  });
  dialog.addEventListener("close", async () => {
    const chosen = pending;
    pending = null;
    if (dialog.returnValue !== "confirm" || !chosen) return;
    outcome.className = "outcome busy";
    outcome.textContent = chosen.action + "…";
    try {
      const response = await fetch("/api/actions/" + chosen.action, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        credentials: "same-origin",
        body: chosen.body,
      });
      const answer = await response.json();
      outcome.replaceChildren();
      if (!response.ok) {
        outcome.className = "outcome refused";
        outcome.dataset.code = answer.error.code;
        outcome.textContent = "Refused (" + answer.error.code + "): " + answer.error.message;
        return;
      }
      outcome.className = "outcome done";
      outcome.dataset.code = "ok";
      if (answer.action === "fork") {
        outcome.append("Forked: new run ");
        const link = document.createElement("a");
        link.href = "/sessions/reasoner/" + encodeURIComponent(answer.sessionId);
        link.textContent = answer.sessionId;
        outcome.append(link, " starts from the first " + answer.forkOf.iteration + " iteration(s) of " + answer.forkOf.sessionId + ".");
      } else if (answer.action === "redrive") {
        outcome.textContent = "Re-driven " + answer.sessionId + ": attempt " + answer.nextAttempt + " resumes it from its last checkpoint.";
      } else {
        outcome.textContent = "Stopped " + answer.sessionId + " (epoch " + answer.epoch + "): final checkpoint " + answer.status + (answer.confirmed ? ", confirmed." : ", not confirmed.");
      }
    } catch (error) {
      outcome.className = "outcome refused";
      outcome.dataset.code = "unreachable";
      outcome.textContent = "The console did not answer: " + error.message;
    }
  });
})();
`;
