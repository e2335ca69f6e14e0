// The report's HTML pieces: escaping, the metric tables (one column per run, so scratch and SSL sit side by
// side) and the page around them. Every number cell names where its value lives in metrics.json
// (data-run, data-mean, data-std: "/"-separated paths), so a test can check the page against the file.
import { CATEGORY_NAMES } from "../dataset/index.ts";
import type { GroupSummary, MetricStats } from "../eval/evaluate.ts";
import { meanStd } from "../eval/table.ts";
import type { RunFiles } from "./run.ts";

export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

const f4 = (x: number) => (Number.isNaN(x) ? "NaN" : x.toFixed(4));

const METRICS = [["dice", "Dice"], ["cldice", "clDice"], ["panoptic_quality", "PQ"]] as const;

/** A number cell for `stats` found at `path` in run `run`'s metrics.json ("–" when the group has no such metric). */
function statCell(run: number, path: string, stats: MetricStats | undefined): string {
  if (!stats || stats.n === 0) return `<td class="num empty">–</td>`;
  const std = stats.n < 2 ? "" : ` data-std="${escapeHtml(`${path}/std`)}"`; // meanStd shows no std for one case
  return `<td class="num" data-run="${run}" data-mean="${escapeHtml(`${path}/mean`)}"${std}>${escapeHtml(meanStd(stats))}</td>`;
}

/** Two header rows: the metric names, then a run label under each (one row when there is one run). */
function metricHead(first: string[], runs: RunFiles[], metrics: ReadonlyArray<readonly [string, string]>): string {
  const lead = first.map((h) => `<th rowspan="${runs.length > 1 ? 2 : 1}">${escapeHtml(h)}</th>`).join("");
  if (runs.length === 1) return `<tr>${lead}${metrics.map(([, name]) => `<th>${name}</th>`).join("")}</tr>`;
  return `<tr>${lead}${metrics.map(([, name]) => `<th colspan="${runs.length}">${name}</th>`).join("")}</tr>`
    + `<tr>${metrics.map(() => runs.map((r) => `<th class="run">${escapeHtml(r.label)}</th>`).join("")).join("")}</tr>`;
}

function groupCells(runs: RunFiles[], pathOf: (r: RunFiles) => string, groupOf: (r: RunFiles) => GroupSummary | undefined): string {
  return METRICS.map(([key]) => runs.map((r, i) => statCell(i, `${pathOf(r)}/${key}`, groupOf(r)?.[key])).join("")).join("");
}

function casesCell(runs: RunFiles[], groupOf: (r: RunFiles) => GroupSummary | undefined): string {
  const counts = [...new Set(runs.map((r) => groupOf(r)?.cases ?? 0))];
  return `<td class="num">${counts.join(" / ")}</td>`;
}

/** Per ranking category and overall: cases, Dice, clDice, PQ (mean ± sample std over cases). */
export function categoryTable(runs: RunFiles[]): string {
  const rows = CATEGORY_NAMES.map((c) => `<tr><th scope="row">${c}</th>${casesCell(runs, (r) => r.metrics.categories[c])}${groupCells(runs, () => `categories/${c}`, (r) => r.metrics.categories[c])}</tr>`);
  rows.push(`<tr class="total"><th scope="row">overall</th>${casesCell(runs, (r) => r.metrics.overall)}${groupCells(runs, () => "overall", (r) => r.metrics.overall)}</tr>`);
  return `<table class="metrics" id="table-categories"><thead>${metricHead(["category", "cases"], runs, METRICS)}</thead><tbody>${rows.join("")}</tbody></table>`;
}

/** Per structure type, held-out types marked. */
export function structureTable(runs: RunFiles[]): string {
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.metrics.structures)))];
  const rows = names.map((name) => {
    const s = runs.map((r) => r.metrics.structures[name]).find((x) => x)!;
    const heldOut = s.role === "heldOut";
    return `<tr${heldOut ? ` class="held-out"` : ""}><th scope="row">${escapeHtml(name)}${heldOut ? ` <span class="badge">held out</span>` : ""}</th><td>${s.category} ${s.density}</td>`
      + `${casesCell(runs, (r) => r.metrics.structures[name])}${groupCells(runs, () => `structures/${name}`, (r) => r.metrics.structures[name])}</tr>`;
  });
  return `<table class="metrics" id="table-structures"><thead>${metricHead(["structure type", "category", "cases"], runs, METRICS)}</thead><tbody>${rows.join("")}</tbody></table>`;
}

const AGGREGATES = [["iso_dice", "isolated Dice"], ["iso_panoptic_quality", "isolated PQ"], ["con_dice", "contiguous Dice"], ["con_cldice", "contiguous clDice"]] as const;

