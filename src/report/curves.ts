// Label-efficiency curves of `lsmseg experiment ssl`: for every group of test cases (the four categories, seen
// and held-out types, all) a chart of Dice against the label fraction, one line per method, each point the mean
// over seeds with ± one sample standard deviation as an error bar. One self-contained HTML page (inline SVG).
import { escapeHtml, page } from "./html.ts";
import { type Series, lineChart } from "./plots.ts";

/** What the page needs of one table row (a method at one label fraction, over seeds). */
export interface CurvePoint {
  method: string;
  fraction: number;
  seeds: number;
  /** group → [mean, sample std] over seeds */
  dice: Record<string, [number, number]>;
}

export interface CurvesOptions {
  title: string;
  groups: readonly string[];
  /** What a label fraction counts ("annotated cases per structure type", "labelled z-planes per volume"). */
  fractionOf: string;
  /** Lines of text under the title (budgets, data, seeds). */
  notes?: string[];
}

const COLORS = ["#2f6fdb", "#d9534f", "#3c9d5d", "#e08a1e", "#7b4fc9", "#17a2b8", "#8c6d31", "#c2185b"];

/** The series of one group: a line per method, points sorted by fraction, nudged apart along x so bars do not hide each other. */
export function curveSeries(rows: CurvePoint[], group: string, dodge = 0): Series[] {
  const methods = [...new Set(rows.map((r) => r.method))];
  return methods.map((method, i) => {
    const mine = rows.filter((r) => r.method === method).sort((a, b) => a.fraction - b.fraction);
    const shift = (i - (methods.length - 1) / 2) * dodge;
    return {
      name: method, color: COLORS[i % COLORS.length], dash: method === "none" ? "5 3" : "",
      points: mine.map((r): [number, number] => [r.fraction + shift, r.dice[group]?.[0] ?? NaN]),
      errors: mine.map((r) => r.dice[group]?.[1] ?? NaN),
    };
  });
}

/** The groups that hold at least one finite mean. */
export function groupsWithData(rows: CurvePoint[], groups: readonly string[]): string[] {
  return groups.filter((g) => rows.some((r) => Number.isFinite(r.dice[g]?.[0])));
}

/** The charts of every group with data, as SVG strings (group, svg). */
export function curveCharts(rows: CurvePoint[], o: CurvesOptions): Array<[string, string]> {
  const fractions = rows.map((r) => r.fraction);
  const span = fractions.length ? Math.max(...fractions) - Math.min(...fractions) : 0;
  return groupsWithData(rows, o.groups).map((g) => [g, lineChart(curveSeries(rows, g, span * 0.008), {
    title: `Dice, ${g}`, xLabel: `label fraction (${o.fractionOf})`, yLabel: "Dice (mean ± sd over seeds)", yRange: [0, 1], xRange: [0, 1.04], width: 430, plotHeight: 200,
  })]);
}

/** The whole page. */
export function curvesPage(rows: CurvePoint[], o: CurvesOptions): string {
  const charts = curveCharts(rows, o);
  const seedCounts = [...new Set(rows.map((r) => r.seeds))];
  const seeds = `${seedCounts.join(" / ")} seed${seedCounts.length === 1 && seedCounts[0] === 1 ? "" : "s"}`;
  const body = [
    `<h1>${escapeHtml(o.title)}</h1>`,
    `<p class="sub">Dice per group of test cases against the label fraction (${escapeHtml(o.fractionOf)}); one line per method (dashed: from scratch); points are means over ${escapeHtml(seeds)}, bars ± one sample standard deviation; points of one fraction are drawn slightly apart along x.</p>`,
    ...(o.notes ?? []).map((n) => `<p class="note">${escapeHtml(n)}</p>`),
    `<div class="charts">${charts.map(([g, svg]) => `<figure data-group="${escapeHtml(g)}">${svg}</figure>`).join("")}</div>`,
  ];
  if (charts.length === 0) body.push(`<p>No finished runs yet.</p>`);
  return page(o.title, body.join("\n"));
}
