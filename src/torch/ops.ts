// Functional operators over tensors: joining, padding, selection, convolution, pooling, resampling,
// normalisation, activations and losses. Each is one libtorch kernel (or composite) by name.
import { Tensor, callOp } from "./tensor.ts";

const op = (name: string, ...args: unknown[]): Tensor => callOp(name, ...args) as Tensor;

type Triple = number | [number, number, number];
const triple = (v: Triple): number[] => (Array.isArray(v) ? v : [v, v, v]);

function checkRank(fn: string, x: Tensor, rank: number, layout: string): void {
  if (x.ndim !== rank) throw new Error(`${fn}: expected a ${rank}-d input ${layout}, got shape [${x.shape.join(", ")}]`);
}

function checkTensors(fn: string, tensors: unknown): void {
  if (!Array.isArray(tensors)) throw new TypeError(`${fn}: expected an array of tensors, got ${typeof tensors}`);
  tensors.forEach((t, i) => {
    if (!(t instanceof Tensor)) throw new TypeError(`${fn}: element ${i} of the tensor list is ${t === null ? "null" : typeof t}, not a Tensor`);
  });
}

// --- joining and selection ----------------------------------------------------------------------
export function cat(tensors: Tensor[], dim = 0): Tensor { checkTensors("cat", tensors); return op("cat", tensors, dim); }
export function stack(tensors: Tensor[], dim = 0): Tensor { checkTensors("stack", tensors); return op("stack", tensors, dim); }
/** Element-wise choice: `cond ? a : b` (broadcasting). */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof a === "number" && typeof b === "number") return op("where.Scalar", cond, a, b);
  if (typeof a === "number") return op("where.ScalarSelf", cond, a, b);
  if (typeof b === "number") return op("where.ScalarOther", cond, a, b);
  return op("where.self", cond, a, b);
}
/**
 * Pads the last dimensions: `pad` lists (before, after) pairs starting from the LAST dimension,
 * as torch.nn.functional.pad. Modes: constant, reflect, replicate, circular.
 */
export function pad(x: Tensor, padding: number[], mode: "constant" | "reflect" | "replicate" | "circular" = "constant", value = 0): Tensor {
  if (padding.length % 2 !== 0) throw new Error(`pad: padding must list (before, after) pairs, got ${padding.length} numbers`);
  return mode === "constant" ? op("constant_pad_nd", x, padding, value) : op("pad", x, padding, mode, null);
}
/**
 * torch.argmax(x, dim) (int64; the first index on ties, a NaN counting as the largest), by comparing the slices
 * along `dim` one after another. For class scores [C, ...] it is much faster than the argmax kernel, which reduces
 * over a strided dimension: argmax(0) of [2, 128³] float32 takes 174 ms in PyTorch 1.13 (2 threads), one slice
 * comparison 0.6 ms (measured; the same libtorch).
 */
export function argmaxAlong(x: Tensor, dim: number): Tensor {
  const axis = dim < 0 ? dim + x.ndim : dim;
  const n = x.shape[axis];
  if (n === undefined || n < 2) return op("argmax", x, dim, false);
  let best = x.select(axis, 0);
  let index: Tensor | null = null;
  for (let c = 1; c < n; c++) {
    const v = x.select(axis, c);
    const parts = [v.gt(best), v.isnan(), best.isnan()];
    parts.push(parts[2].logicalNot());
    parts.push(parts[1].logicalAnd(parts[3]));
    const wins = parts[0].logicalOr(parts[4]);
    if (index === null) index = wins.to("int64"); // c = 1: the index is the 0/1 of the comparison
    else index.maskedFill_(wins, c);
    if (c < n - 1) {
      const next = op("where.self", wins, v, best);
      best.dispose();
      best = next;
    }
    for (const t of [...parts, wins, v]) t.dispose();
  }
  best.dispose();
  return index!;
}
export function einsum(equation: string, tensors: Tensor[]): Tensor { checkTensors("einsum", tensors); return op("einsum", equation, tensors); }
export function matmul(a: Tensor, b: Tensor): Tensor { return op("matmul", a, b); }
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor { return op("linear", x, weight, bias ?? null); }

