// One rank of `npm run bench -- ddp` (not a benchmark by itself): U-Net training steps with gradients
// averaged over the ranks; rank 0 prints {"samples_per_s": …}.
import * as T from "../src/torch/index.ts";
import { UNet, anchorUNetConfig } from "../src/nn/index.ts";
import { AdamW } from "../src/optim/index.ts";

const [stepsText, patchText, batchText] = process.argv.slice(2);
const steps = Number(stepsText), p = Number(patchText), b = Number(batchText);
const dist = T.distOptionsFromEnv();
const group = dist ? T.ProcessGroup.init(dist) : null;
T.manualSeed(0);
const net = new UNet(anchorUNetConfig());
if (group) group.broadcast([...net.stateDict().values()], 0);
const opt = new AdamW(net.parameters(), { lr: 1e-3 });
const x = T.randn([b, 1, p, p, p]);
const y = T.rand([b, p, p, p]).gt(0.9).long();
const sync = group?.gradSync(net.parameters()) ?? null; // all-reduce overlapped with backward, as in training
let t0 = 0;
for (let i = 0; i <= steps; i++) {
  if (i === 1) { group?.barrier(); t0 = performance.now(); }
  T.tidy(() => {
    const logits = T.autocast(() => net.forward(x) as T.Tensor, { enabled: T.defaultPrecision() === "bf16" }).float();
    const loss = T.crossEntropy(logits, y);
    opt.zeroGrad();
    loss.backward();
    sync?.finish();
    opt.step();
  });
}
group?.barrier();
const seconds = (performance.now() - t0) / 1000;
if ((group?.rank ?? 0) === 0) console.log(JSON.stringify({ samples_per_s: (steps * b * (group?.worldSize ?? 1)) / seconds, seconds }));
group?.destroy();
