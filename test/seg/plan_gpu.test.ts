// GPU planning (--device cuda): nnU-Net's approach, the largest patch up to the median case shape whose estimated
// training memory fits the GPU, then the largest batch. The GPU's memory is faked (LSMSEG_GPU_MEMORY_MB or the
// option itself), so these run without a GPU; the estimate's layer list is checked against the networks built.
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildNetwork } from "../../src/nn/index.ts";
import { convLayers, definedOnly, devicePlanOptions, estimateTrainingBytes, makePlan, usableGpuBytes, type PlanOptions } from "../../src/seg/plan.ts";
import { gpuMemoryBytes } from "../../src/torch/index.ts";

const GiB = 2 ** 30;
const cost = (p: ReturnType<typeof makePlan>, patch: number[] = p.patchSize, batch = p.batchSize, o: PlanOptions = {}) => {
  // the network for another patch is the one makePlan would build for it
  const net = makePlan([patch], [[1, 1, 1]], { ...o, patchSize: patch as [number, number, number] }).network;
  const e = estimateTrainingBytes(net, patch);
  return e.fixed + batch * e.perSample;
};

test("the estimate's convolutions are the network's: a tiny U-Net by hand, and the built networks' weights", () => {
  const tiny = makePlan([[8, 8, 8]], [[1, 1, 1]], {
    patchSize: [8, 8, 8], baseFeatures: 4, maxStages: 2, minBottleneck: 4, deepSupervision: false,
  }).network;
  assert.deepEqual(tiny.features, [4, 8]);
  const layers = convLayers(tiny, [8, 8, 8]);
  // encoder 1→4, 4→4 at 8³; 4→8, 8→8 at 4³; decoder: transposed 8→4 (kernel 2), 8→4, 4→4 at 8³; head 4→2
  assert.deepEqual(layers.map((l) => [l.cin, l.cout, l.kernel[0], l.voxels]), [
    [1, 4, 3, 512], [4, 4, 3, 512], [4, 8, 3, 64], [8, 8, 3, 64], [8, 4, 2, 512], [8, 4, 3, 512], [4, 4, 3, 512], [4, 2, 1, 512],
  ]);
  const e = estimateTrainingBytes(tiny, [8, 8, 8]);
  assert.equal(e.fixed, 16 * (108 + 432 + 864 + 1728 + 256 + 864 + 432 + 8));
  // every conv weight of the real networks (5-D tensors) is one of the estimate's layers
  for (const o of [{ arch: "unet" as const }, { arch: "resenc" as const, baseFeatures: 8 }]) {
    const cfg = makePlan([[128, 128, 128]], [[1, 1, 1]], { ...o, patchSize: [64, 64, 64] }).network;
    const net = buildNetwork(cfg);
    const weights = net.parameters().filter((p) => p.shape.length === 5).map((p) => p.shape.reduce((a, b) => a * b, 1));
    const ours = convLayers(cfg, [64, 64, 64]).map((l) => l.cin * l.cout * l.kernel[0] * l.kernel[1] * l.kernel[2]);
    net.dispose();
    if (o.arch === "unet") assert.deepEqual(ours.sort((a, b) => a - b), weights.sort((a, b) => a - b));
    else assert.ok(Math.abs(ours.reduce((a, b) => a + b) / weights.reduce((a, b) => a + b) - 1) < 0.1, "residual encoder: within 10 % (1×1 skip projections are not counted)");
  }
});

test("a faked 8 GiB GPU and a 300³ median: the largest patch that fits at batch 2, ≤ the median, multiples of 16", () => {
  const shapes = Array.from({ length: 20 }, () => [300, 300, 300]);
  const p = makePlan(shapes, shapes.map(() => [1, 1, 1]), { gpuMemoryBytes: 8 * GiB });
  const budget = usableGpuBytes(8 * GiB);
  assert.ok(p.patchSize.every((v) => v % 16 === 0 && v <= 300));
  assert.ok(cost(p) <= budget, `${cost(p)} > ${budget}`);
  assert.equal(p.fingerprint.estimatedBytes, Math.round(cost(p)));
  // maximal: 16 more on any axis (still within the median) no longer fits at batch 2
  for (let a = 0; a < 3; a++) {
    const bigger = [...p.patchSize];
    bigger[a] += 16;
    if (bigger[a] <= 288) assert.ok(cost(p, bigger, 2) > budget, `patch ${bigger.join("×")} would also fit`);
  }
  assert.equal(p.batchSize, 2);
  // nnU-Net's reference point: about 128³ at batch 2 on an 8 GB GPU
  assert.ok(p.patchSize.every((v) => v >= 96 && v <= 144), p.patchSize.join("×"));
});

