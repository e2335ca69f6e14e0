// Planning, as nnU-Net does it: from the data's fingerprint (shapes, spacing) and a compute budget
// to a patch size, batch size, network depth and normalisation. The plan is a plain object saved
// with the run (plan.json) and inside every checkpoint, so prediction rebuilds exactly the same thing.
import type { Arch, NetworkConfig } from "../nn/networks.ts";
import { swinUnetrConfig } from "../nn/swin_unetr.ts";
import { unetrConfig } from "../nn/unetr.ts";
import type { Triple } from "../nn/layers.ts";

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
  fingerprint: { cases: number; medianShape: number[]; minShape: number[]; maxVoxelsPerPatch: number };
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
  /** UNETR's transformer (default MONAI's ViT-B: hidden 768, 12 heads, MLP 4 × hidden). */
  transformer?: { hiddenSize?: number; numHeads?: number };
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

/** Makes a plan from the cases' shapes [z, y, x] and spacings. */
export function makePlan(shapes: number[][], spacings: number[][], o: PlanOptions = {}): Plan {
  if (shapes.length === 0) throw new Error("makePlan: no cases");
  const medianShape = [0, 1, 2].map((a) => median(shapes.map((s) => s[a])));
  const minShape = [0, 1, 2].map((a) => Math.min(...shapes.map((s) => s[a])));
  const spacingUm = [0, 1, 2].map((a) => median(spacings.map((s) => s[a]))) as Triple as [number, number, number];
  const maxVoxels = o.maxVoxelsPerPatch ?? 96 ** 3;
  const minBottleneck = o.minBottleneck ?? 4;

  let patch: number[];
  if (o.patchSize) {
    patch = [...o.patchSize];
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
    if (o.patchSize && patch.some((v) => v % 32 !== 0)) throw new Error(`--patch ${patch.join("×")}: SwinUNETR needs every edge a multiple of 32`);
    patch = patch.map((v) => Math.max(32, Math.floor(v / 32) * 32));
  }
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
  const arch = o.arch ?? "unet";
  const common = { inChannels: 1, numClasses: o.numClasses ?? 2, features, strides, kernelSizes: kernels, norm: "instance" as const, deepSupervision: o.deepSupervision ?? true };
  const hidden = o.transformer?.hiddenSize ?? 768;
  const network: NetworkConfig = arch === "unet"
    ? { arch: "unet", ...common, convsPerStage: 2, convsPerStageDecoder: 2, convBias: true, init: "nnunet" }
    : arch === "resenc"
      ? { arch: "resenc", ...common, blocksPerStage: [1, 3, 4, 6, 6, 6].slice(0, stages), convsPerStageDecoder: 1 }
      : arch === "unetr"
        // The position embeddings are made for the patch: prediction slides the same window.
        ? unetrConfig({ numClasses: common.numClasses, imgSize: patch as [number, number, number], featureSize: o.baseFeatures ?? 16, hiddenSize: hidden, mlpDim: 4 * hidden, numHeads: o.transformer?.numHeads ?? 12 })
        : swinUnetrConfig({ numClasses: common.numClasses, featureSize: o.baseFeatures ?? 24 });
  return {
    version: 1,
    patchSize: patch as [number, number, number],
    batchSize: o.batchSize ?? 2,
    spacingUm,
    normalization: { scheme: "percentile-zscore", percentiles: [0.5, 99.5] },
    network,
    fingerprint: { cases: shapes.length, medianShape, minShape, maxVoxelsPerPatch: maxVoxels },
  };
}

/** A human-readable summary of a plan (printed at the start of a run). */
export function describePlan(p: Plan): string {
  const n = p.network;
  const strides = n.strides.map((s) => (Array.isArray(s) ? s.join("") : String(s))).join(" ");
  return [
    `plan: patch ${p.patchSize.join("×")}, batch ${p.batchSize}, spacing ${p.spacingUm.join("×")} µm`,
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
 * anything is allocated: the numbers and the flags to change are in the message.
 */
export function checkTrainingMemory(plan: Plan, availableBytes: number): void {
  const need = trainingBytesLowerBound(plan);
  if (need <= availableBytes) return;
  const gb = (b: number) => `${(b / 2 ** 30).toFixed(b < 10 * 2 ** 30 ? 1 : 0)} GB`;
  throw new Error(`patch ${plan.patchSize.join("×")} with batch ${plan.batchSize} and ${plan.network.features[0]} features needs at least ${gb(need)} for one training step, but this machine has ${gb(availableBytes)}; choose a smaller --patch, --batch or --features`);
}
