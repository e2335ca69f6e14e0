// One training step of the anchor U-Net (../shared/anchors/unet_step.py): 16/32/64/128 channels,
// 64³ × batch 2, cross-entropy + soft Dice, AdamW, in fp32 and bf16 autocast; the PyTorch peer
// runs the same step in the same run. Usage: npm run bench -- unet-step [--steps 6] [--patch 64]
import { parseArgs } from "node:util";
import * as T from "../src/torch/index.ts";
import { UNet, anchorUNetConfig } from "../src/nn/index.ts";
import { AdamW } from "../src/optim/index.ts";
import { machine, median, round, runPeer } from "./common.ts";

const { values } = parseArgs({ options: { steps: { type: "string", default: "6" }, patch: { type: "string", default: "64" }, batch: { type: "string", default: "2" }, threads: { type: "string", default: "2" } } });
const steps = Number(values.steps), patch = Number(values.patch), batch = Number(values.batch), threads = Number(values.threads);
T.setNumThreads(threads);

function softDiceCe(logits: T.Tensor, y: T.Tensor, yf: T.Tensor): T.Tensor {
  const prob = T.softmax(logits, 1).select(1, 1);
  const dice = T.ones([]).sub(prob.mul(yf).sum().mul(2).add(1).div(prob.sum().add(yf.sum()).add(1)));
  return T.crossEntropy(logits, y).add(dice);
}

function lsmsegStep(precision: "fp32" | "bf16"): number {
  T.manualSeed(0);
  const net = new UNet(anchorUNetConfig());
  const opt = new AdamW(net.parameters(), { lr: 1e-3 });
  const x = T.randn([batch, 1, patch, patch, patch]);
  const y = T.rand([batch, patch, patch, patch]).gt(0.9).long();
  const yf = y.float();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    T.tidy(() => {
      const logits = T.autocast(() => net.forward(x) as T.Tensor, { enabled: precision === "bf16" }).float();
      const loss = softDiceCe(logits, y, yf);
      opt.zeroGrad();
      loss.backward();
      opt.step();
    });
    times.push((performance.now() - t0) / 1000);
  }
  net.dispose();
  return median(times.slice(1));
}

console.log(`unet-step: anchor U-Net (1.40 M parameters), ${patch}³ × batch ${batch}, CE + soft Dice, AdamW, ${threads} threads`);
console.log(`machine: ${machine()}; libtorch ${T.buildInfo().torchVersion}`);
const result: Record<string, number | string | null> = { bench: "unet-step" };
for (const precision of ["bf16", "fp32"] as const) {
  const ours = lsmsegStep(precision);
  const peer = runPeer("unet_step.py", ["--precision", precision, "--patch", String(patch), "--batch", String(batch), "--steps", String(steps), "--threads", String(threads)]);
  const theirs = peer ? Number(peer.median_s) : null;
  const ratio = theirs ? ours / theirs : null;
  console.log(`  ${precision}: lsmseg ${ours.toFixed(3)} s/step, PyTorch ${theirs?.toFixed(3) ?? "—"} s/step, ratio ${ratio?.toFixed(3) ?? "—"}`);
  result[`lsmseg_${precision}_s`] = round(ours);
  result[`torch_${precision}_s`] = theirs === null ? null : round(theirs);
  result[`ratio_${precision}`] = ratio === null ? null : round(ratio, 3);
}
result.machine = machine();
console.log(JSON.stringify(result));
