// Planning, as nnU-Net does it: from the data's fingerprint (shapes, spacing) and a compute budget
// to a patch size, batch size, network depth and normalisation. The plan is a plain object saved
// with the run (plan.json) and inside every checkpoint, so prediction rebuilds exactly the same thing.
import type { Arch, NetworkConfig } from "../nn/networks.ts";
import { swinUnetrConfig } from "../nn/swin_unetr.ts";
import { unetrConfig } from "../nn/unetr.ts";
import type { Triple } from "../nn/layers.ts";
import { gpuMemoryBytes } from "../torch/index.ts";
import { OptionError } from "../util/option_error.ts";

export interface NormalizationPlan {
  /**
   * Per-volume: clip to the volume's own percentiles, then z-score (LSM brightness varies by specimen);
   * "zscore" is nnU-Net's ZScoreNormalization (an imported model): percentiles [0, 100], no clip.
   */
  scheme: "percentile-zscore" | "zscore";
  percentiles: [number, number];
}

export interface Plan {
  version: 1;
  patchSize: [number, number, number];
  batchSize: number;
  spacingUm: [number, number, number];
  normalization: NormalizationPlan;
  network: NetworkConfig;
  /** What the plan was made from, for the record. */
  fingerprint: {
    cases: number; medianShape: number[]; minShape: number[]; maxVoxelsPerPatch: number; gpuMemoryBytes?: number; estimatedBytes?: number;
  };
}

