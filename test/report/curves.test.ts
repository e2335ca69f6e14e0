// The label-efficiency page: a chart per group with data, a line per method through the means, error bars of
// ± one standard deviation at the right heights.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type CurvePoint, curveCharts, curveSeries, curvesPage, groupsWithData } from "../../src/report/curves.ts";
import { lineChart } from "../../src/report/plots.ts";

const rows: CurvePoint[] = [
  { method: "mae", fraction: 0.1, seeds: 3, dice: { all: [0.4, 0.1], "held-out types": [NaN, NaN] } },
  { method: "mae", fraction: 1, seeds: 3, dice: { all: [0.6, 0.05], "held-out types": [NaN, NaN] } },
  { method: "none", fraction: 1, seeds: 3, dice: { all: [0.5, NaN], "held-out types": [NaN, NaN] } },
  { method: "none", fraction: 0.1, seeds: 3, dice: { all: [0.3, 0.2], "held-out types": [NaN, NaN] } },
];

test("series: one per method, points sorted by fraction, errors the standard deviations", () => {
  const s = curveSeries(rows, "all");
  assert.deepEqual(s.map((x) => x.name), ["mae", "none"]);
  assert.deepEqual(s[1].points, [[0.1, 0.3], [1, 0.5]]);
  assert.deepEqual(s[1].errors, [0.2, NaN]);
  assert.equal(s[1].dash, "5 3", "scratch dashed");
  const dodged = curveSeries(rows, "all", 0.01);
  const xs = dodged.map((x) => x.points[0][0]);
  assert.ok(Math.abs(xs[0] - 0.095) < 1e-12 && Math.abs(xs[1] - 0.105) < 1e-12, `${xs}`);
  assert.deepEqual(groupsWithData(rows, ["all", "held-out types", "isolated sparse"]), ["all"]);
});

test("error bars: one per finite sd, spanning mean ± sd on the y axis", () => {
  const svg = lineChart([{ name: "a", color: "#000", points: [[0, 0.5], [1, 0.2]], errors: [0.25, NaN] }], { title: "t", xLabel: "x", yLabel: "y", yRange: [0, 1], plotHeight: 100 });
  const bars = [...svg.matchAll(/<path d="M([\d.]+) ([\d.]+)V([\d.]+)/g)];
  assert.equal(bars.length, 1);
  // plot top 28, height 100: y = 0.25 → 103, y = 0.75 → 53
  assert.deepEqual([Number(bars[0][2]), Number(bars[0][3])], [103, 53]);
  const page = curvesPage(rows, { title: "T", groups: ["all", "held-out types"], fractionOf: "planes" });
  assert.equal((page.match(/<figure data-group=/g) ?? []).length, 1, "groups without data get no chart");
  assert.equal(curveCharts(rows, { title: "T", groups: ["all"], fractionOf: "planes" }).length, 1);
  assert.equal((page.match(/class="error-bar"/g) ?? []).length, 3);
});
