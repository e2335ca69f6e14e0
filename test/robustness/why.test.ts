// One test per failure the issue (#20) found, beyond the table in robustness.test.ts: NaN voxels, plane
// folders as one volume everywhere, a full disk that names the file, serve's input root, and the numbers of
// a refused training plan.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { finiteVoxels, normalize } from "../../src/data/normalize.ts";
import { annotatedCases } from "../../src/data/dataset.ts";
import { evaluateFolder } from "../../src/eval/evaluate.ts";
import { fingerprint } from "../../src/eval/fingerprint.ts";
import { isPlaneFolder, listVolumes, makeVolume, readVolume, writeVolume } from "../../src/io/index.ts";
import { loadModel } from "../../src/seg/model.ts";
import { makePlan, checkTrainingMemory } from "../../src/seg/plan.ts";
import { predictVolume } from "../../src/seg/predict.ts";
import { INPUT_FOLDER, findInput } from "../../src/serve/server.ts";
import { makeDirs } from "../../src/util/atomic.ts";
import { cli, leftovers, spawnCli, tinyModel } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "lsmseg-why-"));
const p = (...parts: string[]) => join(dir, ...parts);
after(() => rmSync(dir, { recursive: true, force: true }));

/** A float volume with a smooth blob (so that a random network's mask has both classes somewhere). */
function blob(shape: [number, number, number]): ReturnType<typeof makeVolume> {
  const vol = makeVolume("float32", shape, [1, 1, 1]);
  const [d, h, w] = shape;
  for (let z = 0; z < d; z++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const r2 = ((z - d / 2) ** 2 + (y - h / 2) ** 2 + (x - w / 2) ** 2) / (d * d / 9);
    vol.data[(z * h + y) * w + x] = 100 + 900 * Math.exp(-r2) + ((x * 7 + y * 13 + z * 29) % 17);
  }
  return vol;
}

let model = "";
before(() => { model = tinyModel(p("model.safetensors")); });

test("NaN and Inf voxels count as the volume's minimum: the same mask as the image with those voxels at the minimum", () => {
  const vol = blob([8, 12, 12]);
  const min = Math.min(...Array.from(vol.data));
  const bad = { ...vol, data: Float32Array.from(vol.data) };
  const atMin = { ...vol, data: Float32Array.from(vol.data) };
  for (const [i, v] of [[3, NaN], [100, Infinity], [500, -Infinity], [777, NaN]] as const) { bad.data[i] = v; atMin.data[i] = min; }
  assert.deepEqual(Array.from(finiteVoxels(bad.data)), Array.from(atMin.data));
  const nb = normalize(bad.data), nm = normalize(atMin.data);
  assert.ok(nb.every(Number.isFinite), "normalised voxels are finite");
  assert.deepEqual(Array.from(nb), Array.from(nm));
  const m = loadModel(model);
  const a = predictVolume(m, bad, { mirror: false, precision: "fp32" }).mask;
  const b = predictVolume(m, atMin, { mirror: false, precision: "fp32" }).mask;
  assert.deepEqual(Array.from(a), Array.from(b));
});