// --- convolution and pooling (x: [B, C, D, H, W]) -----------------------------------------------
export interface ConvOptions {
  stride?: Triple;
  padding?: Triple;
  dilation?: Triple;
  groups?: number;
}
export function conv3d(x: Tensor, weight: Tensor, bias: Tensor | null = null, o: ConvOptions = {}): Tensor {
  checkRank("conv3d", x, 5, "[B, C, D, H, W]");
  const [stride, padding, dilation] = [triple(o.stride ?? 1), triple(o.padding ?? 0), triple(o.dilation ?? 1)];
  // CPU only: the rewrites below were measured against oneDNN; on CUDA libtorch's own choice (cuDNN) stays
  const pointwise = x.device === "cpu" && weight.ndim === 5 && (o.groups ?? 1) === 1 && weight.shape[0] < ONEDNN_CHANNEL_BLOCK &&
    [0, 1, 2].every((i) => weight.shape[2 + i] === 1 && stride[i] === 1 && padding[i] === 0 && dilation[i] === 1);
  if (pointwise) return pointwiseConv3d(x, weight, bias);
  return op("conv3d", x, weight, bias, stride, padding, dilation, o.groups ?? 1);
}

/** oneDNN's blocked layouts hold channels in blocks of 16 (AVX-512): fewer output channels are padded up to it. */
const ONEDNN_CHANNEL_BLOCK = 16;

/**
 * A 1×1×1 convolution with few output channels (a segmentation head: C → 2 classes) as one batched matrix
 * product, [C_out, C_in] · [C_in, D·H·W] per sample, plus the bias. oneDNN pads the 2 output channels to its block
 * of 16 and reorders the result back: measured in PyTorch 1.13 (the same libtorch, 2 threads) at 16 → 2 channels,
 * 64³: bf16 forward + backward 46.3 → 10.2 ms at batch 2, and forward alone 69 → 5 ms at batch 8 (prediction's
 * batches); fp32 107.5 → 32.7 ms. Wide 1×1×1 convolutions stay on oneDNN, which is as fast or faster there.
 * Autocast runs baddbmm/bmm in bf16 as it runs conv3d.
 */
function pointwiseConv3d(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const [n, cin, d, h, w] = x.shape;
  const cout = weight.shape[0];
  const flat = x.reshape([n, cin, d * h * w]);
  const w2 = weight.reshape([1, cout, cin]);
  const wn = w2.expand([n, cout, cin]);
  const temps = [flat, w2, wn];
  let y: Tensor;
  if (bias) {
    const b3 = bias.view([1, cout, 1]);
    const bn = b3.expand([n, cout, d * h * w]);
    temps.push(b3, bn);
    y = op("baddbmm", bn, wn, flat, 1, 1);
  } else y = op("bmm", wn, flat);
  const out = y.view([n, cout, d, h, w]);
  for (const t of [...temps, y]) t.dispose();
  return out;
}
export function convTranspose3d(x: Tensor, weight: Tensor, bias: Tensor | null = null, o: ConvOptions & { outputPadding?: Triple } = {}): Tensor {
  checkRank("convTranspose3d", x, 5, "[B, C, D, H, W]");
  const stride = triple(o.stride ?? 1);
  const padding = triple(o.padding ?? 0);
  const outputPadding = triple(o.outputPadding ?? 0);
  const dilation = triple(o.dilation ?? 1);
  const kernel = weight.shape.slice(2);
  const plain = (i: number): boolean => padding[i] === 0 && outputPadding[i] === 0 && dilation[i] === 1;
  const tiles = x.device === "cpu" && weight.ndim === 5 && (o.groups ?? 1) === 1 && kernel.every((k, i) => k === stride[i] && plain(i));
  if (tiles) return convTransposeTiles(x, weight, bias, kernel);
  return op("conv_transpose3d.input", x, weight, bias, stride, padding, outputPadding, o.groups ?? 1, dilation);
}

/**
 * A transposed convolution whose kernel equals its stride (the U-Net's up-sampling) writes each input voxel's
 * k³ output tile on its own: it is a 1×1×1 convolution to C_out·k³ channels and a reshuffle of those channels
 * into the tiles (as a pixel shuffle). libtorch 1.13 runs conv_transpose3d on its slow im2col path
 * (slow_conv_transpose3d, forward and backward), and the 1×1×1 convolution on oneDNN. Measured here with the
 * same libtorch (PyTorch 1.13, 2 threads, forward + backward of the anchor U-Net's three up-samplings at 64³ ×
 * batch 2): fp32 108.5 → 69.1 ms, bf16 95.1 → 50.8 ms. CPU only (cuDNN's transposed convolution is not slow,
 * and this was not measured there). The values are the same sums in another order
 * (max |diff| ~2e-5 on unit-variance inputs at C_in 128); the output's dtype follows autocast as before.
 */
