// UNETR and SwinUNETR end to end on the tiny synthetic dataset: finetune --arch unetr|swinunetr trains,
// saves a checkpoint with MONAI's key names, and predict slides the same window over the test volumes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { readVolume } from "../../src/io/index.ts";
import { finetune } from "../../src/seg/finetune.ts";
import { loadModel } from "../../src/seg/model.ts";
import { predictPaths } from "../../src/seg/predict.ts";
import { synthDataset } from "../../src/synth/index.ts";
import * as T from "../../src/torch/index.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
let dir = "";
let data = "";

before(async () => {
  T.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), "lsmseg-transformers-"));
  data = join(dir, "data");
  await synthDataset(data, { preset: "tiny", seed: 3, quiet: true });
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Predicts the first `n` test volumes (a folder's worth when n is 10) and checks the masks. */
async function predictsMasks(out: string, n: number): Promise<void> {
  const model = loadModel(out);
  const images = join(data, "test", "images");
  const input = n === 10 ? images : join(images, readdirSync(images).sort()[0]);
  const written = await predictPaths(model, input, join(out, "pred") + "/", { mirror: false, precision: "fp32" });
  assert.equal(written.length, n);
  for (const file of written.slice(0, 2)) {
    const name = file.split("/").pop()!;
    const [img, mask] = [await readVolume(join(data, "test", "images", name)), await readVolume(file)];
    assert.equal(mask.dtype, "uint8");
    assert.deepEqual(mask.shape, img.shape);
    assert.ok(mask.data.every((v) => v === 0 || v === 1));
  }
  model.net.dispose();
}

test("finetune --arch unetr trains a tiny UNETR (MONAI keys in the checkpoint) and predict masks the test volumes", async () => {
  const out = join(dir, "unetr");
  const res = await finetune({
    data, out, fold: 0, epochs: 2, stepsPerEpoch: 2, workers: 0, precision: "fp32", quiet: true, optimizer: "adamw", lr: 1e-4,
    plan: { arch: "unetr", baseFeatures: 4, transformer: { hiddenSize: 32, numHeads: 4 }, patchSize: [32, 32, 32], batchSize: 2 },
  });
  assert.equal(res.epochs.length, 2);
  const ckpt = T.loadCheckpoint(join(out, "checkpoint_final.safetensors"));
  assert.deepEqual(ckpt.model.get("vit.patch_embedding.position_embeddings")!.shape, [1, 8, 32]);
  assert.deepEqual(ckpt.model.get("vit.blocks.11.attn.qkv.weight")!.shape, [96, 32]);
  assert.ok(ckpt.model.has("out.conv.conv.bias"));
  for (const t of ckpt.model.values()) t.dispose();
  await predictsMasks(out, 10);
});

test("the CLI trains --arch swinunetr and refuses an unknown --arch", async () => {
  const out = join(dir, "swin");
  const args = [join(root, "bin", "lsmseg.js"), "finetune", "--data", data, "--out", out, "--epochs", "1", "--steps-per-epoch", "2", "--workers", "0",
    "--precision", "fp32", "--features", "12", "--patch", "32", "--batch", "1", "--optimizer", "adamw", "--lr", "1e-4", "--quiet"];
  const env = { ...process.env, LSMSEG_THREADS: "1" };
  const ok = spawnSync(process.execPath, [...args, "--arch", "swinunetr"], { encoding: "utf8", env });
  assert.equal(ok.status, 0, ok.stderr);
  const ckpt = T.loadCheckpoint(join(out, "checkpoint_final.safetensors"));
  assert.ok(ckpt.model.has("swinViT.layers1.0.blocks.1.attn.relative_position_bias_table"));
  assert.ok(ckpt.model.has("swinViT.layers4c.0.layer.conv1.conv.weight"));
  for (const t of ckpt.model.values()) t.dispose();
  await predictsMasks(out, 1);
  const bad = spawnSync(process.execPath, [...args.slice(0, 6).map((a) => (a === out ? join(dir, "bad") : a)), "--arch", "vit"], { encoding: "utf8", env });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--arch: expected unet, resenc, unetr, swinunetr, got 'vit'/);
});