test("predict says once that a volume has NaN voxels, and writes the mask of the image with them at the minimum", async () => {
  const vol = blob([8, 12, 12]);
  vol.data[5] = NaN;
  vol.data[6] = NaN;
  await writeVolume(p("nan.nii.gz"), vol);
  const r = await cli(["predict", "--model", model, "--in", p("nan.nii.gz"), "--out", p("nan-mask.nii.gz"), "--no-tta", "--precision", "fp32", "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.match(/2 NaN\/Inf voxels treated as the volume's minimum/g)?.length, 1, r.stderr);
  const min = Math.min(...Array.from(vol.data).filter((v) => !Number.isNaN(v)));
  const fixed = { ...vol, data: Float32Array.from(vol.data, (v) => (Number.isNaN(v) ? min : v)) };
  const expected = predictVolume(loadModel(model), fixed, { mirror: false, precision: "fp32" }).mask;
  assert.deepEqual(Array.from((await readVolume(p("nan-mask.nii.gz"))).data), Array.from(expected));
});

test("a TIFF plane folder is ONE volume for predict, evaluate, finetune and inspect's listing", async () => {
  const planes = p("case_1");
  await writeVolume(planes, blob([6, 8, 8]));
  assert.ok(isPlaneFolder(planes));
  assert.deepEqual(listVolumes(planes), [planes]);
  // a folder holding a plane folder and a file: two volumes
  mkdirSync(p("many"));
  await writeVolume(p("many", "a_1"), blob([6, 8, 8]));
  await writeVolume(p("many", "b_1.nii.gz"), blob([6, 8, 8]));
  assert.deepEqual(listVolumes(p("many")), [p("many", "a_1"), p("many", "b_1.nii.gz")]);
  // a folder of multi-page TIFF volumes is not a plane folder
  mkdirSync(p("stacks"));
  await writeVolume(p("stacks", "x_1.tif"), blob([3, 8, 8]));
  await writeVolume(p("stacks", "x_2.tif"), blob([3, 8, 8]));
  assert.equal(isPlaneFolder(p("stacks")), false);
  assert.equal(listVolumes(p("stacks")).length, 2);

  const r = await cli(["predict", "--model", model, "--in", planes, "--out", p("mask_planes"), "--no-tta", "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote 1 mask:/);
  assert.deepEqual((await readVolume(p("mask_planes"))).shape, [6, 8, 8]);

  // evaluate: plane-folder predictions and labels pair up by name
  for (const d of ["gt", "pred"]) {
    mkdirSync(p(d));
    const mask = makeVolume("uint8", [6, 8, 8], [1, 1, 1]);
    mask.data.fill(1, 40, 200);
    await writeVolume(p(d, "cfos_neuron_1"), mask);
  }
  const m = await evaluateFolder(p("pred"), p("gt"), { out: p("metrics.json"), quiet: true, workers: 1 });
  assert.equal(m.results.length, 1);
  assert.equal(m.results[0].dice, 1);

  // finetune's cases: an image and a label as plane folders
  const ann = p("ds", "annotated");
  mkdirSync(join(ann, "images"), { recursive: true });
  mkdirSync(join(ann, "labels"));
  await writeVolume(join(ann, "images", "cfos_neuron_1"), blob([6, 8, 8]));
  const label = makeVolume("uint8", [6, 8, 8], [1, 1, 1]);
  label.data.fill(1, 100, 120);
  await writeVolume(join(ann, "labels", "cfos_neuron_1"), label);
  const cases = await annotatedCases(p("ds"));
  assert.deepEqual(cases.map((c) => [c.id, c.imagePath]), [["cfos_neuron_1", join(ann, "images", "cfos_neuron_1")]]);
  // inspect: the fingerprint counts the case once
  const fp = await fingerprint(p("ds"));
  assert.equal(fp.cases.length, 1, JSON.stringify(fp.counts));

  // a removed plane is noticed (the checks convert has)
  rmSync(join(planes, readdirSync(planes).sort()[2]));
  const gap = await cli(["predict", "--model", model, "--in", planes, "--out", p("mask_gap"), "--quiet"]);
  assert.equal(gap.code, 1);
  assert.match(gap.stderr, /case_1: missing slice/);
});

test("a full disk names the file being written (EFBIG through ulimit -f), and leaves nothing", async () => {
  const vol = makeVolume("uint16", [16, 64, 64], [1, 1, 1]);
  for (let i = 0; i < vol.data.length; i++) vol.data[i] = (i * 7919) % 65536;
  await writeVolume(p("big.nii"), vol);
  mkdirSync(p("small-disk"));
  for (const out of ["out.nii", "out.tif"]) {
    const r = spawnCli(["convert", p("big.nii"), p("small-disk", out), "--quiet", "--tiff-compression", "none"], { fileSizeBlocks: 8 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`small-disk/${out.replace(".", "\\.")}: the file grew past the largest size allowed`));
  }
  assert.deepEqual(readdirSync(p("small-disk")), []);
});

test("serve reads only inside its input root: an image that links outside is refused", () => {
  const root = p("input");
  mkdirSync(join(root, INPUT_FOLDER), { recursive: true });
  writeFileSync(p("secret.mha"), "ObjectType = Image\n");
  symlinkSync(p("secret.mha"), join(root, INPUT_FOLDER, "case.mha"));
  assert.throws(() => findInput(root), (err: Error & { status?: number }) => {
    assert.equal(err.status, 400);
    assert.match(err.message, /case\.mha: resolves to .*secret\.mha, outside the input folder/);
    return true;
  });
});

test("a MetaImage data file in a folder below the header is read (MetaIO's relative path)", async () => {
  mkdirSync(p("mhd", "raw"), { recursive: true });
  writeFileSync(p("mhd", "raw", "data.raw"), Buffer.from(Uint16Array.from({ length: 8 }, (_, i) => i).buffer));
  writeFileSync(p("mhd", "v.mhd"), "ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\nElementType = MET_USHORT\nElementDataFile = raw/data.raw\n");
  assert.deepEqual(Array.from((await readVolume(p("mhd", "v.mhd"))).data), [0, 1, 2, 3, 4, 5, 6, 7]);
});

test("a training plan too large for the machine is refused with the numbers", () => {
  const plan = makePlan([[48, 48, 48]], [[1, 1, 1]], { patchSize: [1000, 1000, 1000], baseFeatures: 32, batchSize: 2 });
  assert.throws(() => checkTrainingMemory(plan, 24 * 2 ** 30), /patch 1000×1000×1000 with batch 2 and 32 features needs at least \d+ GB for one training step, but this machine has 24 GB/);
  const small = makePlan([[48, 48, 48]], [[1, 1, 1]], { patchSize: [48, 48, 48], baseFeatures: 32, batchSize: 2 });
  checkTrainingMemory(small, 24 * 2 ** 30);
});

test("a missing folder inside /proc is refused at once, not created forever", () => {
  assert.throws(() => makeDirs("/proc/lsmseg-missing/deeper"), /\/proc\/lsmseg-missing\/deeper: cannot create the folder \/proc\/lsmseg-missing/);
  assert.deepEqual(leftovers(dir), []);
});
