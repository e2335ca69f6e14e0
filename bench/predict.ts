// Sliding-window prediction of the anchor U-Net over a cube, as ../shared/anchors/sliding_window.py
// does it (patch 64, step 0.5, Gaussian σ = patch/8, batch 2, bf16, no mirroring); the PyTorch peer
// runs the same work in the same run. Usage: npm run bench -- predict [--size 128] [--mirror]
// [--device cuda] [--features 32,64,128,256,320,320] (on a GPU, or at another scale, the peer is bench/gpu_peer.py)
import { parseArgs } from "node:util";
import * as T from "../src/torch/index.ts";
import { UNet, anchorUNetConfig } from "../src/nn/index.ts";
import { slidingWindow } from "../src/seg/sliding_window.ts";
import { machine, parseFeatures, round, runDevicePeer, runPeer } from "./common.ts";

const { values } = parseArgs({ options: { size: { type: "string", default: "128" }, patch: { type: "string", default: "64" }, batch: { type: "string", default: "2" }, threads: { type: "string", default: "2" }, mirror: { type: "boolean", default: false }, precision: { type: "string", default: "bf16" }, device: { type: "string", default: "cpu" }, features: { type: "string" } } });
const device = values.device, features = parseFeatures(values.features);
const devicePeer = device !== "cpu" || values.features !== undefined;
const s = Number(values.size), p = Number(values.patch), batch = Number(values.batch);
T.setNumThreads(Number(values.threads));
const precision = values.precision === "fp32" ? "fp32" : "bf16";

console.log(`predict: U-Net ${features.join("/")} on ${device}, ${s}³ volume, patch ${p}, step 0.5, batch ${batch}, ${precision}${values.mirror ? ", mirror x8" : ""}`);
console.log(`machine: ${machine()}; libtorch ${T.buildInfo().torchVersion}`);
T.manualSeed(0);
const net = new UNet(anchorUNetConfig({ features, strides: features.map((_, i) => (i === 0 ? 1 : 2)), kernelSizes: features.map(() => 3) })).eval();
net.to(device);
const vol = T.randn([1, s, s, s]);
T.cudaSynchronize();
const t0 = performance.now();
const seg = T.tidy(() => slidingWindow((x) => net.forward(x) as T.Tensor, vol, { patchSize: [p, p, p], numClasses: 2, batchSize: batch, mirror: values.mirror, precision, device }).argmax(0).to("uint8"));
T.cudaSynchronize();
const ours = (performance.now() - t0) / 1000;
seg.dispose();
console.log(`  lsmseg:  ${ours.toFixed(2)} s (${(s ** 3 / ours / 1e6).toFixed(2)} M voxels/s)`);
const peer = devicePeer ? runDevicePeer(["predict", "--size", String(s), "--patch", String(p), "--batch", String(batch), "--precision", precision, "--device", device, "--features", features.join(",")])
  : runPeer("sliding_window.py", ["--size", String(s), "--patch", String(p), "--batch", String(batch), "--precision", precision, "--threads", String(values.threads), ...(values.mirror ? ["--mirror"] : [])]);
const theirs = peer ? Number(peer.seconds) : null;
if (theirs) console.log(`  PyTorch: ${theirs.toFixed(2)} s (${(s ** 3 / theirs / 1e6).toFixed(2)} M voxels/s)`);
const ratio = theirs ? ours / theirs : null;
console.log(`  ratio ${ratio?.toFixed(3) ?? "—"} (lsmseg time / PyTorch time)`);
console.log(JSON.stringify({ bench: "predict", size: s, patch: p, precision, mirror: values.mirror, device, features: features.join(","), lsmseg_s: round(ours, 3), torch_s: theirs === null ? null : round(theirs, 3), ratio: ratio === null ? null : round(ratio, 3), machine: machine() }));
