// The CPU kernels a U-Net step spends its time in, one at a time, to compare libtorch builds (Debian 12's 1.13
// against Debian 13's 2.6, docs/gpu.md): conv3d forward + backward in fp32 and under bf16 autocast, with oneDNN on
// (--native: also with oneDNN off, where bf16 takes ATen's slow reference kernel: ~30× slower), and instance norm +
// LeakyReLU forward + backward. Median of --reps after one warm-up.
// Usage: npm run bench -- cpu-ops [--channels 32] [--size 48] [--batch 2] [--reps 5] [--threads 2] [--native]
// (ATEN_CPU_CAPABILITY=avx2 in the environment limits libtorch's own kernels to AVX2.)
import { parseArgs } from "node:util";
import * as T from "../src/torch/index.ts";
import { machine, median, round } from "./common.ts";

const { values } = parseArgs({ options: { channels: { type: "string", default: "32" }, size: { type: "string", default: "48" }, batch: { type: "string", default: "2" }, reps: { type: "string", default: "5" }, threads: { type: "string", default: "2" }, native: { type: "boolean", default: false } } });
const c = Number(values.channels), s = Number(values.size), b = Number(values.batch), reps = Number(values.reps);
T.setNumThreads(Number(values.threads));
T.manualSeed(0);

function time(fn: () => void): number {
  const times: number[] = [];
  for (let i = 0; i <= reps; i++) {
    const t0 = performance.now();
    T.tidy(fn);
    times.push((performance.now() - t0) / 1000);
  }
  return median(times.slice(1));
}

const x = T.randn([b, c, s, s, s]);
const w = T.randn([c, c, 3, 3, 3]).mul(0.05).requiresGrad_();
const gamma = T.ones([c]).requiresGrad_(), beta = T.zeros([c]).requiresGrad_();
const conv = (bf16: boolean) => () => {
  const y = T.autocast(() => T.conv3d(x, w, null, { padding: 1 }), { enabled: bf16 }).float();
  y.sum().backward();
};
const result: Record<string, number | string | boolean> = { bench: "cpu-ops", torch: T.buildInfo().torchVersion, capability: process.env.ATEN_CPU_CAPABILITY ?? "default", channels: c, size: s, batch: b };
for (const mkldnn of values.native ? [true, false] : [true]) {
  T.setMkldnnEnabled(mkldnn);
  result[`conv_fp32_${mkldnn ? "onednn" : "native"}_s`] = round(time(conv(false)));
  result[`conv_bf16_${mkldnn ? "onednn" : "native"}_s`] = round(time(conv(true)));
}
T.setMkldnnEnabled(true);
result.norm_act_s = round(time(() => T.leakyRelu(T.instanceNorm(x.requiresGrad_(), gamma, beta)).sum().backward()));
result.machine = machine();
console.log(`cpu-ops: ${b}×${c}×${s}³, libtorch ${result.torch}, ATEN_CPU_CAPABILITY ${result.capability}`);
console.log(JSON.stringify(result));
