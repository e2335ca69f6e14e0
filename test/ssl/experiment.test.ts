// The experiment's bookkeeping: label subsets are stratified and fixed by the seed; the table is the mean and
// sample standard deviation over seeds.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Case } from "../../src/data/dataset.ts";
import { type RunSummary, labelSubset, markdownTable, tabulate } from "../../src/ssl/experiment.ts";

const cases: Case[] = ["a", "b", "c"].flatMap((s) => Array.from({ length: 6 }, (_, i) => ({
  id: `${s}_${i}`, imagePath: `/x/${s}_${i}.nii.gz`, labelPath: `/y/${s}_${i}.nii.gz`, structure: s, category: "isolated", density: "dense",
})));

test("label subsets keep every structure type, take round(f·n) of each, and depend only on the seed", () => {
  const q = labelSubset(cases, 0.25, 0);
  assert.equal(q.length, 3 * 2);
  for (const s of ["a", "b", "c"]) assert.equal(q.filter((c) => c.structure === s).length, 2);
  assert.deepEqual(labelSubset(cases, 0.25, 0).map((c) => c.id), q.map((c) => c.id));
  const seeds = new Set([0, 1, 2, 3, 4].map((s) => labelSubset(cases, 0.25, s).map((c) => c.id).join()));
  assert.ok(seeds.size > 1, "other seeds draw other subsets");
  assert.equal(labelSubset(cases, 1, 7).length, cases.length);
  assert.equal(labelSubset(cases, 0.01, 0).length, 3, "at least one case per type");
  assert.throws(() => labelSubset(cases, 0, 0), /label fraction/);
});

test("the table gives mean ± sample standard deviation over seeds", () => {
  const run = (seed: number, d: number): RunSummary => ({ method: "mae", fraction: 1, seed, trainCases: [], dice: { all: d }, cldice: {}, pq: {}, seconds: 0 });
  const rows = tabulate([run(0, 0.5), run(1, 0.7), run(2, 0.9)], ["mae", "none"], [1]);
  assert.equal(rows.length, 1);
  const [m, s] = rows[0].dice.all;
  assert.ok(Math.abs(m - 0.7) < 1e-12 && Math.abs(s - 0.2) < 1e-12);
  assert.ok(Number.isNaN(rows[0].dice["isolated sparse"][0]));
  assert.match(markdownTable(rows), /\| mae \| 100 % \| 3 \|.*0\.700 ± 0\.200 \|$/m);
});
