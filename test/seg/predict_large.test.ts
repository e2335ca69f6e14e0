// Out-of-core prediction: a volume predicted slab by slab under a memory budget smaller than its in-memory
// prediction equals in-memory predictVolume voxel for voxel, into OME-Zarr and a TIFF plane folder, and a run
// stopped part-way resumes without recomputing the slabs already written.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { normalizationOf } from "../../src/data/normalize.ts";
import { type Volume, makeVolume, openVolume, readVolume, writeVolume } from "../../src/io/index.ts";
import { finetune } from "../../src/seg/finetune.ts";
import { type LoadedModel, loadModel } from "../../src/seg/model.ts";
import { predictFile, predictVolume } from "../../src/seg/predict.ts";
import { blockGrid, inMemoryBytes, planBlocks, predictLarge, streamingNormalization } from "../../src/seg/predict_large.ts";
import { windowGrid } from "../../src/seg/sliding_window.ts";
import { synthDataset } from "../../src/synth/index.ts";
import * as T from "../../src/torch/index.ts";

let dir = "";
let model: LoadedModel;
let vol: Volume;
let input = "";
let batchesAll = 0;

before(async () => {
  T.setNumThreads(1);
  dir = mkdtempSync(join(tmpdir(), "lsmseg-predict-large-"));
  const data = join(dir, "data");
  await synthDataset(data, { preset: "tiny", seed: 2, quiet: true });
  await finetune({ data, out: join(dir, "run"), fold: 0, epochs: 1, stepsPerEpoch: 2, workers: 0, precision: "fp32", quiet: true, plan: { baseFeatures: 4, patchSize: [32, 32, 32], batchSize: 2 } });
  model = loadModel(join(dir, "run"));
  // a tall volume (planes of the two raw volumes, repeated) with y smaller than the patch, so it is padded
  const a = await readVolume(join(data, "raw", "volume01_cfos_neuron")), b = await readVolume(join(data, "raw", "volume02_blood_vessel.ome.zarr"));
  const [D, H, W] = [160, 28, 56];
  const v = new Uint16Array(D * H * W);
  for (let z = 0; z < D; z++) {
    const src = (z >> 5) % 2 ? b : a;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) v[(z * H + y) * W + x] = src.data[((z % 32) * 80 + y + 26) * 80 + x + 12];
  }
  vol = makeVolume("uint16", [D, H, W], [2, 1, 1], v);
  input = join(dir, "tall");
  await writeVolume(input, vol); // a TIFF plane folder
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("streaming normalisation gives normalizationOf's numbers exactly, with and without subsampling", async () => {
  const source = await openVolume(input);
  try {
    assert.deepEqual(await streamingNormalization(source, { slabBytes: 20_000 }), normalizationOf(vol.data));
    assert.deepEqual(
      await streamingNormalization(source, { slabBytes: 20_000, maxSamples: 1_000_000 }), normalizationOf(vol.data, { maxSamples: 1_000_000 }),
    );
  } finally {
    await source.close();
  }
});

test("slab-by-slab prediction under a budget smaller than the volume's equals in-memory prediction", async () => {
  const opts = { mirror: false, precision: "fp32" as const, batchSize: 2 };
  const budget = 4 * 2 ** 20;
  assert.ok(inMemoryBytes(vol, model.plan.network.numClasses) > budget, "the budget is smaller than in-memory prediction needs");
  const expected = predictVolume(model, vol, opts).mask;
  assert.ok(expected.some((m) => m === 1) && expected.some((m) => m === 0), "a mask with both classes");
  for (const name of ["mask.ome.zarr", "mask_planes"]) {
    let slabs = 0, batches = 0;
    const out = join(dir, name);
    await predictLarge(model, input, out, { ...opts, maxMemoryBytes: budget, onBlock: (_d, n) => { slabs = n; }, onProgress: () => { batches++; } });
    batchesAll = batches;
    assert.ok(slabs > 2, `${slabs} slabs`);
    const got = await readVolume(out);
    assert.deepEqual(got.shape, vol.shape);
    assert.deepEqual(got.spacingUm, vol.spacingUm);
    assert.ok(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(Buffer.from(expected)), `${name} equals in-memory prediction`);
    assert.ok(!existsSync(`${out}.parts`));
  }
  // into the labels/ of the input's own OME-Zarr image, in memory and slab by slab: listed there, the image untouched
  const image = join(dir, "tall.ome.zarr");
  await writeVolume(image, vol);
  for (const [name, budgetBytes] of [["in_memory", undefined], ["slabs", budget]] as const) {
    await predictFile(model, image, join(image, "labels", name), { ...opts, maxMemoryBytes: budgetBytes });
    assert.ok(Buffer.from((await readVolume(join(image, "labels", name))).data).equals(Buffer.from(expected)), `labels/${name}`);
  }
  assert.deepEqual(JSON.parse(readFileSync(join(image, "labels", ".zattrs"), "utf8")).labels, ["in_memory", "slabs"]);
  assert.deepEqual(readdirSync(join(image, "labels")).sort(), [".zattrs", ".zgroup", "in_memory", "slabs"], "nothing else left in labels/");
  assert.ok(Buffer.from((await readVolume(image)).data.buffer).equals(Buffer.from(vol.data.buffer)), "the image is untouched");
  // predictFile switches to slabs by itself when the budget is too small
  const out = join(dir, "auto.ome.zarr");
  await predictFile(model, input, out, { ...opts, maxMemoryBytes: budget });
  assert.ok(Buffer.from((await readVolume(out)).data).equals(Buffer.from(expected)));
  assert.ok(readdirSync(out).includes("1"), "an OME-Zarr pyramid");
});

test("a run stopped part-way resumes: slabs already written are not recomputed", async () => {
  const opts = { mirror: false, precision: "fp32" as const, batchSize: 2, maxMemoryBytes: 4 * 2 ** 20 };
  const out = join(dir, "resumed.ome.zarr");
  let batchesFirst = 0;
  await assert.rejects(predictLarge(model, input, out, {
    ...opts, onProgress: () => { batchesFirst++; }, onBlock: (done) => { if (done === 3) throw new Error("stop"); },
  }), /stop/);
  assert.equal(readdirSync(`${out}.parts`).filter((f) => f.startsWith("block_")).length, 3);
  let batchesAfter = 0, firstSlabSeen = 0;
  // resumed with another budget (or number of ranks), the run keeps the blocks it started with
  await predictLarge(model, input, out, {
    ...opts, maxMemoryBytes: 16 * 2 ** 20, onProgress: () => { batchesAfter++; }, onBlock: (d) => { firstSlabSeen ||= d; },
  });
  assert.equal(firstSlabSeen, 1);
  assert.ok(batchesAfter < batchesAll && batchesAfter + batchesFirst >= batchesAll, `${batchesFirst} + ${batchesAfter} vs ${batchesAll} batches`);
  assert.ok(Buffer.from((await readVolume(out)).data).equals(Buffer.from((await readVolume(join(dir, "mask_planes"))).data)));
});

test("y/x blocks (planes split too, batch-mates outside the block read by themselves) equal in-memory prediction", async () => {
  for (const [blockShape, batchSize] of [[[40, 28, 24], 2], [[37, 17, 20], 3]] as Array<[[number, number, number], number]>) {
    const opts = { mirror: false, precision: "fp32" as const, batchSize };
    const expected = predictVolume(model, vol, opts).mask;
    const out = join(dir, `blocks_${blockShape.join("x")}.nii.gz`);
    let blocks = 0;
    await predictLarge(model, input, out, { ...opts, blockShape, onBlock: (_d, n) => { blocks = n; } });
    assert.equal(blocks, blockGrid(vol.shape, blockShape).length);
    assert.ok(blockGrid(vol.shape, blockShape).some(([, y, x]) => y[0] > 0 || x[0] > 0), "blocks split the planes");
    assert.ok(Buffer.from((await readVolume(out)).data).equals(Buffer.from(expected)), `blocks ${blockShape.join("×")}, batch ${batchSize}`);
  }
});

test("block planning: full planes when they fit, else a patch deep and narrower in y/x, within the budget", () => {
  // the need of a block, written out: input with two patches of margin per axis (clamped), output for the block
  const need = (b: number[], shape: number[], patch: number[], inputBytes: number, classes: number) =>
    b.reduce((n, v, i) => n * Math.min(Math.max(shape[i], patch[i]), v + 2 * patch[i]), 1) * (inputBytes + 8)
    + b[0] * b[1] * b[2] * (4 * classes + 14);
  const small = planBlocks([100, 50, 50], [32, 32, 32], { budget: 2 ** 40, inputBytes: 2, numClasses: 2 });
  assert.deepEqual(small.shape, [100, 50, 50]);
  const capped = planBlocks([100, 50, 50], [32, 32, 32], { budget: 2 ** 40, inputBytes: 2, numClasses: 2, maxDepth: 50 });
  assert.deepEqual(capped.shape, [50, 50, 50], "two ranks: at most half the depth each");
  const budget = need([40, 50, 50], [100, 50, 50], [32, 32, 32], 2, 2);
  const planes = planBlocks([100, 50, 50], [32, 32, 32], { budget, inputBytes: 2, numClasses: 2 });
  assert.deepEqual(planes.shape, [40, 50, 50]);
  assert.equal(planes.bytes, budget);
  // a challenge-sized organ (2000 × 4200 × 4200 uint16, patch 128): planes of 4200² cannot fit 4 GiB
  const organ = planBlocks([2000, 4200, 4200], [128, 128, 128], { budget: 4 * 2 ** 30, inputBytes: 2, numClasses: 2 });
  assert.equal(organ.shape[0], 128);
  assert.ok(organ.shape[1] === organ.shape[2] && organ.shape[1] >= 128 && organ.shape[1] < 4200, `${organ.shape}`);
  assert.equal(organ.bytes, need(organ.shape, [2000, 4200, 4200], [128, 128, 128], 2, 2));
  assert.ok(organ.bytes <= 4 * 2 ** 30);
  assert.ok(need([128, organ.shape[1] + 1, organ.shape[2] + 1], [2000, 4200, 4200], [128, 128, 128], 2, 2) > 4 * 2 ** 30, "the largest square that fits");
  // the deepest slab of full planes that fits, exactly (a budget of exactly 196 planes' need)
  const exact = need([196, 1000, 1000], [2000, 1000, 1000], [128, 128, 128], 2, 2);
  assert.deepEqual(
    planBlocks([2000, 1000, 1000], [128, 128, 128], { budget: exact, inputBytes: 2, numClasses: 2 }), { shape: [196, 1000, 1000], bytes: exact },
  );
});

test("progress counts the windows run, up to exactly the total it announces (a batch shared by blocks counts each time)", async () => {
  const blockShape: [number, number, number] = [40, 28, 24], batchSize = 2;
  const calls: Array<[number, number]> = [];
  await predictLarge(model, input, join(dir, "progress.nii.gz"), {
    mirror: false, precision: "fp32", batchSize, blockShape, onProgress: (done, total) => { calls.push([done, total]); },
  });
  // the obvious count: per block, the batches holding a window that overlaps it, each with its windows
  const p = model.plan.patchSize, grid = windowGrid(vol.shape, p as [number, number, number]);
  let want = 0;
  for (const block of blockGrid(vol.shape, blockShape)) {
    const lo = block.map(([a], i) => a + grid.padBefore[i]), hi = block.map(([, e], i) => e + grid.padBefore[i]);
    const hits = new Set<number>();
    grid.boxes.forEach((w, k) => { if (w.every((v, i) => v < hi[i] && v + p[i] > lo[i])) hits.add(Math.floor(k / batchSize)); });
    for (const b of hits) want += Math.min(batchSize, grid.boxes.length - b * batchSize);
  }
  assert.ok(want > grid.boxes.length, "some batches run for several blocks");
  assert.ok(calls.every(([d, t], i) => t === want && d <= t && (i === 0 || d > calls[i - 1][0])), "monotone, never past the total");
  assert.deepEqual(calls[calls.length - 1], [want, want]);
});
