import type { EquityPoint } from "../views/trading.js";
import { formatTime, formatUsd } from "./format.js";
import { html, type SafeHtml } from "./html.js";

const WIDTH = 900;
const HEIGHT = 260;
const PAD = { left: 84, right: 16, top: 16, bottom: 36 };

/**
 * The equity curve as an inline SVG, drawn here rather than by a chart library in the browser: the page is
 * complete as served (no script needed to read it), and a curve of a few thousand points is one polyline.
 * Each owner's stretch (epoch) is its own line, so the downtime between a shutdown and the resume shows as a
 * gap, marked by a dashed line at the resume.
 */
export function equityChart(points: readonly EquityPoint[]): SafeHtml {
  const valued = points.filter((point): point is EquityPoint & { portfolioValue: number } => point.portfolioValue !== null);
  if (valued.length === 0) return html`<p class="empty">No portfolio value yet: the trader has not read the account.</p>`;
  const times = valued.map((point) => Date.parse(point.takenAt));
  const values = valued.map((point) => point.portfolioValue);
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  let [v0, v1] = [Math.min(...values), Math.max(...values)];
  if (v0 === v1) [v0, v1] = [v0 - 1, v1 + 1];
  const x = (time: number) => PAD.left + (t1 === t0 ? 0.5 : (time - t0) / (t1 - t0)) * (WIDTH - PAD.left - PAD.right);
  const y = (value: number) => PAD.top + (1 - (value - v0) / (v1 - v0)) * (HEIGHT - PAD.top - PAD.bottom);

  const stretches: Array<{ epoch: number; coordinates: string[] }> = [];
  valued.forEach((point, index) => {
    const last = stretches.at(-1);
    const coordinate = `${x(times[index]!).toFixed(1)},${y(point.portfolioValue).toFixed(1)}`;
    if (last && last.epoch === point.epoch) last.coordinates.push(coordinate);
    else stretches.push({ epoch: point.epoch, coordinates: [coordinate] });
  });
  const resumes = stretches.slice(1).map((stretch) => Number(stretch.coordinates[0]!.split(",")[0]));

  return html`<svg class="equity" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="Equity curve: portfolio value from ${formatUsd(values[0]!)} to ${formatUsd(values.at(-1)!)} over ${valued.length} snapshots">
  <line class="axis" x1="${PAD.left}" y1="${HEIGHT - PAD.bottom}" x2="${WIDTH - PAD.right}" y2="${HEIGHT - PAD.bottom}"/>
  <line class="axis" x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${HEIGHT - PAD.bottom}"/>
  <text class="label" x="${PAD.left - 6}" y="${y(v1) + 4}" text-anchor="end">${formatUsd(v1)}</text>
  <text class="label" x="${PAD.left - 6}" y="${y(v0) + 4}" text-anchor="end">${formatUsd(v0)}</text>
  <text class="label" x="${PAD.left}" y="${HEIGHT - 12}">${formatTime(new Date(t0).toISOString())}</text>
  <text class="label" x="${WIDTH - PAD.right}" y="${HEIGHT - 12}" text-anchor="end">${formatTime(new Date(t1).toISOString())}</text>
  ${resumes.map((at) => html`<line class="resume" x1="${at.toFixed(1)}" y1="${PAD.top}" x2="${at.toFixed(1)}" y2="${HEIGHT - PAD.bottom}"><title>resumed</title></line>`)}
  ${stretches.map((stretch) =>
    stretch.coordinates.length === 1
      ? html`<circle class="curve-point" data-epoch="${stretch.epoch}" cx="${stretch.coordinates[0]!.split(",")[0]}" cy="${stretch.coordinates[0]!.split(",")[1]}" r="2.5"/>`
      : html`<polyline class="curve" data-epoch="${stretch.epoch}" points="${stretch.coordinates.join(" ")}"/>`,
  )}
</svg>`;
}