function convTransposeTiles(x: Tensor, weight: Tensor, bias: Tensor | null, kernel: number[]): Tensor {
  const [cin, cout] = weight.shape;
  const [kd, kh, kw] = kernel;
  const taps = kd * kh * kw;
  const [b, , d, h, w] = x.shape;
  const perm = weight.permute([1, 2, 3, 4, 0]);
  const w1 = perm.reshape([cout * taps, cin, 1, 1, 1]);
  const column = bias?.reshape([cout, 1]);
  const spread = column?.expand([cout, taps]);
  const b1 = spread?.reshape([cout * taps]) ?? null;
  const y = op("conv3d", x, w1, b1, [1, 1, 1], [0, 0, 0], [1, 1, 1], 1);
  const split = y.view([b, cout, kd, kh, kw, d, h, w]);
  const tiles = split.permute([0, 1, 5, 2, 6, 3, 7, 4]);
  const out = tiles.reshape([b, cout, d * kd, h * kh, w * kw]);
  for (const t of [perm, w1, column, spread, b1, y, split, tiles]) t?.dispose();
  return out;
}
export function maxPool3d(x: Tensor, kernel: Triple, o: { stride?: Triple; padding?: Triple; dilation?: Triple; ceilMode?: boolean } = {}): Tensor {
  return op("max_pool3d", x, triple(kernel), triple(o.stride ?? kernel), triple(o.padding ?? 0), triple(o.dilation ?? 1), o.ceilMode ?? false);
}
export function avgPool3d(
  x: Tensor, kernel: Triple, o: { stride?: Triple; padding?: Triple; ceilMode?: boolean; countIncludePad?: boolean } = {},
): Tensor {
  return op("avg_pool3d", x, triple(kernel), triple(o.stride ?? kernel), triple(o.padding ?? 0), o.ceilMode ?? false, o.countIncludePad ?? true, null);
}
export function adaptiveAvgPool3d(x: Tensor, outputSize: Triple): Tensor { return op("adaptive_avg_pool3d", x, triple(outputSize)); }

// --- resampling ---------------------------------------------------------------------------------
/** Resizes [B, C, D, H, W] to `size` (or by `scale`), nearest or trilinear, as F.interpolate. */
export function interpolate(x: Tensor, o: { size?: number[]; scale?: number | number[]; mode?: "nearest" | "trilinear"; alignCorners?: boolean }): Tensor {
  checkRank("interpolate", x, 5, "[B, C, D, H, W]");
  if (!o.size === !o.scale) throw new Error("interpolate: give exactly one of size and scale");
  const scale = o.scale === undefined ? null : Array.isArray(o.scale) ? o.scale : [o.scale, o.scale, o.scale];
  if ((o.mode ?? "nearest") === "nearest") return op("upsample_nearest3d.vec", x, o.size ?? null, scale);
  return op("upsample_trilinear3d.vec", x, o.size ?? null, o.alignCorners ?? false, scale);
}
/** Sampling grid for `gridSample` from affine matrices theta: [B, 3, 4]; size = [B, C, D, H, W]. */
export function affineGrid(theta: Tensor, size: number[], alignCorners = false): Tensor {
  return op("affine_grid_generator", theta, size, alignCorners);
}
const GRID_MODE = { bilinear: 0, nearest: 1 } as const;
const GRID_PAD = { zeros: 0, border: 1, reflection: 2 } as const;
/** Samples x: [B, C, D, H, W] at grid: [B, D', H', W', 3] (x, y, z in [-1, 1]); "bilinear" is trilinear in 3D. */
export function gridSample(
  x: Tensor, grid: Tensor, o: { mode?: keyof typeof GRID_MODE; padding?: keyof typeof GRID_PAD; alignCorners?: boolean } = {},
): Tensor {
  return op("grid_sampler", x, grid, GRID_MODE[o.mode ?? "bilinear"], GRID_PAD[o.padding ?? "zeros"], o.alignCorners ?? false);
}

// --- normalisation ------------------------------------------------------------------------------
/**
 * Instance norm over each sample's channel; x: [B, C, ...]. It runs what at::instance_norm runs, batch norm over
 * [1, B·C, ...] with the affine parameters repeated B times, but returns an `_unsafe_view` back to [B, C, ...],
 * which autograd does not treat as a view. at::instance_norm returns a view, and an in-place op on it (the
 * LeakyReLU(inplace) after every norm in nnU-Net's blocks) makes the backward pass rebuild the base's gradient
 * through as_strided: a zero-filled and a copied full-size tensor per norm. The values are those of
 * at::instance_norm (same kernels, same order). A bf16 input (a convolution's output under CPU autocast) stays
 * bf16 with fp32 affine parameters, the kernel accumulating in fp32: what libtorch 1.13's autocast runs too (it
 * leaves instance_norm alone; PyTorch 1.13's F.instance_norm under autocast answers in bf16 as well).
 */
