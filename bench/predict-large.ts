// Out-of-core prediction: voxels/s and peak resident memory when predicting a whole volume block by block under
// --max-memory-mb, with a small model fine-tuned here on the tiny synthetic set (U-Net, 4 base features, 32³
// patch, fp32, no mirroring: the figures measure the streaming machinery, not a production network). The issue
// asks for a volume of at least 4 GiB (--shape 512,2048,2048 --step 1: about half an hour on 2 cores); the
// default is smaller so that it finishes in minutes.
//   npm run bench -- predict-large [--shape Z,Y,X] [--max-memory-mb N] [--step F] [--batch N] [--precision bf16]
//   defaults 64,384,384 (18 MB), 192, 0.5, 2, fp32
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Vec3 } from "../src/io/index.ts";
import { finetune } from "../src/seg/finetune.ts";
import { loadModel } from "../src/seg/model.ts";
import { predictVolume } from "../src/seg/predict.ts";
import { inMemoryBytes, predictLarge } from "../src/seg/predict_large.ts";
import { readVolume } from "../src/io/index.ts";
import { synthDataset } from "../src/synth/index.ts";
import { load, machine, round } from "./common.ts";
import { rawVolume } from "./raw_volume.ts";

const { values } = parseArgs({ options: { shape: { type: "string" }, "max-memory-mb": { type: "string" }, step: { type: "string" }, batch: { type: "string" }, precision: { type: "string" } } });
const precision = (values.precision ?? "fp32") as "fp32" | "bf16";
const step = Number(values.step ?? 0.5), batchSize = Number(values.batch ?? 2);
const shape = (values.shape ?? "64,384,384").split(",").map(Number) as Vec3;
const budgetMb = Number(values["max-memory-mb"] ?? 192);
const root = join(tmpdir(), "data");
mkdirSync(root, { recursive: true });
const input = join(root, `bench_raw_${shape.join("x")}_cfos_neuron`);
await rawVolume(input, shape);
const work = join(root, "bench_predict_large");
rmSync(work, { recursive: true, force: true });
await synthDataset(join(work, "synth"), { preset: "tiny", seed: 1, quiet: true });
await finetune({ data: join(work, "synth"), out: join(work, "run"), fold: 0, epochs: 1, stepsPerEpoch: 2, workers: 0, precision: "fp32", quiet: true, plan: { baseFeatures: 4, patchSize: [32, 32, 32], batchSize: 2 } });
const model = loadModel(join(work, "run"));
const rssBefore = process.resourceUsage().maxRSS * 1024;
const loadBefore = load();
const voxels = shape[0] * shape[1] * shape[2];
let blocks = 0, batches = 0, lastReport = performance.now();
const t0 = performance.now();
await predictLarge(model, input, join(work, "mask.ome.zarr"), {
  mirror: false, precision, batchSize, step, maxMemoryBytes: budgetMb * 2 ** 20,
  onProgress: (done, total) => {
    batches = total;
    if (performance.now() - lastReport > 30_000) {
      lastReport = performance.now();
      console.log(`  ${done}/${total} batches, ${((performance.now() - t0) / 1000).toFixed(0)} s, RSS ${(process.memoryUsage.rss() / 2 ** 30).toFixed(2)} GiB`);
    }
  },
  onBlock: (_d, n) => { blocks = n; },
});
const s = (performance.now() - t0) / 1000;
const peak = process.resourceUsage().maxRSS * 1024;
// the same prediction in memory where it fits easily: what the streaming costs on top of the network
const memBytes = inMemoryBytes({ dtype: "uint16", shape, spacingUm: [1, 1, 1] }, 2);
let inMemoryS: number | null = null;
if (memBytes < 2 * 2 ** 30) {
  const vol = await readVolume(input);
  const t1 = performance.now();
  predictVolume(model, vol, { mirror: false, precision, batchSize, step });
  inMemoryS = (performance.now() - t1) / 1000;
}
const gib = (b: number) => b / 2 ** 30;
console.log(`machine: ${machine()}; one run (it already averages over every block); load ${loadBefore[0]} → ${load()[0]}`);
console.log(`volume ${shape.join("×")} uint16 = ${(voxels * 2 / 2 ** 20).toFixed(0)} MB; in-memory prediction would hold ≈ ${gib(inMemoryBytes({ dtype: "uint16", shape, spacingUm: [1, 1, 1] }, 2)).toFixed(2)} GiB`);
console.log(`out of core with --max-memory-mb ${budgetMb}, step ${step}, batch ${batchSize}, ${precision}: ${blocks} blocks, ${batches} batches, ${s.toFixed(1)} s = ${(voxels / s / 1e6).toFixed(2)} Mvoxels/s, peak RSS ${gib(peak).toFixed(2)} GiB (${gib(rssBefore).toFixed(2)} GiB before prediction)`);
if (inMemoryS !== null) console.log(`in memory (predictVolume, same model and settings): ${inMemoryS.toFixed(1)} s; out of core / in memory = ${(s / inMemoryS).toFixed(2)}`);
rmSync(work, { recursive: true, force: true });
console.log(JSON.stringify({
  bench: "predict-large", machine: machine(), shape, rawMB: round(voxels * 2 / 2 ** 20, 1), maxMemoryMb: budgetMb, step, batchSize, precision, blocks, batches, seconds: round(s, 2),
  voxelsPerS: Math.round(voxels / s), inMemorySeconds: inMemoryS === null ? null : round(inMemoryS, 2),
  peakRssGiB: round(gib(peak), 3), rssBeforeGiB: round(gib(rssBefore), 3),
  load: { before: loadBefore, after: load() },
  inMemoryGiB: round(gib(inMemoryBytes({ dtype: "uint16", shape, spacingUm: [1, 1, 1] }, 2)), 3),
}));
