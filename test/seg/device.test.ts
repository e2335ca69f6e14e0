// Devices: Module.to moves parameters in place (the same Tensor objects, so optimizers built afterwards see
// them); with a CUDA libtorch, fine-tuning, pretraining and prediction run on the GPU and agree with the CPU.
// The CUDA tests skip where the libtorch has no CUDA (Debian's libtorch-dev, this project's CI).
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { readVolume } from "../../src/io/index.ts";
import { Conv3d, LeakyReLU, Sequential } from "../../src/nn/index.ts";
import { SGD } from "../../src/optim/index.ts";
import { finetune } from "../../src/seg/finetune.ts";
import { loadModel } from "../../src/seg/model.ts";
import { predictVolume } from "../../src/seg/predict.ts";
import { pretrain } from "../../src/ssl/pretrain.ts";
import { synthDataset } from "../../src/synth/index.ts";
import * as T from "../../src/torch/index.ts";

const cuda = T.cudaAvailable();
let dir = "";
let data = "";

before(async () => {
  T.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), "lsmseg-device-"));
  data = join(dir, "data");
  await synthDataset(data, { preset: "tiny", seed: 5, quiet: true, overrides: { rawVolumes: 0 } });
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("Module.to keeps the parameters' identity and values", () => {
  const net = new Sequential(new Conv3d(1, 2, 3, { padding: 1 }), new LeakyReLU(0.01));
  const before = net.parameters();
  const values = before.map((p) => p.toArray());
  net.to("cpu");
  assert.deepEqual(net.parameters(), before);
  assert.deepEqual(net.parameters().map((p) => p.toArray()), values);
  if (!cuda) return;
  net.to("cuda");
  assert.ok(net.parameters().every((p, i) => p === before[i] && p.device.startsWith("cuda") && p.requiresGrad));
  const opt = new SGD(net.parameters(), { lr: 0.1 });
  T.tidy(() => {
    const y = net.forward(T.randn([1, 1, 4, 4, 4]).to("cuda")) as T.Tensor;
    y.square().mean().backward();
    opt.step();
  });
  assert.deepEqual(net.to("cpu").parameters().map((p) => p.device), ["cpu", "cpu"]);
});

test("cuda: fine-tuning, pretraining and prediction on the GPU agree with the CPU", { skip: cuda ? false : "this libtorch has no CUDA" }, async () => {
  const common = { data, fold: "all" as const, epochs: 1, stepsPerEpoch: 2, workers: 0, precision: "fp32" as const, quiet: true, plan: { baseFeatures: 4, patchSize: [32, 32, 32] as [number, number, number], batchSize: 2 } };
  await finetune({ ...common, out: join(dir, "gpu"), device: "cuda" });
  const model = loadModel(join(dir, "gpu"));
  const vol = await readVolume(join(data, "test", "images", readdirSync(join(data, "test", "images"))[0]));
  const onCpu = predictVolume(model, vol, { mirror: false, precision: "fp32" }).mask;
  model.net.to("cuda");
  const onGpu = predictVolume(model, vol, { mirror: false, precision: "fp32", device: "cuda" }).mask;
  let same = 0;
  onCpu.forEach((v, i) => { if (v === onGpu[i]) same++; });
  assert.ok(same / onCpu.length > 0.999, `${same} of ${onCpu.length} voxels agree`);
  const res = await pretrain({ data: join(data, "unannotated"), out: join(dir, "mae"), method: "mae", steps: 4, workers: 0, precision: "fp32", quiet: true, device: "cuda", plan: { baseFeatures: 4, patchSize: [16, 16, 16] } });
  assert.ok(Number.isFinite(res.lastLoss));
});
