// One rank of the data-parallel tests (started by test/dist/ddp.test.ts, not a test itself).
// Trains a small conv net with SGD on a fixed global batch; rank r takes its share of the batch,
// gradients are averaged over ranks (c10d, Gloo): after backward, or with "overlap" during it (GradSync).
// Rank 0 writes the final weights as JSON. DDP_DEVICE=cuda puts rank r on cuda:r (NCCL when the addon has it).
import { writeFileSync } from "node:fs";
import * as T from "../../src/torch/index.ts";
import { Conv3d, Sequential, LeakyReLU } from "../../src/nn/index.ts";
import { SGD } from "../../src/optim/index.ts";

const [out, stepsText, globalBatchText, dieAtText, mode] = process.argv.slice(2);
const steps = Number(stepsText), globalBatch = Number(globalBatchText), dieAt = Number(dieAtText ?? -1);
const overlap = mode === "overlap" || mode === "frozen";
// "frozen": the first conv's weight is frozen after the hooks are in place (fine-tuning's frozen encoder)
const freeze = mode === "frozen";
T.setNumThreads(1);
const dist = T.distOptionsFromEnv();
const device = process.env.DDP_DEVICE === "cuda" ? `cuda:${dist?.rank ?? 0}` : "cpu";
const group = dist ? T.ProcessGroup.init({ ...dist, device }) : null;
const rank = group?.rank ?? 0, world = group?.worldSize ?? 1;
if (group && process.env.DDP_EXPECT_BACKEND && group.backend !== process.env.DDP_EXPECT_BACKEND) throw new Error(`backend ${group.backend}, expected ${process.env.DDP_EXPECT_BACKEND}`);
T.manualSeed(1234 + rank * 7); // different on each rank on purpose: broadcast must make them equal
const net = new Sequential(new Conv3d(1, 4, 3, { padding: 1 }), new LeakyReLU(0.01), new Conv3d(4, 1, 3, { padding: 1 }));
net.to(device);
if (group) group.broadcast([...net.stateDict().values()], 0);
// weight decay in "frozen" mode: a frozen parameter given a (zero) gradient would still shrink
const opt = new SGD(net.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: mode === "frozen" ? 0.1 : 0 });
// tiny buckets: several all-reduces per step (with overlap, one bucket per parameter)
const sync = group && overlap ? group.gradSync(net.parameters(), 0.0001) : null;
const early: number[] = [];
const frozenParam = net.parameters()[0];
const frozenBefore = freeze ? frozenParam.toArray() : null;
if (freeze) frozenParam.requiresGrad = false;
const local = globalBatch / world;
for (let step = 0; step < steps; step++) {
  if (step === dieAt && rank === 1) process.exit(3);
  T.tidy(() => {
    const g = new T.Generator(100 + step);
    const x = T.randn([globalBatch, 1, 6, 6, 6], { generator: g });
    const y = T.randn([globalBatch, 1, 6, 6, 6], { generator: g });
    const xs = x.narrow(0, rank * local, local).to(device), ys = y.narrow(0, rank * local, local).to(device);
    const loss = T.mseLoss(net.forward(xs) as T.Tensor, ys);
    opt.zeroGrad();
    loss.backward();
    if (sync) early.push(sync.finish().duringBackward);
    else group?.averageGradients(net.parameters(), 0.001);
    opt.step();
  });
}
if (frozenBefore && JSON.stringify(frozenParam.toArray()) !== JSON.stringify(frozenBefore)) throw new Error("the frozen parameter changed");
// a CPU tensor through the group (NCCL stages it on the device and back)
if (group) {
  const t = T.tensor([rank + 1]);
  group.allReduce([t]);
  if (t.item() !== (world * (world + 1)) / 2) throw new Error(`allReduce of a CPU tensor gave ${t.item()}`);
  t.dispose();
}
if (rank === 0) writeFileSync(out, JSON.stringify(Object.fromEntries([...net.stateDict()].map(([k, t]) => [k, t.to("cpu").toArray()]))));
if (sync) writeFileSync(`${out}.rank${rank}.early.json`, JSON.stringify(early));
group?.destroy();