export interface PlanOptions {
  arch?: Arch;
  /** Channels of the first stage; later stages double up to maxFeatures (nnU-Net: 32, cap 320). UNETR / SwinUNETR: feature_size (default 16 / 24). */
  baseFeatures?: number;
  maxFeatures?: number;
  /** Upper bound on voxels per patch: the CPU/GPU memory and time budget (default 96³ on CPU). */
  maxVoxelsPerPatch?: number;
  patchSize?: [number, number, number];
  batchSize?: number;
  numClasses?: number;
  deepSupervision?: boolean;
  /** Smallest edge of the bottleneck feature map (nnU-Net stops downsampling at 4). */
  minBottleneck?: number;
  maxStages?: number;
  /**
   * Plan for a GPU with this many bytes of memory (--device cuda): the largest patch up to the median case
   * shape whose estimated training memory fits, and then the largest batch that fits (nnU-Net's planner);
   * maxVoxelsPerPatch is then not used.
   */
  gpuMemoryBytes?: number;
  /** UNETR's transformer (default MONAI's ViT-B: hidden 768, 12 heads, MLP 4 × hidden). */
  transformer?: { hiddenSize?: number; numHeads?: number };
  /** The training precision the memory estimate assumes (default bf16, autocast). */
  precision?: "bf16" | "fp32";
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Number of stride-2 downsamplings along an axis of length n before the edge would drop below minEdge. */
function downsamplings(n: number, minEdge: number): number {
  let k = 0;
  while (n % 2 ** (k + 1) === 0 && n / 2 ** (k + 1) >= minEdge) k++;
  return k;
}

/** The network for a patch: stages until the bottleneck edge would drop below minBottleneck, nnU-Net's widths. */
function networkFor(patch: number[], o: PlanOptions): NetworkConfig {
  const minBottleneck = o.minBottleneck ?? 4;
  const maxStages = o.maxStages ?? 6;
  const perAxis = patch.map((n) => downsamplings(n, minBottleneck));
  const stages = Math.max(2, Math.min(maxStages, Math.max(...perAxis) + 1));
  const strides: Triple[] = [1];
  const kernels: Triple[] = [3];
  for (let s = 1; s < stages; s++) {
    strides.push(perAxis.map((k) => (k >= s ? 2 : 1)) as [number, number, number]);
    kernels.push(3);
  }
  const base = o.baseFeatures ?? 32;
  const cap = o.maxFeatures ?? 320;
  const features = Array.from({ length: stages }, (_, i) => Math.min(cap, base * 2 ** i));
  const common = { inChannels: 1, numClasses: o.numClasses ?? 2, features, strides, kernelSizes: kernels, norm: "instance" as const, deepSupervision: o.deepSupervision ?? true };
  const arch = o.arch ?? "unet";
  const hidden = o.transformer?.hiddenSize ?? 768;
  return arch === "unet"
    ? { arch: "unet", ...common, convsPerStage: 2, convsPerStageDecoder: 2, convBias: true, init: "nnunet" }
    : arch === "resenc"
      ? { arch: "resenc", ...common, blocksPerStage: [1, 3, 4, 6, 6, 6].slice(0, stages), convsPerStageDecoder: 1 }
      : arch === "unetr"
        // The position embeddings are made for the patch: prediction slides the same window.
        ? unetrConfig({
          numClasses: common.numClasses, imgSize: patch as [number, number, number], featureSize: o.baseFeatures ?? 16,
          hiddenSize: hidden, mlpDim: 4 * hidden, numHeads: o.transformer?.numHeads ?? 12,
        })
        : swinUnetrConfig({ numClasses: common.numClasses, featureSize: o.baseFeatures ?? 24 });
}

/** Makes a plan from the cases' shapes [z, y, x] and spacings. */
export function makePlan(shapes: number[][], spacings: number[][], o: PlanOptions = {}): Plan {
  if (shapes.length === 0) throw new Error("makePlan: no cases");
  const medianShape = [0, 1, 2].map((a) => median(shapes.map((s) => s[a])));
  const minShape = [0, 1, 2].map((a) => Math.min(...shapes.map((s) => s[a])));
  const spacingUm = [0, 1, 2].map((a) => median(spacings.map((s) => s[a]))) as Triple as [number, number, number];
  const maxVoxels = o.maxVoxelsPerPatch ?? 96 ** 3;

  let patch: number[];
  let batchSize = o.batchSize ?? 2;
  let gpu: { gpuMemoryBytes: number; estimatedBytes: number } | undefined;
  if (o.patchSize) {
    patch = [...o.patchSize];
  } else if (o.gpuMemoryBytes !== undefined && (o.arch ?? "unet") !== "unetr" && o.arch !== "swinunetr") {
    // (the memory estimate counts convolutions: the transformers keep the default budget below)
    const g = planForGpu(medianShape, shapes.length, o.gpuMemoryBytes, o);
    patch = g.patch;
    batchSize = g.batchSize;
    gpu = { gpuMemoryBytes: o.gpuMemoryBytes, estimatedBytes: g.estimatedBytes };
  } else {
    // Start from the median shape and shrink the largest edge until the budget holds; then round
    // each edge down to a multiple of 16 (so four downsamplings divide it) where the edge allows.
    patch = medianShape.map((v) => Math.max(16, v));
    while (patch[0] * patch[1] * patch[2] > maxVoxels) {
      const a = patch.indexOf(Math.max(...patch));
      patch[a] = Math.max(16, patch[a] - 8);
      if (patch.every((v) => v === 16)) break;
    }
    patch = patch.map((v) => Math.max(16, Math.floor(v / 16) * 16));
  }
  // SwinUNETR halves five times (patch embedding 2, four mergings): its patch edges are multiples of 32.
  if (o.arch === "swinunetr") {
    if (o.patchSize && patch.some((v) => v % 32 !== 0)) throw new OptionError("patchSize", (n) => `${n("patchSize")} ${patch.join("×")}: SwinUNETR needs every edge a multiple of 32`);
    patch = patch.map((v) => Math.max(32, Math.floor(v / 32) * 32));
  }
  return {
    version: 1,
    patchSize: patch as [number, number, number],
    batchSize,
    spacingUm,
    normalization: { scheme: "percentile-zscore", percentiles: [0.5, 99.5] },
    network: networkFor(patch, o),
    fingerprint: { cases: shapes.length, medianShape, minShape, maxVoxelsPerPatch: maxVoxels, ...gpu },
  };
}

// GPU memory, as nnU-Net estimates it: the sum over every convolution (and transposed convolution and
// segmentation head) of its output feature map's elements, times bytes per element calibrated on nnU-Net's
// reference (nnUNetPlannerv2: 560e6 elements fit an 8 GB GPU at batch 2 with mixed precision, i.e. ~7.7 bytes per
// element and sample: the saved activations of conv, norm and nonlinearity, their gradients, and the allocator's
// slack). fp32 keeps every saved activation at twice the width. Weights, gradients and two optimizer moments are
// 16 bytes per parameter; the CUDA context, cuDNN workspaces and the caching allocator keep 1 GiB and 10 % of the rest.
const BYTES_PER_ELEMENT = { bf16: (8 * 2 ** 30) / (2 * 560e6), fp32: (2 * 8 * 2 ** 30) / (2 * 560e6) };

interface ConvLayer { cin: number; cout: number; kernel: number[]; voxels: number }

/** Every convolution of the network for a patch, with its output's voxels (encoder, then decoder); U-Nets only. */
export function convLayers(net: NetworkConfig, patch: readonly number[]): ConvLayer[] {
  if (net.arch !== "unet" && net.arch !== "resenc") throw new Error(`the GPU memory estimate counts convolutions of a U-Net, not ${net.arch}`);
  const k3 = (k: Triple): number[] => (Array.isArray(k) ? [...k] : [k, k, k]);
  const layers: ConvLayer[] = [];
  const sizes: number[][] = [];
  let size = [...patch];
  net.features.forEach((c, s) => {
    const st = k3(net.strides[s]);
    size = size.map((n, a) => Math.floor(n / st[a]));
    sizes.push(size);
    const voxels = size[0] * size[1] * size[2];
    const convs = net.arch === "unet" ? net.convsPerStage : 2 * (net.blocksPerStage[s] ?? 1) + (s === 0 ? 1 : 0);
    for (let i = 0; i < convs; i++) {
      layers.push({ cin: i === 0 ? (s === 0 ? net.inChannels : net.features[s - 1]) : c, cout: c, kernel: k3(net.kernelSizes[s]), voxels });
    }
  });
  for (let s = net.features.length - 2; s >= 0; s--) {
    const voxels = sizes[s][0] * sizes[s][1] * sizes[s][2];
    const c = net.features[s];
    layers.push({ cin: net.features[s + 1], cout: c, kernel: k3(net.strides[s + 1]), voxels });
    for (let i = 0; i < net.convsPerStageDecoder; i++) layers.push({ cin: i === 0 ? 2 * c : c, cout: c, kernel: k3(net.kernelSizes[s]), voxels });
    if (net.deepSupervision || s === 0) layers.push({ cin: c, cout: net.numClasses, kernel: [1, 1, 1], voxels });
  }
  return layers;
}

/** Estimated GPU memory of training one network on a patch at a batch size: [bytes fixed, bytes per sample]. */
export function estimateTrainingBytes(net: NetworkConfig, patch: readonly number[], precision: "bf16" | "fp32" = "bf16"): { fixed: number; perSample: number } {
  const layers = convLayers(net, patch);
  const elements = layers.reduce((s, l) => s + l.cout * l.voxels, 0);
  const params = layers.reduce((s, l) => s + l.cin * l.cout * l.kernel[0] * l.kernel[1] * l.kernel[2], 0);
  return { fixed: 16 * params, perSample: elements * BYTES_PER_ELEMENT[precision] };
}

/** What a GPU of totalBytes leaves for training: less 1 GiB and 10 % (CUDA context, cuDNN, fragmentation). */
export const usableGpuBytes = (totalBytes: number): number => Math.max(0, (totalBytes - 2 ** 30) * 0.9);

/**
 * nnU-Net's GPU planning: start from the median shape (edges rounded down to multiples of 16) and take 16 off the
 * edge that is largest relative to the median until the estimate at batch 2 (or the batch asked for) fits; then the
 * largest batch that fits, at most what covers 5 % of the dataset's voxels and at least 2.
 */
function planForGpu(
  medianShape: number[], cases: number, totalBytes: number, o: PlanOptions,
): { patch: number[]; batchSize: number; estimatedBytes: number } {
  const budget = usableGpuBytes(totalBytes);
  const precision = o.precision ?? "bf16";
  const minBatch = o.batchSize ?? 2;
  const cost = (p: number[], b: number) => {
    const e = estimateTrainingBytes(networkFor(p, o), p, precision);
    return e.fixed + b * e.perSample;
  };
  const patch = medianShape.map((v) => Math.max(16, Math.floor(v / 16) * 16));
  while (cost(patch, minBatch) > budget && patch.some((v) => v > 16)) {
    const ratio = patch.map((v, a) => (v > 16 ? v / medianShape[a] : -1));
    const a = ratio.indexOf(Math.max(...ratio));
    patch[a] -= 16;
  }
  let batchSize = minBatch;
  if (o.batchSize === undefined) {
    const e = estimateTrainingBytes(networkFor(patch, o), patch, precision);
    const fits = Math.floor((budget - e.fixed) / e.perSample);
    const datasetVoxels = cases * medianShape[0] * medianShape[1] * medianShape[2];
    const cap = Math.floor((0.05 * datasetVoxels) / (patch[0] * patch[1] * patch[2]));
    batchSize = Math.max(2, Math.min(fits, cap));
  }
  return { patch, batchSize, estimatedBytes: Math.round(cost(patch, batchSize)) };
}

/** The options that are set (the CLI passes unset flags as undefined, which must not hide a planned value). */
export function definedOnly(o: PlanOptions | undefined): PlanOptions {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as PlanOptions;
}

/**
 * The planning options a device asks for: on a GPU ("cuda", "cuda:N") its memory, so that makePlan plans the patch
 * and batch for it; nothing on the CPU. `note` says why a GPU run falls back to the CPU's budget.
 */
export function devicePlanOptions(device: string | undefined, precision: "bf16" | "fp32"): { options: PlanOptions; note?: string } {
  if (!device?.startsWith("cuda")) return { options: {} };
  const bytes = gpuMemoryBytes(device);
  if (bytes === null) return { options: {}, note: `the memory of ${device} is unknown (no nvidia-smi; set LSMSEG_GPU_MEMORY_MB): planning with the CPU's budget` };
  return { options: { gpuMemoryBytes: bytes, precision } };
}

/** A human-readable summary of a plan (printed at the start of a run). */
export function describePlan(p: Plan): string {
  const n = p.network;
  const strides = n.strides.map((s) => (Array.isArray(s) ? s.join("") : String(s))).join(" ");
  return [
    `plan: patch ${p.patchSize.join("×")}, batch ${p.batchSize}, spacing ${p.spacingUm.join("×")} µm` +
      (p.fingerprint.gpuMemoryBytes ? ` (for a GPU of ${(p.fingerprint.gpuMemoryBytes / 2 ** 30).toFixed(1)} GiB: about ${((p.fingerprint.estimatedBytes ?? 0) / 2 ** 30).toFixed(1)} GiB estimated)` : ""),
    `      network ${n.arch}: ${n.features.length} stages, features ${n.features.join("/")}, strides ${strides}${n.deepSupervision ? ", deep supervision" : ""}`,
    p.normalization.scheme === "zscore" ? "      normalisation: per volume z-score (nnU-Net's ZScoreNormalization)" : `      normalisation: per volume, clip to percentiles ${p.normalization.percentiles.join("/")} then z-score`,
    `      from ${p.fingerprint.cases} cases, median shape ${p.fingerprint.medianShape.join("×")}`,
  ].join("\n");
}

/**
 * A lower bound on the bytes one training step of `plan` holds on the device: the float32 outputs of every
 * convolution and its normalisation (kept for the backward pass), in the encoder and the decoder, at each
 * stage's resolution, for the whole batch. libtorch needs more (gradients, workspace, optimizer state).
 */
export function trainingBytesLowerBound(plan: Plan): number {
  const n = plan.network;
  let voxels = plan.patchSize.reduce((a, b) => a * b, 1);
  let bytes = 0;
  n.strides.forEach((s, i) => {
    const st = Array.isArray(s) ? s : [s, s, s];
    voxels /= st[0] * st[1] * st[2];
    bytes += n.features[i] * voxels * 4 * 2 /* conv + norm */ * 2 /* convs per stage */ * 2; /* encoder + decoder */
  });
  return bytes * plan.batchSize;
}

/**
 * Refuses a plan whose training step cannot fit in `availableBytes` (the machine's memory on the CPU), before
 * anything is allocated: the numbers and the options to change are in the message (an OptionError: a CLI names its flags).
 */
export function checkTrainingMemory(plan: Plan, availableBytes: number): void {
  const need = trainingBytesLowerBound(plan);
  if (need <= availableBytes) return;
  const gb = (b: number) => `${(b / 2 ** 30).toFixed(b < 10 * 2 ** 30 ? 1 : 0)} GB`;
  const what = `patch ${plan.patchSize.join("×")} with batch ${plan.batchSize} and ${plan.network.features[0]} features`;
  throw new OptionError("patchSize", (n) =>
    `${what} needs at least ${gb(need)} for one training step, but this machine has ${gb(availableBytes)}; choose a smaller ${n("patchSize")}, ${n("batchSize")} or ${n("features")}`);
}
