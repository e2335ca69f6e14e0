// The commands with --nproc 2, through the launcher and c10d (Gloo): pretraining writes one run (rank 0's)
// and resumes with another number of processes from the global batches consumed; prediction of one volume
// split into slabs over 2 ranks, and of a folder dealt out to 2 ranks, equals one process bit for bit.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { makeVolume, readVolume, writeVolume } from "../../src/io/index.ts";
import { finetune } from "../../src/seg/finetune.ts";
import { type LoadedModel, disposeCheckpoint, loadModel } from "../../src/seg/model.ts";
import { predictVolume } from "../../src/seg/predict.ts";
import type { AdaptationPlan } from "../../src/ssl/pretrain.ts";
import { synthDataset } from "../../src/synth/index.ts";
import * as T from "../../src/torch/index.ts";
import { readJsonl } from "../../src/util/jsonl.ts";

const bin = fileURLToPath(new URL("../../bin/lsmseg.js", import.meta.url));
let dir = "";
let data = "";
let model: LoadedModel;

before(async () => {
  T.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), "lsmseg-nproc-"));
  data = join(dir, "data");
  await synthDataset(data, { preset: "tiny", seed: 2, quiet: true, overrides: { rawVolumes: 0 } });
  await finetune({ data, out: join(dir, "run"), fold: 0, epochs: 1, stepsPerEpoch: 2, workers: 0, precision: "fp32", quiet: true, plan: { baseFeatures: 4, patchSize: [32, 32, 32], batchSize: 2 } });
  model = loadModel(join(dir, "run"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function lsmseg(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, LSMSEG_THREADS: "1" }, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    child.on("exit", (code) => resolve({ code: code ?? 1, stderr }));
  });
}

/** A checkpoint's meta.extra (its tensors freed). */
function checkpointExtra<E>(file: string): E {
  const ckpt = T.loadCheckpoint(file);
  disposeCheckpoint(ckpt.model, ckpt.optimizer?.params, ckpt.rng);
  return ckpt.meta.extra as unknown as E;
}

test("pretrain --nproc 2: one run written by rank 0; resumed by 1 process from the global batches consumed", async () => {
  const out = join(dir, "pre");
  const common = ["--data", join(data, "unannotated"), "--method", "mae", "--out", out, "--features", "4", "--patch", "16x16x16", "--workers", "0", "--precision", "fp32", "--quiet", "--index", join(dir, "index.json")];
  const two = await lsmseg(["pretrain", ...common, "--steps", "4", "--nproc", "2"]);
  assert.equal(two.code, 0, two.stderr);
  const after2 = checkpointExtra<AdaptationPlan>(join(out, "checkpoint_latest.safetensors"));
  assert.deepEqual(after2.state, { step: 4, globalBatches: 8 });
  assert.equal(after2.run.worldSize, 2);
  const one = await lsmseg(["pretrain", ...common, "--steps", "6", "--resume"]);
  assert.equal(one.code, 0, one.stderr);
  const after1 = checkpointExtra<AdaptationPlan>(join(out, "checkpoint_latest.safetensors"));
  assert.deepEqual(after1.state, { step: 6, globalBatches: 10 });
  const log = readJsonl<{ step: number; loss: number }>(join(out, "log.jsonl"));
  assert.deepEqual(log.map((r) => r.step), [4, 6], "one log line per interval: rank 0 alone writes");
  assert.ok(log.every((r) => Number.isFinite(r.loss)));
  assert.deepEqual(readdirSync(out).filter((f) => f.endsWith(".safetensors")).sort(), ["checkpoint_final.safetensors", "checkpoint_latest.safetensors"]);
});

test("finetune --nproc 2 (gradients averaged during backward), resumed by 1 process from the global batches consumed", async () => {
  const out = join(dir, "ft");
  const common = ["--data", data, "--out", out, "--features", "4", "--patch", "16x16x16", "--workers", "0", "--precision", "fp32", "--quiet", "--steps-per-epoch", "2", "--fold", "all"];
  const two = await lsmseg(["finetune", ...common, "--epochs", "1", "--nproc", "2"]);
  assert.equal(two.code, 0, two.stderr);
  const one = await lsmseg(["finetune", ...common, "--epochs", "2", "--resume"]);
  assert.equal(one.code, 0, one.stderr);
  const { state } = checkpointExtra<{ state: { epoch: number; step: number; globalBatches: number } }>(join(out, "checkpoint_latest.safetensors"));
  assert.deepEqual([state.epoch, state.step, state.globalBatches], [2, 4, 6]);
  const log = readJsonl<{ epoch: number; trainLoss: number }>(join(out, "log.jsonl"));
  assert.deepEqual(log.map((r) => r.epoch), [0, 1]);
  assert.ok(log.every((r) => Number.isFinite(r.trainLoss)));
});

test("predict --nproc 2: one volume in z-slabs, and a folder dealt out, equal one process bit for bit", async () => {
  // a volume deep enough for two slabs of at least a patch each (annotated cases stacked along z)
  const images = readdirSync(join(data, "annotated", "images")).sort().slice(0, 3);
  const parts = await Promise.all(images.map((f) => readVolume(join(data, "annotated", "images", f))));
  const [, h, w] = parts[0].shape;
  const deep = new Uint16Array(parts.reduce((n, p) => n + p.data.length, 0));
  let at = 0;
  for (const p of parts) { deep.set(p.data as Uint16Array, at); at += p.data.length; }
  const vol = makeVolume("uint16", [parts.reduce((n, p) => n + p.shape[0], 0), h, w], [1, 1, 1], deep);
  const input = join(dir, "deep.nii.gz");
  await writeVolume(input, vol);
  const expected = predictVolume(model, vol, { mirror: false, precision: "fp32" }).mask;
  assert.ok(expected.includes(1) && expected.includes(0), "a mask with both classes");

  const out = join(dir, "deep_pred.nii.gz");
  const r = await lsmseg(["predict", "--model", join(dir, "run"), "--in", input, "--out", out, "--no-tta", "--precision", "fp32", "--quiet", "--nproc", "2"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await readVolume(out)).data, expected);

  const folder = join(dir, "in");
  mkdirSync(folder);
  for (const [i, p] of parts.entries()) await writeVolume(join(folder, `case_${i}.nii.gz`), p);
  const r2 = await lsmseg(["predict", "--model", join(dir, "run"), "--in", folder, "--out", join(dir, "out"), "--no-tta", "--precision", "fp32", "--quiet", "--nproc", "2"]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.deepEqual(readdirSync(join(dir, "out")).sort(), ["case_0.nii.gz", "case_1.nii.gz", "case_2.nii.gz"]);
  for (const [i, p] of parts.entries()) {
    assert.deepEqual((await readVolume(join(dir, "out", `case_${i}.nii.gz`))).data, predictVolume(model, p, { mirror: false, precision: "fp32" }).mask, `case_${i}`);
  }
});
