import { describe, expect, it } from "vitest";
import { equityChart } from "../src/pages/equity-chart.js";
import { html } from "../src/pages/html.js";
import { reasoningPage, tradingPage } from "../src/pages/session-pages.js";
import type { SessionRow, StoredState } from "../src/store.js";
import { reasoningView } from "../src/views/reasoning.js";
import { tradingView } from "../src/views/trading.js";
import { reasoningSnapshots, TRADING_RESUME, tradingSnapshots } from "./support.js";

/** The seeded envelopes as the store reads them back. */
const stored = (envelopes: ReturnType<typeof tradingSnapshots>): StoredState[] =>
  envelopes.map(({ epoch, seq, kind, status, schemaVersion, takenAt, state }) => ({ epoch, seq, kind, status, schemaVersion, takenAt, persistedAt: takenAt, state }));

const tradingSession: SessionRow = {
  service: "trader", sessionId: "trading-session-1", ownerId: "PA-TEST-ACCOUNT", status: "active", latest: { epoch: 2, seq: 2 }, startedAt: "2026-01-05T14:30:00.000Z",
  updatedAt: "2026-01-05T14:47:00.000Z", checkpoints: 9, bytes: 9_000, resumes: 1, cursor: "9",
};

describe("tradingView", () => {
  it("leaves out a snapshot it cannot read, saying why, and builds the rest from the others", () => {
    const snapshots = stored(tradingSnapshots());
    snapshots[2] = { ...snapshots[2]!, state: { positions: "none" } };
    snapshots[3] = { ...snapshots[3]!, schemaVersion: 2 };

    const view = tradingView(snapshots);

    expect(view.unreadable.map(({ epoch, seq }) => `${epoch}.${seq}`)).toEqual(["1.2", "1.3"]);
    expect(view.unreadable[1]!.problem).toBe("schemaVersion 2; the console reads 1");
    expect(view.equity).toHaveLength(7);
    expect(view.closings.map((closing) => closing.realizedPl)).toEqual([120, 30]);
  });

  it("takes each resume's report from the trader's record of it, and shows its changes under their categories", () => {
    const view = tradingView(stored(tradingSnapshots()));
    expect(view.resumes).toEqual([expect.objectContaining({ toEpoch: 2, report: TRADING_RESUME })]);

    const page = tradingPage(tradingSession, view, [], { actionsEnabled: false, refreshSeconds: 5 }).text;
    const report = /<div class="report" data-epoch="2">(.*?)<\/div>/s.exec(page)![1]!;
    expect(report).toContain("Positions: 0 in the checkpoint, 1 at the broker, 1 after reconciling; 1 trade(s) booked (+$30.00)");
    // In the trader's order of categories, not the report's order of changes.
    expect([...report.matchAll(/<h4>(.*?)<\/h4><ul data-category="(\w+)"><li data-kind="(\w+)">/g)].map((match) => match.slice(1))).toEqual([
      ["Positions adopted or corrected", "positions", "position_adopted"],
      ["Trades booked", "trades", "position_closed"],
    ]);
  });

  it("falls back to what the snapshots around a resume differ by when the trader recorded no report of it", () => {
    const snapshots = stored(tradingSnapshots()).map((snapshot) => {
      const { resumes: _, ...state } = snapshot.state as { resumes?: unknown };
      return { ...snapshot, state };
    });
    const view = tradingView(snapshots);
    expect(view.resumes).toEqual([expect.objectContaining({ report: null, positionsOpened: ["MSFT#1"], closedTradesAdded: 1, realizedPlAdded: 30 })]);
    expect(tradingPage(tradingSession, view, [], { actionsEnabled: false, refreshSeconds: 5 }).text).toContain("<td>adopted MSFT#1; 1 trade(s) booked (+$30.00)</td>");
  });

  it("shows an empty session as empty", () => {
    expect(tradingView([])).toMatchObject({ equity: [], positions: [], closings: [], resumes: [], closedTrades: 0, strategy: null });
  });
});

describe("reasoningView", () => {
  it("keeps the newest owner's copy of an iteration written twice, and leaves out an abandoned chain's steps", () => {
    const snapshots = stored(reasoningSnapshots());
    const second = snapshots[2]!;
    const rewritten = { ...second, epoch: 2, seq: 2, state: { ...(second.state as object), run: { ...(snapshots[4]!.state as { run: object }).run } } };
    const abandoned = { ...snapshots[1]!, epoch: 0, seq: 1, state: { ...(snapshots[1]!.state as object), chain: 0 } };
    const view = reasoningView([abandoned, ...snapshots.slice(0, 5), rewritten, ...snapshots.slice(5)]);

    expect(view.iterations.map((step) => [step.iteration, step.epoch, step.worker])).toEqual([
      [1, 1, "host-a:101"],
      [2, 2, "host-b:202"],
      [3, 2, "host-b:202"],
      [4, 2, "host-b:202"],
    ]);
    expect(view.resumes.find((resume) => resume.toEpoch === 2)).toMatchObject({ resumedAtIteration: 2, modelCallsSaved: 1 });
  });

  it("escapes what the model wrote when the trace is rendered", () => {
    const snapshots = stored(reasoningSnapshots());
    const step = snapshots[1]!.state as { step: { text?: string } };
    step.step.text = '<script>alert("x")</script>';
    const session: SessionRow = {
      service: "reasoner", sessionId: "s", ownerId: null, status: "completed", latest: { epoch: 2, seq: 5 }, startedAt: "2026-01-05T14:40:00.000Z",
      updatedAt: "2026-01-05T14:53:00.000Z", checkpoints: 8, bytes: 4_000, resumes: 1, cursor: "8",
    };

    const page = reasoningPage(session, reasoningView(snapshots), { actionsEnabled: true, refreshSeconds: 5 }).text;

    expect(page).not.toContain("<script>");
    expect(page).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
  });
});

describe("equityChart", () => {
  it("draws one line per owner and marks each resume", () => {
    const chart = equityChart(tradingView(stored(tradingSnapshots())).equity).text;
    expect(chart.match(/<polyline class="curve"/g)).toHaveLength(2);
    expect(chart.match(/<line class="resume"/g)).toHaveLength(1);
  });

  it("says so when no snapshot has a portfolio value", () => {
    expect(equityChart([]).text).toBe(html`<p class="empty">No portfolio value yet: the trader has not read the account.</p>`.text);
  });
});
