// The dataset folder: case names (nnU-Net's _0000 suffix, .ome.tif/.ome.zarr/.nii.gz), nnU-Net raw datasets read
// as SELMA3D's are, evaluate's pairing of nnU-Net-named predictions, dataset.json, and convert-dataset both ways.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { annotatedCases } from "../../src/data/dataset.ts";
import { caseNameOf, findDatasetJson, layoutOf, readDatasetJson, stemOf, structureOf } from "../../src/dataset/index.ts";
import { convertDataset } from "../../src/dataset/convert.ts";
import { evaluateFolder } from "../../src/eval/evaluate.ts";
import { readVolume } from "../../src/io/index.ts";
import { outputPathFor } from "../../src/seg/predict.ts";

const NN = join(import.meta.dirname, "../../fixtures/io/public/Dataset001_Tiny");
const dir = mkdtempSync(join(tmpdir(), "lsmseg-dataset-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("case names drop the volume extension, and nnU-Net's channel suffix only in its image folders", () => {
  assert.equal(stemOf("a/b/blood_vessel_3.ome.tif"), "blood_vessel_3");
  assert.equal(stemOf("x.ome.zarr/"), "x");
  assert.equal(stemOf("notes.txt"), null);
  assert.equal(caseNameOf("blood_vessel_12_0000.nii.gz", true), "blood_vessel_12");
  assert.equal(caseNameOf("cell_nuclei_2301.mha"), "cell_nuclei_2301"); // SELMA3D ids have four digits too
  assert.equal(structureOf(join(NN, "imagesTr", "blood_vessel_001_0000.nii.gz")).caseName, "blood_vessel_001");
  assert.equal(structureOf(join(NN, "imagesTr", "blood_vessel_001_0000.nii.gz")).id, "001");
});

test("an nnU-Net raw dataset gives the cases SELMA3D's layout would: type and category from the name without _0000", async () => {
  assert.equal(layoutOf(NN), "nnunet");
  const cases = await annotatedCases(NN);
  assert.deepEqual(cases.map((c) => [c.id, c.structure, c.category, c.density]), [
    ["blood_vessel_001", "blood_vessel", "contiguous", "dense"],
    ["blood_vessel_002", "blood_vessel", "contiguous", "dense"],
    ["cell_nuclei_003", "cell_nuclei", "isolated", "dense"],
  ]);
  assert.equal(cases[0].labelPath, join(NN, "labelsTr", "blood_vessel_001.nii.gz"));
});

test("a multi-channel nnU-Net dataset and a missing suffix are refused with the file named", async () => {
  const d = join(dir, "multi");
  for (const s of ["imagesTr", "labelsTr"]) mkdirSync(join(d, s), { recursive: true });
  copyFileSync(join(NN, "imagesTr", "blood_vessel_001_0000.nii.gz"), join(d, "imagesTr", "blood_vessel_001_0000.nii.gz"));
  copyFileSync(join(NN, "imagesTr", "blood_vessel_001_0000.nii.gz"), join(d, "imagesTr", "blood_vessel_001_0001.nii.gz"));
  copyFileSync(join(NN, "labelsTr", "blood_vessel_001.nii.gz"), join(d, "labelsTr", "blood_vessel_001.nii.gz"));
  await assert.rejects(annotatedCases(d), /blood_vessel_001_0001\.nii\.gz: channel 1 of a multi-channel nnU-Net dataset/);
  rmSync(join(d, "imagesTr", "blood_vessel_001_0001.nii.gz"));
  copyFileSync(join(NN, "imagesTr", "blood_vessel_001_0000.nii.gz"), join(d, "imagesTr", "blood_vessel_009.nii.gz"));
  await assert.rejects(annotatedCases(d), /blood_vessel_009\.nii\.gz: an nnU-Net image needs the channel suffix _0000/);
});

test("dataset.json: nnU-Net's keys typed (labels parsed, not interpreted), the nearest one found, bad labels refused", () => {
  const d = findDatasetJson(join(NN, "imagesTr"))!;
  assert.equal(d.path, join(NN, "dataset.json"));
  assert.deepEqual([d.labels, d.channelNames, d.fileEnding, d.numTraining], [{ background: 0, structure: 1 }, { 0: "LSM" }, ".nii.gz", 3]);
  const bad = join(dir, "bad.json");
  writeFileSync(bad, JSON.stringify({ labels: { background: 0, vessel: "one" } }));
  assert.throws(() => readDatasetJson(bad), /bad\.json: labels\.vessel must be an integer \(or a list of integers for a region\), got "one"/);
});

test("evaluate pairs predictions named after nnU-Net images (<case>_0000) with their truths", async () => {
  const preds = join(dir, "preds");
  mkdirSync(preds);
  for (const f of readdirSync(join(NN, "labelsTr"))) copyFileSync(join(NN, "labelsTr", f), join(preds, f.replace(".nii.gz", "_0000.nii.gz")));
  const m = await evaluateFolder(preds, join(NN, "labelsTr"), { quiet: true, workers: 1 });
  assert.equal(m.results.length, 3);
  for (const r of m.results) assert.equal(r.dice, 1);
  // predict names its outputs for imagesTs/ inputs as nnU-Net does: the case name
  assert.equal(outputPathFor(join(NN, "imagesTs", "microglia_004_0000.nii.gz"), "out"), join("out", "microglia_004.nii.gz"));
  assert.equal(outputPathFor("data/test/images/cell_nuclei_2301.mha", "out"), join("out", "cell_nuclei_2301.mha"));
});

test("convert-dataset nnU-Net → SELMA3D → nnU-Net keeps every case, voxel and dataset.json key", async () => {
  const selma = join(dir, "selma"), back = join(dir, "back");
  const r = await convertDataset(NN, selma, "selma3d", { quiet: true });
  assert.deepEqual([r.cases, r.training], [7, 3]);
  assert.equal(layoutOf(selma), "selma3d");
  assert.deepEqual((await annotatedCases(selma)).map((c) => c.id), (await annotatedCases(NN)).map((c) => c.id));
  assert.deepEqual(readdirSync(join(selma, "test", "images")), ["microglia_004.nii.gz"]);
  await convertDataset(selma, back, "nnunet", { quiet: true });
  for (const sub of ["imagesTr", "labelsTr", "imagesTs"]) {
    assert.deepEqual(readdirSync(join(back, sub)).sort(), readdirSync(join(NN, sub)).sort());
    for (const f of readdirSync(join(NN, sub))) {
      const [a, b] = await Promise.all([readVolume(join(NN, sub, f)), readVolume(join(back, sub, f))]);
      assert.deepEqual([...a.data], [...b.data], f);
      assert.deepEqual(a.spacingUm, b.spacingUm);
    }
  }
  const j = JSON.parse(readFileSync(join(back, "dataset.json"), "utf8"));
  assert.deepEqual([j.labels, j.numTraining, j.file_ending], [{ background: 0, structure: 1 }, 3, ".nii.gz"]);
  await assert.rejects(convertDataset(NN, back, "selma3d"), /back: already exists/);
  await assert.rejects(convertDataset(NN, join(dir, "x"), "nnunet"), /already in nnU-Net's layout/);
});
