// The terminal tables of an evaluation: per category, per structure type, held-out vs seen, and the
// challenge's aggregates. Used by lsmseg evaluate, demo and experiment.
import { CATEGORY_NAMES } from "../dataset/index.ts";
import { EXTRA_METRICS, type GroupSummary, type MetricStats, type MetricsJson } from "./evaluate.ts";

/** "0.8123 ± 0.0456", with NaN counts; "–" for no cases. */
export function meanStd(s: MetricStats | undefined): string {
  if (!s || s.n === 0) return "–";
  const f = (x: number) => (Number.isNaN(x) ? "NaN" : x.toFixed(4));
  const main = s.n < 2 ? f(s.mean) : `${f(s.mean)} ± ${f(s.std)}`;
  return s.nan ? `${main} (${s.nan} NaN; without: ${f(s.nanmean)} ± ${f(s.nanstd)})` : main;
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((v, c) => v.padEnd(widths[c])).join("  ").trimEnd()).join("\n");
}

function row(name: string, g: GroupSummary): string[] {
  return [name, String(g.cases), meanStd(g.dice), meanStd(g.cldice), meanStd(g.panoptic_quality)];
}

function extraRow(name: string, g: GroupSummary): string[] {
  return [name, String(g.cases), ...EXTRA_METRICS.map((k) => meanStd(g.extra?.[k]))];
}

/** The tables lsmseg evaluate prints, as one string; with `extra`, also the extra metrics per category and type. */
export function metricsTables(m: MetricsJson, opts: { extra?: boolean } = {}): string {
  const lines: string[] = [];
  const head = ["", "cases", "Dice", "clDice", "PQ"];
  lines.push(table([head, ...CATEGORY_NAMES.map((c) => row(c, m.categories[c])), row("overall", m.overall)]));
  lines.push("\n" + table([head, ...Object.entries(m.structures).map(([name, s]) => row(`${name}${s.role === "heldOut" ? " (held out)" : ""}`, s))]));
  if (opts.extra) {
    const head = ["extra (not the challenge's)", "cases", "Betti-0 error", "Betti-1 error", "HD95 (voxels)", "HD95 (µm)"];
    lines.push("\n" + table([head, ...CATEGORY_NAMES.map((c) => extraRow(c, m.categories[c])), extraRow("overall", m.overall)]));
    lines.push("\n" + table([head.map((h, i) => (i === 0 ? "" : h)), ...Object.entries(m.structures).map(([name, s]) => extraRow(name, s))]));
  }
  if (m.roles) lines.push(`\nheld-out types: ${m.roles.heldOut.cases} cases; seen types: ${m.roles.seen.cases} cases (aggregates of each in metrics.json)`);
  const a = m.aggregates;
  const f = (x: number) => (Number.isNaN(x) ? "NaN" : x.toFixed(4));
  lines.push(`\nchallenge aggregates: iso_dice ${f(a.iso_dice_mean)} ± ${f(a.iso_dice_std)}, iso_panoptic_quality ${f(a.iso_panoptic_quality_mean)} ± ${f(a.iso_panoptic_quality_std)}, con_dice ${f(a.con_dice_mean)} ± ${f(a.con_dice_std)}, con_cldice ${f(a.con_cldice_mean)} ± ${f(a.con_cldice_std)}`);
  const nan = a.iso_panoptic_quality_nan_cases + a.con_cldice_nan_cases;
  if (nan) lines.push(`${nan} NaN case value(s): the challenge's mean is NaN then; *_nanmean in metrics.json leaves them out`);
  if (m.unmatchedPredictions.length) lines.push(`${m.unmatchedPredictions.length} prediction(s) without ground truth, not scored`);
  return lines.join("\n");
}
