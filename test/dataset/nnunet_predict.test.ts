// finetune reads an nnU-Net raw dataset (fixtures: imagesTr/*_0000.nii.gz, labelsTr/, dataset.json); the tiny
// model it makes predicts the real light-sheet vessel volume (../shared/realdata/) into an OME-Zarr whose mask
// is an OME-NGFF image-label with the input's spacing: a plumbing and shape test, not an accuracy test.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { readVolume } from "../../src/io/index.ts";
import { finetune } from "../../src/seg/finetune.ts";
import { loadModel } from "../../src/seg/model.ts";
import { predictPaths } from "../../src/seg/predict.ts";

const NN = join(import.meta.dirname, "../../fixtures/io/public/Dataset001_Tiny");
const VESSELS = join(import.meta.dirname, "../../../shared/realdata/vesselexpress_vessels_100.tif");
const dir = mkdtempSync(join(tmpdir(), "lsmseg-nnunet-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("finetune on an nnU-Net dataset, then predict a real volume into an OME-NGFF image-label", { skip: existsSync(VESSELS) ? false : "../shared/realdata not present" }, async () => {
  const run = join(dir, "run");
  await finetune({ data: NN, out: run, fold: "all", epochs: 1, stepsPerEpoch: 1, workers: 0, precision: "fp32", quiet: true, plan: { baseFeatures: 2, patchSize: [16, 16, 16], batchSize: 1 } });
  const model = loadModel(run);
  const out = join(dir, "vessels_mask.ome.zarr");
  await predictPaths(model, VESSELS, out, {});
  const input = await readVolume(VESSELS);
  const mask = await readVolume(out);
  assert.deepEqual([mask.shape, mask.dtype, mask.spacingUm], [input.shape, "uint8", input.spacingUm]);
  assert.ok(mask.data.every((v) => v === 0 || v === 1));
  const attrs = JSON.parse(readFileSync(join(out, ".zattrs"), "utf8"));
  assert.ok(attrs["image-label"], "image-label metadata");
  assert.equal(attrs.multiscales[0].type, "nearest");
  // nnU-Net-named outputs for imagesTs/ inputs: <case>.nii.gz
  const [written] = await predictPaths(model, join(NN, "imagesTs"), join(dir, "preds") + "/", {});
  assert.equal(written, join(dir, "preds", "microglia_004.nii.gz"));
});
