// One masked-image-modelling pretraining step (lsmseg's MAE: bottleneck-grid block mask, 75 % zeroed, MSE on
// masked voxels) on the unet-step benchmark's network (the anchor U-Net, 16/32/64/128) with a 1×1×1
// reconstruction head, 64³ × batch 2, AdamW, bf16 autocast; the PyTorch peer (bench/pretrain_peer.py) runs the
// same step in the same run. Usage: npm run bench -- pretrain [--steps 6] [--patch 64] [--batch 2] [--precision bf16]
// [--device cuda] [--features 32,64,128,256,320,320] (the peer runs on the same device, with the same channels)
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Rng } from "../src/data/rng.ts";
import { UNet, anchorUNetConfig } from "../src/nn/index.ts";
import { AdamW } from "../src/optim/index.ts";
import { ReconstructionHead, bottleneckShape, decoderOutput, trainedKeys } from "../src/ssl/method.ts";
import { blockMask, maskedMse, upsampleMask } from "../src/ssl/methods/mae.ts";
import * as T from "../src/torch/index.ts";
import { anchorsDir, machine, median, parseFeatures, root, round, torchAvailable } from "./common.ts";

const { values } = parseArgs({ options: { steps: { type: "string", default: "6" }, patch: { type: "string", default: "64" }, batch: { type: "string", default: "2" }, threads: { type: "string", default: "2" }, precision: { type: "string", default: "bf16" }, device: { type: "string", default: "cpu" }, features: { type: "string" } } });
const device = values.device, features = parseFeatures(values.features);
const steps = Number(values.steps), patch = Number(values.patch), batch = Number(values.batch), threads = Number(values.threads);
const precision = values.precision === "fp32" ? "fp32" : "bf16";
T.setNumThreads(threads);

function lsmsegStep(): number {
  T.manualSeed(0);
  const net = new UNet(anchorUNetConfig({ features, strides: features.map((_, i) => (i === 0 ? 1 : 2)), kernelSizes: features.map(() => 3) }));
  const heads = new ReconstructionHead(net.config.features[0]);
  net.to(device);
  heads.to(device);
  const keys = new Set(trainedKeys(net, ["encoder", "decoder"]));
  const params = [...net.namedParameters().filter(([k]) => keys.has(k)).map(([, p]) => p), ...heads.parameters()];
  const opt = new AdamW(params, { lr: 1e-3 });
  const x = T.randn([batch, 1, patch, patch, patch]).to(device);
  const grid = bottleneckShape(net, [patch, patch, patch]);
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    T.cudaSynchronize();
    const t0 = performance.now();
    T.tidy(() => {
      const mask = upsampleMask(blockMask(batch, grid, 0.75, new Rng(`bench ${i}`)), batch, grid, [patch, patch, patch]).to(device);
      const pred = T.autocast(() => heads.forward(decoderOutput(net, x.mul(mask.neg().add(1)))), { enabled: precision === "bf16", device: device.startsWith("cuda") ? "cuda" : "cpu" }).float();
      const loss = maskedMse(pred, x, mask);
      opt.zeroGrad();
      loss.backward();
      opt.step();
    });
    T.cudaSynchronize();
    times.push((performance.now() - t0) / 1000);
  }
  net.dispose();
  heads.dispose();
  x.dispose();
  return median(times.slice(1));
}

function peerStep(): number | null {
  const anchors = anchorsDir();
  if (!anchors) { console.log("  (peer skipped: ../shared/anchors not found; set LSMSEG_ANCHORS)"); return null; }
  const python = device === "cpu" ? "/usr/bin/python3" : process.env.LSMSEG_PYTHON ?? "python3";
  if (device === "cpu" && !torchAvailable()) { console.log("  (peer skipped: python3-torch is not installed; apt-get install -y python3-torch)"); return null; }
  const r = spawnSync(python, [join(root, "bench", "pretrain_peer.py"), "--precision", precision, "--patch", String(patch), "--batch", String(batch), "--steps", String(steps), "--threads", String(threads), "--device", device, "--features", features.join(",")], { encoding: "utf8", env: { ...process.env, LSMSEG_ANCHORS: anchors } });
  if (r.status !== 0) { console.log(`  (peer failed: ${r.stderr.trim().split("\n").pop()})`); return null; }
  return Number((JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as { median_s: number }).median_s);
}

console.log(`pretrain: one MAE step on the U-Net ${features.join("/")} (on ${device}) + reconstruction head, ${patch}³ × batch ${batch}, 75 % block mask, ${precision}, AdamW, ${threads} threads`);
console.log(`machine: ${machine()}; libtorch ${T.buildInfo().torchVersion}`);
const ours = lsmsegStep();
const theirs = peerStep();
const ratio = theirs ? ours / theirs : null;
console.log(`  lsmseg ${ours.toFixed(3)} s/step, PyTorch ${theirs?.toFixed(3) ?? "—"} s/step, ratio ${ratio?.toFixed(3) ?? "—"}`);
console.log(JSON.stringify({ bench: "pretrain", lsmseg_s: round(ours), torch_s: theirs === null ? null : round(theirs), ratio: ratio === null ? null : round(ratio, 3), precision, device, features: features.join(","), patch, batch, machine: machine() }));