export function instanceNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const shape = x.shape;
  const [b, c] = shape;
  if (x.ndim < 3) throw new Error(`instanceNorm: expected an input [B, C, ...spatial], got shape [${shape.join(", ")}]`);
  const flat = x.reshape([1, b * c, ...shape.slice(2)]);
  const w = weight && b > 1 ? weight.repeat([b]) : weight;
  const bb = bias && b > 1 ? bias.repeat([b]) : bias;
  const y = op("batch_norm", flat, w, bb, null, null, true, 0.0, eps, false);
  const out = op("_unsafe_view", y, shape);
  for (const t of [flat, y, ...(b > 1 ? [w, bb] : [])]) t?.dispose();
  return out;
}
export function groupNorm(x: Tensor, groups: number, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  return op("group_norm", x, groups, weight, bias, eps, false);
}
/** Batch norm; in training it updates runningMean/runningVar in place. */
export function batchNorm(
  x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight: Tensor | null, bias: Tensor | null,
  training: boolean, momentum = 0.1, eps = 1e-5,
): Tensor {
  return op("batch_norm", x, weight, bias, runningMean, runningVar, training, momentum, eps, false);
}
export function layerNorm(x: Tensor, normalizedShape: number[], weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  return op("layer_norm", x, normalizedShape, weight, bias, eps, false);
}

// --- activations --------------------------------------------------------------------------------
export function relu(x: Tensor): Tensor { return op("relu", x); }
export function leakyRelu(x: Tensor, slope = 0.01): Tensor { return op("leaky_relu", x, slope); }
/** In place: overwrites x (saves memory in networks, as nn.LeakyReLU(inplace=True)). Returns x. */
export function leakyRelu_(x: Tensor, slope = 0.01): Tensor { callOp("leaky_relu_", x, slope).dispose(); return x; }
export function relu_(x: Tensor): Tensor { callOp("relu_", x).dispose(); return x; }
export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor { return op("gelu", x, approximate); }
export function silu(x: Tensor): Tensor { return op("silu", x); }
export function sigmoid(x: Tensor): Tensor { return op("sigmoid", x); }
export function tanh(x: Tensor): Tensor { return op("tanh", x); }
export function softmax(x: Tensor, dim: number): Tensor { return op("softmax.int", x, dim, null); }
export function logSoftmax(x: Tensor, dim: number): Tensor { return op("log_softmax.int", x, dim, null); }
export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  if (p < 0 || p >= 1) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  return op("dropout", x, p, training);
}

// --- losses -------------------------------------------------------------------------------------
export type Reduction = "none" | "mean" | "sum";
const RED: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

/**
 * Cross-entropy of logits [B, C, ...] against class indices [B, ...] (int64), as F.cross_entropy:
 * class weights, ignore index, label smoothing.
 */
export function crossEntropy(
  logits: Tensor, target: Tensor, o: { weight?: Tensor; ignoreIndex?: number; labelSmoothing?: number; reduction?: Reduction } = {},
): Tensor {
  return op("cross_entropy_loss", logits, target, o.weight ?? null, RED[o.reduction ?? "mean"], o.ignoreIndex ?? -100, o.labelSmoothing ?? 0);
}
export function mseLoss(x: Tensor, target: Tensor, reduction: Reduction = "mean"): Tensor { return op("mse_loss", x, target, RED[reduction]); }
export function l1Loss(x: Tensor, target: Tensor, reduction: Reduction = "mean"): Tensor { return op("l1_loss", x, target, RED[reduction]); }
export function smoothL1Loss(x: Tensor, target: Tensor, beta = 1, reduction: Reduction = "mean"): Tensor { return op("smooth_l1_loss", x, target, RED[reduction], beta); }
export function bceWithLogits(logits: Tensor, target: Tensor, o: { weight?: Tensor; posWeight?: Tensor; reduction?: Reduction } = {}): Tensor {
  return op("binary_cross_entropy_with_logits", logits, target, o.weight ?? null, o.posWeight ?? null, RED[o.reduction ?? "mean"]);
}
/** One-hot encoding of int64 class indices: [...] → [..., numClasses]. */
export function oneHot(indices: Tensor, numClasses: number): Tensor { return op("one_hot", indices, numClasses); }