test("more GPU memory never plans a smaller patch; the median caps it; the batch then grows to what fits", () => {
  const shapes = Array.from({ length: 200 }, () => [128, 128, 128]);
  const spacings = shapes.map(() => [1, 1, 1]);
  let last = [0, 0, 0];
  for (const gib of [4, 8, 16, 24, 40, 80, 141]) {
    const p = makePlan(shapes, spacings, { gpuMemoryBytes: gib * GiB });
    assert.ok(p.patchSize.every((v, a) => v >= last[a] && v <= 128), `${gib} GiB: ${p.patchSize.join("×")}`);
    last = p.patchSize;
    assert.ok(cost(p) <= usableGpuBytes(gib * GiB));
    // a batch covers at most 5 % of the dataset's voxels: 200 cases of 128³ give at most 10 patches of 128³
    const cap = Math.floor((0.05 * 200 * 128 ** 3) / p.patchSize.reduce((a, b) => a * b));
    assert.ok(p.batchSize <= Math.max(2, cap));
    if (p.batchSize > 2 && p.batchSize < cap) {
      assert.ok(cost(p, p.patchSize, p.batchSize + 1) > usableGpuBytes(gib * GiB), `${gib} GiB: batch ${p.batchSize + 1} also fits`);
    }
  }
  const h200 = makePlan(shapes, spacings, { gpuMemoryBytes: 141 * GiB });
  assert.deepEqual([h200.patchSize, h200.batchSize], [[128, 128, 128], 10]);
  const mid = makePlan(shapes, spacings, { gpuMemoryBytes: 24 * GiB });
  assert.ok(mid.batchSize > 2 && mid.batchSize < 10, `24 GiB: batch ${mid.batchSize}`);
  // at most 5 % of the dataset's voxels per batch
  const few = makePlan(shapes.slice(0, 20), spacings.slice(0, 20), { gpuMemoryBytes: 141 * GiB });
  assert.equal(few.batchSize, 2);
});

test("flags win over the GPU plan; fp32 needs more memory than bf16; the faked memory comes from LSMSEG_GPU_MEMORY_MB", () => {
  const shapes = [[300, 300, 300]];
  const given = makePlan(shapes, [[1, 1, 1]], {
    gpuMemoryBytes: 8 * GiB, ...definedOnly({ patchSize: [64, 64, 64], batchSize: 3, baseFeatures: undefined }),
  });
  assert.deepEqual([given.patchSize, given.batchSize], [[64, 64, 64], 3]);
  const bf16 = makePlan(shapes, [[1, 1, 1]], { gpuMemoryBytes: 8 * GiB });
  const fp32 = makePlan(shapes, [[1, 1, 1]], { gpuMemoryBytes: 8 * GiB, precision: "fp32" });
  assert.ok(fp32.patchSize.reduce((a, b) => a * b) < bf16.patchSize.reduce((a, b) => a * b));
  assert.equal(gpuMemoryBytes("cuda:0", { LSMSEG_GPU_MEMORY_MB: "8192" }), 8 * GiB);
  assert.throws(() => gpuMemoryBytes("cuda", { LSMSEG_GPU_MEMORY_MB: "lots" }), /LSMSEG_GPU_MEMORY_MB: expected a positive number/);
  const saved = process.env.LSMSEG_GPU_MEMORY_MB;
  process.env.LSMSEG_GPU_MEMORY_MB = "24576";
  try {
    assert.deepEqual(devicePlanOptions("cuda:1", "bf16").options, { gpuMemoryBytes: 24 * GiB, precision: "bf16" });
    assert.deepEqual(devicePlanOptions("cpu", "bf16").options, {});
  } finally {
    if (saved === undefined) delete process.env.LSMSEG_GPU_MEMORY_MB;
    else process.env.LSMSEG_GPU_MEMORY_MB = saved;
  }
});
