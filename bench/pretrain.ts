// One masked-image-modelling pretraining step (lsmseg's MAE: bottleneck-grid block mask, 75 % zeroed, MSE on
// masked voxels) on the unet-step benchmark's network (the anchor U-Net, 16/32/64/128) with a 1×1×1
// reconstruction head, 64³ × batch 2, AdamW, bf16 autocast, against the PyTorch peer (bench/pretrain_peer.py's step,
// run by bench/peer.py) with the shared method (bench/common.ts).
// Usage: npm run bench -- pretrain [--reps 7] [--patch 64] [--batch 2] [--precision bf16] [--device cpu|cuda[:N]]
//   [--features 16,32,64,128] (the peer runs on the same device, with the same channels)
import { Rng } from "../src/data/rng.ts";
import { UNet, anchorUNetConfig } from "../src/nn/index.ts";
import { AdamW } from "../src/optim/index.ts";
import { ReconstructionHead, bottleneckShape, decoderOutput, trainedKeys } from "../src/ssl/method.ts";
import { blockMask, maskedMse, upsampleMask } from "../src/ssl/methods/mae.ts";
import * as T from "../src/torch/index.ts";
import { DEVICE_OPTIONS, Peer, benchArgs, compare, deviceArgs, deviceSeconds, load, machine } from "./common.ts";

const { values, reps } = benchArgs("pretrain", {
  patch: { type: "string", default: "64" }, batch: { type: "string", default: "2" }, threads: { type: "string", default: "2" }, precision: { type: "string", default: "bf16" },
  ...DEVICE_OPTIONS,
}, 7);
const { device, type, features, peerArgs, unet, net: netName } = deviceArgs("pretrain", values);
const on = (t: T.Tensor) => (device === "cpu" ? t : t.to(device));
const patch = Number(values.patch), batch = Number(values.batch), threads = Number(values.threads);
const precision = values.precision === "fp32" ? "fp32" : "bf16";
T.setNumThreads(threads);

T.manualSeed(0);
const net = new UNet(anchorUNetConfig(unet));
const heads = new ReconstructionHead(net.config.features[0]);
if (device !== "cpu") { net.to(device); heads.to(device); }
const keys = new Set(trainedKeys(net, ["encoder", "decoder"]));
const params = [...net.namedParameters().filter(([k]) => keys.has(k)).map(([, p]) => p), ...heads.parameters()];
const opt = new AdamW(params, { lr: 1e-3 });
const x = on(T.randn([batch, 1, patch, patch, patch]));
const grid = bottleneckShape(net, [patch, patch, patch]);
let i = 0;
const step = () => T.tidy(() => {
  const mask = on(upsampleMask(blockMask(batch, grid, 0.75, new Rng(`bench ${i++}`)), batch, grid, [patch, patch, patch]));
  const pred = T.autocast(() => heads.forward(decoderOutput(net, x.mul(mask.neg().add(1)))), { enabled: precision === "bf16", device: type }).float();
  const loss = maskedMse(pred, x, mask);
  opt.zeroGrad();
  loss.backward();
  opt.step();
});

console.log(`pretrain: one MAE step on the ${netName}${device === "cpu" ? "" : ` (on ${device})`} + reconstruction head, ${patch}³ × batch ${batch}, 75 % block mask, ${precision}, AdamW, ${threads} threads`);
console.log(`machine: ${machine()}; libtorch ${T.buildInfo().torchVersion}; load ${load().join(" ")}`);
const args = ["--precision", precision, "--patch", String(patch), "--batch", String(batch), "--threads", String(threads), ...peerArgs];
const peer = await Peer.start("PyTorch peer", "pretrain", args);
const fair = peer ? await Peer.start("PyTorch peer (fair)", "pretrain", args, { fair: true }) : null;
const c = await compare(precision, () => deviceSeconds(T, device, step), peer, fair, reps);
peer?.close();
fair?.close();
net.dispose();
heads.dispose();
x.dispose();
console.log(JSON.stringify({ bench: "pretrain", device, features: features.join(","), precision, patch, batch, reps, ...c, machine: machine() }));
