// One training step of the anchor U-Net (../shared/anchors/unet_step.py): 16/32/64/128 channels,
// 64³ × batch 2, cross-entropy + soft Dice, AdamW, in fp32 and bf16 autocast; the PyTorch peer
// runs the same step in the same run. Usage: npm run bench -- unet-step [--steps 6] [--patch 64]
// [--device cuda] [--features 32,64,128,256,320,320] (on a GPU, or at another scale, the peer is bench/gpu_peer.py)
import { parseArgs } from "node:util";
import * as T from "../src/torch/index.ts";
import { UNet, anchorUNetConfig } from "../src/nn/index.ts";
import { AdamW } from "../src/optim/index.ts";
import { machine, median, parseFeatures, round, runDevicePeer, runPeer } from "./common.ts";

const { values } = parseArgs({ options: { steps: { type: "string", default: "6" }, patch: { type: "string", default: "64" }, batch: { type: "string", default: "2" }, threads: { type: "string", default: "2" }, device: { type: "string", default: "cpu" }, features: { type: "string" } } });
const steps = Number(values.steps), patch = Number(values.patch), batch = Number(values.batch), threads = Number(values.threads);
const device = values.device, features = parseFeatures(values.features);
// the anchors' CPU peer runs only the anchor network on the CPU; anything else runs bench/gpu_peer.py
const devicePeer = device !== "cpu" || values.features !== undefined;
T.setNumThreads(threads);

function softDiceCe(logits: T.Tensor, y: T.Tensor, yf: T.Tensor): T.Tensor {
  const prob = T.softmax(logits, 1).select(1, 1);
  const dice = T.ones([]).sub(prob.mul(yf).sum().mul(2).add(1).div(prob.sum().add(yf.sum()).add(1)));
  return T.crossEntropy(logits, y).add(dice);
}

function lsmsegStep(precision: "fp32" | "bf16"): number {
  T.manualSeed(0);
  const net = new UNet(anchorUNetConfig({ features, strides: features.map((_, i) => (i === 0 ? 1 : 2)), kernelSizes: features.map(() => 3) }));
  net.to(device);
  const opt = new AdamW(net.parameters(), { lr: 1e-3 });
  const x = T.randn([batch, 1, patch, patch, patch]).to(device);
  const y = T.rand([batch, patch, patch, patch]).gt(0.9).long().to(device);
  const yf = y.float();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    T.cudaSynchronize();
    const t0 = performance.now();
    T.tidy(() => {
      const logits = T.autocast(() => net.forward(x) as T.Tensor, { enabled: precision === "bf16", device: device.startsWith("cuda") ? "cuda" : "cpu" }).float();
      const loss = softDiceCe(logits, y, yf);
      opt.zeroGrad();
      loss.backward();
      opt.step();
    });
    T.cudaSynchronize();
    times.push((performance.now() - t0) / 1000);
  }
  net.dispose();
  return median(times.slice(1));
}

console.log(`unet-step: U-Net ${features.join("/")}, ${patch}³ × batch ${batch}, CE + soft Dice, AdamW, on ${device}, ${threads} threads`);
console.log(`machine: ${machine()}; libtorch ${T.buildInfo().torchVersion}`);
const result: Record<string, number | string | null> = { bench: "unet-step" };
for (const precision of ["bf16", "fp32"] as const) {
  const ours = lsmsegStep(precision);
  const common = ["--precision", precision, "--patch", String(patch), "--batch", String(batch), "--steps", String(steps)];
  const peer = devicePeer ? runDevicePeer(["unet-step", ...common, "--device", device, "--features", features.join(",")])
    : runPeer("unet_step.py", [...common, "--threads", String(threads)]);
  const theirs = peer ? Number(peer.median_s) : null;
  const ratio = theirs ? ours / theirs : null;
  console.log(`  ${precision}: lsmseg ${ours.toFixed(3)} s/step, PyTorch ${theirs?.toFixed(3) ?? "—"} s/step, ratio ${ratio?.toFixed(3) ?? "—"}`);
  result[`lsmseg_${precision}_s`] = round(ours);
  result[`torch_${precision}_s`] = theirs === null ? null : round(theirs);
  result[`ratio_${precision}`] = ratio === null ? null : round(ratio, 3);
}
Object.assign(result, { device, features: features.join(","), patch, batch, machine: machine() });
console.log(JSON.stringify(result));
