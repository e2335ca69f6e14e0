// Evaluation over folders: structure types from file names, pairing by case name, the whole loop on a
// tiny synthetic test set (against itself and against an eroded and shifted prediction), and each bad
// input's error.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { caseNameOf, structureOf, structureTable } from "../../src/dataset/index.ts";
import { challengeAggregates, defaultEvalWorkers, evaluateFolder, idleCores, metricStats, type CaseResult } from "../../src/eval/evaluate.ts";
import { caseMetrics } from "../../src/eval/metrics.ts";
import { makeVolume, readVolume, writeVolume } from "../../src/io/index.ts";
import { synthDataset } from "../../src/synth/index.ts";

test("structureOf: the challenge's prefixes, categories and densities", () => {
  assert.deepEqual(structureOf("cell_nuclei_2301.mha"), { structure: "cell_nuclei", caseName: "cell_nuclei_2301", id: "2301", category: "isolated", density: "dense" });
  assert.deepEqual(structureOf("/x/y/blood_vessel_7.nii.gz"), { structure: "blood_vessel", caseName: "blood_vessel_7", id: "7", category: "contiguous", density: "dense" });
  const want: Record<string, string> = {
    AD_plaques: "isolated sparse", protein: "isolated sparse", cfos_neuron: "isolated dense", microglia: "isolated dense",
    gutnerve: "contiguous sparse", axonalmarker: "contiguous sparse", peripheral_nerve: "contiguous sparse", lymphatic_vessel: "contiguous dense",
  };
  for (const [name, cat] of Object.entries(want)) {
    const s = structureOf(`${name}_0001.tif`);
    assert.equal(`${s.category} ${s.density}`, cat, name);
  }
  // the challenge tests startswith, so a name without the underscore still picks its type
  assert.equal(structureOf("protein0001.mha").structure, "protein");
  assert.throws(() => structureOf("test/labels/neurons_0001.mha"), /test\/labels\/neurons_0001\.mha: unknown structure type/);
});

test("structure table: dataset.json adds types; it may not contradict the challenge's", () => {
  const t = structureTable({ th_neuron: { category: "isolated", density: "sparse", role: "unannotatedOnly" } });
  assert.equal(structureOf("th_neuron_3.mha", t).category, "isolated");
  assert.throws(() => structureTable({ protein: { category: "contiguous", density: "sparse" } }, "d.json"), /d\.json: structures\.protein is contiguous sparse/);
  assert.throws(() => structureTable({ odd: { category: "round" } }, "d.json"), /d\.json: structures\.odd needs category/);
  assert.equal(caseNameOf("a/b/gutnerve_1.nii.gz"), "gutnerve_1");
  assert.equal(caseNameOf("gutnerve_1.ome.zarr/"), "gutnerve_1");
});

test("aggregates: mean and sample std over cases; NaN propagates, *_nanmean leaves it out", () => {
  const s = metricStats([0.5, 1, NaN, 0]);
  assert.ok(Number.isNaN(s.mean) && Number.isNaN(s.std));
  assert.equal(s.nan, 1);
  assert.equal(s.nanmean, 0.5);
  assert.equal(s.nanstd, 0.5); // sqrt((0 + 0.25 + 0.25) / 2)
  assert.ok(Number.isNaN(metricStats([0.7]).std), "std of one case");
  const c = (category: "isolated" | "contiguous", dice: number, other: number) =>
    ({ category, dice, ...(category === "isolated" ? { panoptic_quality: other } : { cldice: other }) }) as CaseResult;
  const a = challengeAggregates([c("isolated", 1, 0.5), c("isolated", 0.5, 0.25), c("contiguous", 0.2, NaN), c("contiguous", 0.4, 0.8)]);
  assert.equal(a.iso_dice_mean, 0.75);
  assert.equal(a.iso_panoptic_quality_std, Math.sqrt(0.03125));
  assert.ok(Number.isNaN(a.con_cldice_mean));
  assert.equal(a.con_cldice_nanmean, 0.8);
  assert.equal(a.con_cldice_nan_cases, 1);
});

let tmp = "";
let data = "";
before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "lsmseg-evaluate-"));
  data = join(tmp, "tiny");
  await synthDataset(data, { preset: "tiny", quiet: true });
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test("end to end: the tiny test set against itself scores 1 everywhere", async () => {
  const labels = join(data, "test", "labels");
  const out = join(tmp, "self.json");
  const m = await evaluateFolder(labels, labels, { out, workers: 2, quiet: true });
  assert.equal(m.results.length, readdirSync(labels).length);
  for (const key of ["iso_dice_mean", "iso_panoptic_quality_mean", "con_dice_mean", "con_cldice_mean"]) assert.equal(m.aggregates[key], 1, key);
  for (const key of ["iso_dice_std", "iso_panoptic_quality_std", "con_dice_std", "con_cldice_std"]) assert.equal(m.aggregates[key], 0, key);
  for (const name of ["isolated sparse", "isolated dense", "contiguous sparse", "contiguous dense"] as const) {
    assert.ok(m.categories[name].cases >= 2, name);
    assert.equal(m.categories[name].dice.mean, 1, name);
  }
  assert.ok(m.dataset?.endsWith("dataset.json"), "dataset.json found beside test/labels");
  assert.deepEqual(m.roles?.heldOut.structures, ["gutnerve", "lymphatic_vessel", "microglia", "protein"]);
  assert.equal(m.structures.microglia.role, "heldOut");
  const written = JSON.parse(readFileSync(out, "utf8")) as typeof m;
  assert.deepEqual(Object.keys(written.aggregates).slice(0, 8), [
    "iso_dice_mean", "iso_dice_std", "iso_panoptic_quality_mean", "iso_panoptic_quality_std",
    "con_dice_mean", "con_dice_std", "con_cldice_mean", "con_cldice_std",
  ]);
  assert.ok(readdirSync(tmp).every((f) => !f.includes(".lsmseg-tmp-")), "no temporary file left");
});

