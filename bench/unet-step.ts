// One training step of the anchor U-Net (../shared/anchors/unet_step.py): 16/32/64/128 channels, 64³ × batch 2,
// cross-entropy + soft Dice, AdamW, in bf16 autocast and fp32, against the PyTorch peer doing the same step, with
// the shared method (bench/common.ts: warm-up, interleaved repetitions, minima and medians, the peer as shipped
// and with lsmseg's heap settings). Also: GFLOP/s reached beside the machine's matrix-product rate measured here,
// and a per-operator profile of one bf16 step for lsmseg (native/profiler.cc) beside PyTorch's (its autograd
// profiler). Usage: npm run bench -- unet-step [--reps 7] [--patch 64] [--batch 2] [--threads 2] [--precisions bf16,fp32]
//   [--no-profile] [--device cpu|cuda[:N]] [--features 16,32,64,128] (the peer runs on the same device, same channels)
import * as T from "../src/torch/index.ts";
import { native } from "../src/torch/native.ts";
import { UNet, anchorUNetConfig } from "../src/nn/index.ts";
import { AdamW } from "../src/optim/index.ts";
import { DEVICE_OPTIONS, type OpStat, Peer, benchArgs, compare, deviceArgs, deviceSeconds, load, machine, matmulRate, round } from "./common.ts";
import { unetStepFlops } from "./flops.ts";
import { printProfiles, topOps } from "./profile.ts";

const { values, reps } = benchArgs("unet-step", {
  patch: { type: "string", default: "64" }, batch: { type: "string", default: "2" }, threads: { type: "string", default: "2" },
  precisions: { type: "string", default: "bf16,fp32" }, "no-profile": { type: "boolean", default: false }, ...DEVICE_OPTIONS,
}, 7);
const { device, type, features, peerArgs, unet, net: netName } = deviceArgs("unet-step", values);
const patch = Number(values.patch), batch = Number(values.batch), threads = Number(values.threads);
const precisions = values.precisions.split(",");
if (!precisions.every((p) => p === "bf16" || p === "fp32")) {
  console.error(`bench unet-step: --precisions: expected bf16 and/or fp32, got '${values.precisions}'`);
  process.exit(2);
}
T.setNumThreads(threads);

function softDiceCe(logits: T.Tensor, y: T.Tensor, yf: T.Tensor): T.Tensor {
  const prob = T.softmax(logits, 1).select(1, 1);
  const dice = T.ones([]).sub(prob.mul(yf).sum().mul(2).add(1).div(prob.sum().add(yf.sum()).add(1)));
  return T.crossEntropy(logits, y).add(dice);
}

/** The network, optimizer and data of the step, and one step; dispose() frees them. */
function lsmsegTrainer(precision: "fp32" | "bf16") {
  T.manualSeed(0);
  const net = new UNet(anchorUNetConfig(unet));
  if (device !== "cpu") net.to(device);
  const opt = new AdamW(net.parameters(), { lr: 1e-3 });
  const on = (t: T.Tensor) => (device === "cpu" ? t : t.to(device));
  const x = on(T.randn([batch, 1, patch, patch, patch]));
  const y = on(T.rand([batch, patch, patch, patch]).gt(0.9).long());
  const yf = y.float();
  const step = () => T.tidy(() => {
    const logits = T.autocast(() => net.forward(x) as T.Tensor, { enabled: precision === "bf16", device: type }).float();
    const loss = softDiceCe(logits, y, yf);
    opt.zeroGrad();
    loss.backward();
    opt.step();
  });
  return { step, dispose: () => { net.dispose(); x.dispose(); y.dispose(); yf.dispose(); } };
}

console.log(`unet-step: ${netName === "anchor U-Net" ? "anchor U-Net (1.40 M parameters)" : netName}, ${patch}³ × batch ${batch}, CE + soft Dice, AdamW, ${device === "cpu" ? "" : `on ${device}, `}${threads} threads`);
console.log(`machine: ${machine()}; libtorch ${T.buildInfo().torchVersion}; load ${load().join(" ")}`);
const flops = unetStepFlops(patch, batch, { features, inChannels: 1, classes: 2 });
const rate = { bf16: await matmulRate(T, "bfloat16", 2048, 7, device), fp32: await matmulRate(T, "float32", 2048, 7, device) };
console.log(`  step ≈ ${(flops / 1e9).toFixed(0)} GFLOP (convolutions); this machine's 2048² matrix product: bf16 ${rate.bf16} GFLOP/s, fp32 ${rate.fp32} GFLOP/s`);

const result: Record<string, unknown> = { bench: "unet-step", device, features: features.join(","), patch, batch, threads, reps, step_gflop: round(flops / 1e9, 1), matmul_gflops: rate };
for (const precision of precisions as ("bf16" | "fp32")[]) {
  const args = ["--precision", precision, "--patch", String(patch), "--batch", String(batch), "--threads", String(threads), ...peerArgs];
  const peer = await Peer.start("PyTorch peer", "unet-step", args);
  const fair = peer ? await Peer.start("PyTorch peer (fair)", "unet-step", args, { fair: true }) : null;
  const trainer = lsmsegTrainer(precision);
  const c = await compare(precision, () => deviceSeconds(T, device, trainer.step), peer, fair, reps);
  const gflops = (t: { min: number } | null) => (t ? round(flops / t.min / 1e9, 1) : null);
  const g = { lsmseg: gflops(c.lsmseg), peer: gflops(c.peer), peer_fair: gflops(c.peer_fair) };
  console.log(`  ${precision} GFLOP/s at the minimum: lsmseg ${g.lsmseg}, PyTorch ${g.peer ?? "—"}, fair ${g.peer_fair ?? "—"}; the ${precision} matrix product reaches ${rate[precision]}`);
  result[precision] = { ...c, gflops: g };
  result[`ratio_${precision}`] = c.ratio;
  if (precision === "bf16" && !values["no-profile"]) {
    native.profilerStart();
    const wall = await deviceSeconds(T, device, trainer.step);
    const ours: OpStat[] = native.profilerStop();
    const theirs = fair ? await fair.profile() : null;
    printProfiles("one bf16 step", { s: wall, ops: ours }, theirs);
    result.profile = { lsmseg: { s: round(wall), ops: topOps(ours) }, peer_fair: theirs ? { s: round(theirs.s), ops: topOps(theirs.ops) } : null };
  }
  trainer.dispose();
  peer?.close();
  fair?.close();
}
result.ratio = (result[precisions[0]] as { ratio: number | null }).ratio;
result.machine = machine();
console.log(JSON.stringify(result));