/** The challenge's aggregate keys (mean ± std over cases), for all test cases and, when roles are known, seen vs held-out types. */
export function aggregatesTable(runs: RunFiles[]): string {
  const scopes: Array<[string, string, (r: RunFiles) => Record<string, number> | undefined]> = [["all", "aggregates", (r) => r.metrics.aggregates]];
  if (runs.some((r) => r.metrics.roles)) {
    scopes.push(["seen types", "roles/seen/aggregates", (r) => r.metrics.roles?.seen.aggregates], ["held-out types", "roles/heldOut/aggregates", (r) => r.metrics.roles?.heldOut.aggregates]);
  }
  const cell = (run: number, base: string, agg: Record<string, number> | undefined, key: string) => {
    if (!agg || agg[`${key}_mean`] === undefined) return `<td class="num empty">–</td>`;
    return `<td class="num" data-run="${run}" data-mean="${base}/${key}_mean" data-std="${base}/${key}_std">${f4(agg[`${key}_mean`])} ± ${f4(agg[`${key}_std`])}</td>`;
  };
  const rows = AGGREGATES.map(([key, name]) => `<tr><th scope="row">${name} <code>${key}</code></th>${scopes.map(([, base, get]) => runs.map((r, i) => cell(i, base, get(r), key)).join("")).join("")}</tr>`);
  return `<table class="metrics" id="table-aggregates"><thead>${metricHead(["challenge aggregate"], runs, scopes.map(([name]) => [name, name] as const))}</thead><tbody>${rows.join("")}</tbody></table>`;
}

/** One case's metrics, a row per run. */
export function caseTable(runs: RunFiles[], caseName: string): string {
  const rows = runs.map((r, i) => {
    const idx = r.metrics.results.findIndex((x) => x.case === caseName);
    if (idx < 0) return `<tr><th scope="row">${escapeHtml(r.label)}</th><td colspan="3" class="empty">not in this run</td></tr>`;
    const res = r.metrics.results[idx];
    const cell = (key: "dice" | "cldice" | "panoptic_quality") => (res[key] === undefined ? `<td class="num empty">–</td>` : `<td class="num" data-run="${i}" data-mean="results/${idx}/${key}">${f4(res[key]!)}</td>`);
    return `<tr><th scope="row">${escapeHtml(r.label)}</th>${cell("dice")}${cell("cldice")}${cell("panoptic_quality")}</tr>`;
  });
  return `<table class="metrics case"><thead><tr><th>run</th><th>Dice</th><th>clDice</th><th>PQ</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

/** A JSON value, pretty-printed in a collapsible block. */
export function jsonBlock(summary: string, value: unknown): string {
  return `<details><summary>${escapeHtml(summary)}</summary><pre>${escapeHtml(JSON.stringify(value, (_k, v: unknown) => (typeof v === "number" && Number.isNaN(v) ? "NaN" : v), 2))}</pre></details>`;
}

const CSS = `
:root { --fg: #1d2129; --muted: #5f6673; --line: #d9dde3; --bg: #fff; --head: #f3f5f8; --accent: #2f6fdb; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 24px 28px 60px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 34px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; } h3 { font-size: 15px; margin: 18px 0 6px; }
.sub, .note { color: var(--muted); } .note { font-size: 12.5px; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
table.metrics { border-collapse: collapse; margin: 8px 0 4px; font-variant-numeric: tabular-nums; }
table.metrics th, table.metrics td { border: 1px solid var(--line); padding: 4px 9px; text-align: left; }
table.metrics thead th { background: var(--head); font-weight: 600; } table.metrics th.run { font-weight: 500; color: var(--muted); }
table.metrics td.num { text-align: right; white-space: nowrap; } td.empty { color: #aab; text-align: center; }
tr.total th, tr.total td { font-weight: 600; } tr.held-out { background: #fff8e6; }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 8px; background: #f3b61f; color: #3a2a00; font-weight: 600; margin-left: 4px; }
.charts { display: flex; flex-wrap: wrap; gap: 14px; }
svg.chart { background: #fff; border: 1px solid var(--line); border-radius: 4px; }
svg .chart-title { font-size: 13px; font-weight: 600; } svg .tick, svg .legend { font-size: 11px; fill: #444; } svg .axis { font-size: 11.5px; fill: #333; }
svg .grid { stroke: #eceef2; } svg .frame { fill: none; stroke: #b9bfc9; }
.cases { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
.case-card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.case-card h3 { margin-top: 0; } .mips { display: flex; gap: 8px; flex-wrap: wrap; }
figure { margin: 0; } figcaption { font-size: 11.5px; color: var(--muted); text-align: center; }
.mips img { width: 124px; height: auto; image-rendering: pixelated; border: 1px solid #333; background: #000; display: block; }
.legend-row span { display: inline-block; width: 11px; height: 11px; margin: 0 4px 0 12px; vertical-align: -1px; }
.viewer-box { width: 100%; height: 520px; background: #121216; border-radius: 6px; overflow: hidden; }
.viewer-box canvas { width: 100%; height: 100%; display: block; }
.viewer-bar { margin: 6px 0; } .viewer-bar button { font: inherit; padding: 3px 10px; } .toggles label { margin-left: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
#viewer-status { color: var(--muted); margin-left: 12px; }
pre { background: #f6f8fa; border: 1px solid var(--line); padding: 8px 10px; overflow: auto; max-height: 420px; font-size: 12px; }
details { margin: 6px 0; } summary { cursor: pointer; }
table.kv td, table.kv th { padding: 2px 12px 2px 0; text-align: left; vertical-align: top; }
`;

/** The page around `body`: inline CSS, no external resource. */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
${body}
</body>
</html>
`;
}