test("end to end: an eroded and shifted prediction (as .nii.gz) scores what caseMetrics computes", async () => {
  const labels = join(data, "test", "labels");
  const pred = join(tmp, "pred");
  mkdirSync(pred);
  const expected: Record<string, number> = {};
  for (const f of readdirSync(labels)) {
    const gt = await readVolume(join(labels, f));
    const [nz, ny, nx] = gt.shape;
    const p = new Uint8Array(gt.data.length);
    // erode along x (keep voxels whose x-neighbours are set), then shift one voxel along y
    for (let z = 0; z < nz; z++) for (let y = 1; y < ny; y++) for (let x = 1; x < nx - 1; x++) {
      const i = (z * ny + y - 1) * nx + x;
      if (gt.data[i] && gt.data[i - 1] && gt.data[i + 1]) p[(z * ny + y) * nx + x] = 1;
    }
    const name = f.replace(/\.mha$/, "");
    await writeVolume(join(pred, `${name}.nii.gz`), makeVolume("uint8", gt.shape, gt.spacingUm, p));
    const isolated = structureOf(f).category === "isolated";
    const m = caseMetrics(p, gt.data, gt.shape, isolated ? "isolated" : "contiguous");
    expected[name] = isolated ? m.panoptic_quality! : m.cldice!;
  }
  const m = await evaluateFolder(pred, labels, { workers: 1, quiet: true });
  for (const r of m.results) {
    assert.ok(r.dice > 0 && r.dice < 1, `${r.case}: dice ${r.dice}`);
    const got = r.category === "isolated" ? r.panoptic_quality! : r.cldice!;
    assert.ok(Object.is(got, expected[r.case]), `${r.case}: ${got} vs ${expected[r.case]}`);
  }
  assert.ok(m.aggregates.con_dice_mean < 1 && m.aggregates.iso_dice_mean < 1);
});

test("bad input: missing predictions, shape mismatch, unknown prefix, a missing folder", async () => {
  const labels = join(data, "test", "labels");
  const some = join(tmp, "some");
  mkdirSync(some);
  const files = readdirSync(labels).sort();
  const first = await readVolume(join(labels, files[0]));
  await writeVolume(join(some, files[0]), first);
  await assert.rejects(evaluateFolder(some, labels, { quiet: true }), (err: Error) =>
    err.message.includes(`no prediction for ${files.length - 1} of ${files.length} cases`) && err.message.includes(files[1].replace(".mha", "")));

  const wrong = join(tmp, "wrong");
  mkdirSync(wrong);
  for (const f of files) await writeVolume(join(wrong, f), f === files[0] ? makeVolume("uint8", [4, 4, 4]) : await readVolume(join(labels, f)));
  await assert.rejects(evaluateFolder(wrong, labels, { workers: 2, quiet: true }), (err: Error) =>
    err.message.includes(join(wrong, files[0])) && err.message.includes("4×4×4") && err.message.includes(join(labels, files[0])) && err.message.includes("48×48×48"));

  const odd = join(tmp, "odd");
  mkdirSync(odd);
  await writeVolume(join(odd, "neurons_1.mha"), makeVolume("uint8", [4, 4, 4]));
  await assert.rejects(evaluateFolder(odd, odd, { quiet: true }), /neurons_1\.mha: unknown structure type/);
  await assert.rejects(evaluateFolder(join(tmp, "nowhere"), labels, { quiet: true }), /nowhere: prediction folder does not exist/);
  writeFileSync(join(odd, "broken.json"), "{");
  await assert.rejects(evaluateFolder(odd, odd, { dataset: join(odd, "broken.json"), quiet: true }), /broken\.json: not valid JSON/);
});

test("default worker threads: one per core, at most 8, at least 4 cases each", () => {
  assert.equal(defaultEvalWorkers(6, 2), 1);
  assert.equal(defaultEvalWorkers(3, 16), 1);
  assert.equal(defaultEvalWorkers(8, 2), 2);
  assert.equal(defaultEvalWorkers(30, 16), 7);
  assert.equal(defaultEvalWorkers(100, 16), 8);
  assert.equal(defaultEvalWorkers(100, 2), 2);
});

test("default worker threads on a busy machine: no more than the idle cores, and always one", () => {
  assert.equal(idleCores(2, 23.4), 1);
  assert.equal(idleCores(16, 3.4), 13);
  assert.equal(idleCores(2, 0.2), 2);
  assert.equal(defaultEvalWorkers(48, 2, idleCores(2, 23.4)), 1);
  assert.equal(defaultEvalWorkers(48, 16, idleCores(16, 3.4)), 8);
  assert.equal(defaultEvalWorkers(48, 16, idleCores(16, 10.6)), 5);
});
