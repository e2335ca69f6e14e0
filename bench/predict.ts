// Sliding-window prediction of the anchor U-Net over a cube, as ../shared/anchors/sliding_window.py does it
// (patch 64, step 0.5, Gaussian σ = patch/8, batch 2, bf16, no mirroring), against the PyTorch peer doing the same
// work, with the shared method (bench/common.ts), and the GFLOP/s reached beside the machine's matrix-product rate.
// Usage: npm run bench -- predict [--reps 5] [--size 128] [--patch 64] [--batch 2] [--precision bf16] [--mirror]
//   [--batches-per-forward K] (ours only: K batches of windows in one forward pass, default ours; the peer keeps its batch)
//   [--device cpu|cuda[:N]] [--features 16,32,64,128] (the peer runs on the same device, with the same channels)
import * as T from "../src/torch/index.ts";
import { UNet, anchorUNetConfig } from "../src/nn/index.ts";
import { type SlidingWindowOptions, slidingWindow } from "../src/seg/sliding_window.ts";
import { DEVICE_OPTIONS, Peer, benchArgs, compare, deviceArgs, deviceSeconds, load, machine, matmulRate, round } from "./common.ts";
import { unetForwardFlops } from "./flops.ts";

const { values, reps } = benchArgs("predict", {
  size: { type: "string", default: "128" }, patch: { type: "string", default: "64" }, batch: { type: "string", default: "2" },
  threads: { type: "string", default: "2" }, "batches-per-forward": { type: "string" }, mirror: { type: "boolean", default: false }, precision: { type: "string", default: "bf16" },
  ...DEVICE_OPTIONS,
});
const { device, features, peerArgs, unet, net: netName } = deviceArgs("predict", values);
const s = Number(values.size), p = Number(values.patch), batch = Number(values.batch);
T.setNumThreads(Number(values.threads));
const precision = values.precision === "fp32" ? "fp32" : "bf16";
const batchesPerForward = values["batches-per-forward"] === undefined ? undefined : Number(values["batches-per-forward"]);

/** Window starts along one axis, as sliding_window.py places them (step 0.5 of the patch). */
function starts(n: number): number {
  return n <= p ? 1 : Math.ceil((n - p) / (p * 0.5)) + 1;
}
const windows = starts(s) ** 3;
const flops = windows * unetForwardFlops(p, { features, inChannels: 1, classes: 2 }).total * (values.mirror ? 8 : 1);

console.log(`predict: ${netName}${device === "cpu" ? "" : ` on ${device}`}, ${s}³ volume, patch ${p}, step 0.5, batch ${batch}, ${precision}${values.mirror ? ", mirror x8" : ""}; ${windows} windows ≈ ${(flops / 1e9).toFixed(0)} GFLOP`);
console.log(`machine: ${machine()}; libtorch ${T.buildInfo().torchVersion}; load ${load().join(" ")}`);
const rate = await matmulRate(T, precision === "bf16" ? "bfloat16" : "float32", 2048, 7, device);
T.manualSeed(0);
const net = new UNet(anchorUNetConfig(unet)).eval();
if (device !== "cpu") net.to(device);
const vol = T.randn([1, s, s, s]);
const ours = () => deviceSeconds(T, device, () => T.tidy(() => {
  const o: SlidingWindowOptions = {
    patchSize: [p, p, p], numClasses: 2, batchSize: batch, mirror: values.mirror, precision, device, batchesPerForward,
  };
  T.argmaxAlong(slidingWindow((x) => net.forward(x) as T.Tensor, vol, o), 0).to("uint8"); // as lsmseg predict makes its labels
}));
const args = ["--size", String(s), "--patch", String(p), "--batch", String(batch), "--precision", precision, "--threads", String(values.threads), ...(values.mirror ? ["--mirror"] : []), ...peerArgs];
const peer = await Peer.start("PyTorch peer", "predict", args);
const fair = peer ? await Peer.start("PyTorch peer (fair)", "predict", args, { fair: true }) : null;
const c = await compare("predict", ours, peer, fair, reps);
peer?.close();
fair?.close();
const gflops = (t: { min: number } | null) => (t ? round(flops / t.min / 1e9, 1) : null);
const g = { lsmseg: gflops(c.lsmseg), peer: gflops(c.peer), peer_fair: gflops(c.peer_fair) };
console.log(`  GFLOP/s at the minimum: lsmseg ${g.lsmseg}, PyTorch ${g.peer ?? "—"}, fair ${g.peer_fair ?? "—"}; the ${precision} matrix product reaches ${rate}`);
console.log(`  M voxels/s at the minimum: lsmseg ${(s ** 3 / c.lsmseg.min / 1e6).toFixed(2)}${c.peer_fair ? `, PyTorch (fair) ${(s ** 3 / c.peer_fair.min / 1e6).toFixed(2)}` : ""}`);
console.log(JSON.stringify({ bench: "predict", device, features: features.join(","), size: s, patch: p, batch, batchesPerForward,
  precision, mirror: values.mirror, reps, windows, gflop: round(flops / 1e9, 1), matmul_gflops: rate, gflops: g, ...c, machine: machine() }));
