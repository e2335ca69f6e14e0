// The experiment's bookkeeping: label subsets are stratified and fixed by the seed; the table is the mean and
// sample standard deviation over seeds; end to end on tiny data with two pretraining sources.
import assert from "node:assert/strict";
import { test } from "node:test";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { curate } from "../../src/curate/index.ts";
import { type Case, annotatedCases } from "../../src/data/dataset.ts";
import { parseLabelMap } from "../../src/data/labels.ts";
import { readVolume } from "../../src/io/index.ts";
import { type RunSummary, labelSubset, markdownTable, planeSubsetFolder, runExperiment, tabulate } from "../../src/ssl/experiment.ts";
import { synthDataset } from "../../src/synth/index.ts";
import { TRAILMAP_MAP, writeSparseDataset } from "../data/sparse.ts";

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

test("end to end on tiny data: each method pretrained on each source (patches and a curated set) is a row; a rerun redoes nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lsmseg-experiment-"));
  try {
    const data = join(dir, "data");
    await synthDataset(data, { preset: "tiny", seed: 4, quiet: true, overrides: { testPerType: 1 } });
    const curated = join(dir, "curated");
    await curate({ inputs: readdirSync(join(data, "raw")).map((f) => join(data, "raw", f)), out: curated, patch: 16, workers: 0, quiet: true });
    const o = {
      data, out: join(dir, "exp"), methods: ["mae", "none"], pretrainData: [{ name: "patches", data }, { name: "curated", data: curated }],
      labelFractions: [1], seeds: 1, pretrainSteps: 2, finetuneEpochs: 1, finetuneStepsPerEpoch: 2, baseFeatures: 4,
      patchSize: [16, 16, 16] as [number, number, number], workers: 0, precision: "fp32" as const, quiet: true,
    };
    const res = await runExperiment(o);
    assert.deepEqual(res.table.map((r) => r.method), ["mae (patches)", "mae (curated)", "none"]);
    assert.deepEqual(Object.keys(res.pretraining).sort(), ["mae (curated)", "mae (patches)"]);
    assert.ok(existsSync(join(dir, "exp", "pretrain", "mae@curated", "checkpoint_final.safetensors")));
    for (const r of res.runs) assert.ok(r.dice.all >= 0 && r.dice.all <= 1, `${r.method}: Dice ${r.dice.all}`);
    const lines: string[] = [];
    const again = await runExperiment({ ...o, log: (l) => lines.push(l) });
    assert.equal(again.markdown, res.markdown);
    assert.deepEqual(lines.filter((l) => l.startsWith("pretraining") || l.startsWith("[")), [], "the rerun read every finished piece from disk");
    // a summary that is not JSON any more (edited by hand, a disk fault) is named, not taken for "not run yet"
    const summary = join(dir, "exp", "pretrain", "mae@curated", "summary.json");
    writeFileSync(summary, "{\"firstLoss\": 0.5,");
    await assert.rejects(runExperiment(o), (e: Error) => e.message.startsWith(`${summary}: not a summary`) && /delete it/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a fraction of labelled voxels: each volume keeps max(1, round(f·n)) of its n labelled z-planes, the rest ignored", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lsmseg-planes-"));
  try {
    await writeSparseDataset(join(dir, "ds"), { cases: 2, planes: [2, 5, 9, 14] });
    const all = await annotatedCases(join(dir, "ds"), { labelMap: parseLabelMap(TRAILMAP_MAP) });
    const labelledPlanes = (v: { data: ArrayLike<number>; shape: number[] }) => {
      const plane = v.shape[1] * v.shape[2];
      return Array.from({ length: v.shape[0] }, (_, z) => z)
        .filter((z) => Array.from({ length: plane }, (_, i) => v.data[z * plane + i]).some((x) => x !== 2));
    };
    for (const [fraction, want] of [[0.1, 1], [0.5, 2], [1, 4]] as const) {
      const sub = await planeSubsetFolder(join(dir, `f${fraction}`), all, fraction, 0, null);
      const lab = await readVolume(join(sub.dir, "annotated", "labels", "axonalmarker_0.nii.gz"));
      const planes = labelledPlanes(lab);
      assert.equal(planes.length, want, `fraction ${fraction}`);
      assert.ok(planes.every((z) => [2, 5, 9, 14].includes(z)));
      assert.ok([...lab.data].every((v) => v === 0 || v === 1 || v === 2));
      assert.equal(sub.labelledVoxels, 2 * want * 24 * 24);
      assert.deepEqual(JSON.parse(readFileSync(join(sub.dir, "dataset.json"), "utf8")).labels, { background: 0, foreground: 1, ignore: 2 });
      // the folder reads back as sparse cases of the same images
      const back = await annotatedCases(sub.dir);
      assert.deepEqual(back.map((c) => c.id), ["axonalmarker_0", "axonalmarker_1"]);
      assert.deepEqual(back[0].labelMap, { 0: "background", 1: "foreground", 2: "ignore" });
    }
    const again = await planeSubsetFolder(join(dir, "again"), all, 0.5, 0, null);
    const other = await planeSubsetFolder(join(dir, "other"), all, 0.5, 1, null);
    const planesOf = async (d: string) => labelledPlanes(await readVolume(join(d, "annotated", "labels", "axonalmarker_1.nii.gz")));
    assert.deepEqual(await planesOf(again.dir), await planesOf(join(dir, "f0.5")), "the same seed keeps the same planes");
    assert.equal((await planesOf(other.dir)).length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
