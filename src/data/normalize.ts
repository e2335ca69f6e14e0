// Per-volume intensity normalisation: nnU-Net's "z-score after percentile clip". Light-sheet brightness varies by
// specimen (gain, offset, clearing, depth), so every volume is normalised on its own statistics:
//   lo, hi = the 0.5th and 99.5th percentiles of the volume's voxels
//   x' = (clip(x, lo, hi) − mean) / std,   mean and std of the clipped volume (all voxels)
// The percentiles come from a deterministic subsample of at most `maxSamples` voxels (a fixed-seed random draw),
// so a 300³ volume needs a sort of 10⁵ numbers, not of 2.7·10⁷; with fewer voxels than that, all are used.
// Percentiles interpolate linearly between order statistics, as numpy.percentile does by default.
// NaN and ±Inf voxels (a float volume from a broken pipeline) count as the smallest finite voxel: one NaN would
// otherwise make every statistic NaN and the prediction all background.
import type { VoxelArray } from "../io/index.ts";
import { Rng } from "./rng.ts";

export interface NormalizeOptions {
  /** Percentiles to clip to (default [0.5, 99.5]). */
  percentiles?: [number, number];
  /** Voxels sampled to estimate the percentiles (default 100,000). */
  maxSamples?: number;
}

export interface Normalization {
  lo: number;
  hi: number;
  mean: number;
  std: number;
}

/** The p-th percentile (0–100) of ascending `sorted`, interpolated linearly (numpy's default). */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const r = (p / 100) * (n - 1);
  const i = Math.floor(r), f = r - i;
  return i + 1 < n ? sorted[i] + f * (sorted[i + 1] - sorted[i]) : sorted[n - 1];
}

/**
 * The clip bounds for percentiles pLo, pHi of ascending `sorted`. Percentile 0 or 100 means no clip on that side
 * (nnU-Net's plain ZScoreNormalization: [0, 100]); ±Number.MAX_VALUE rather than ±Infinity keeps it JSON-safe.
 */
export function clipBounds(sorted: ArrayLike<number>, pLo: number, pHi: number): { lo: number; hi: number } {
  return { lo: pLo <= 0 ? -Number.MAX_VALUE : percentileSorted(sorted, pLo), hi: pHi >= 100 ? Number.MAX_VALUE : percentileSorted(sorted, pHi) };
}

/** How many voxels of `data` are NaN or ±Inf, and the smallest finite voxel (0 when there is none). */
export function nonFiniteOf(data: ArrayLike<number>): { count: number; min: number } {
  let count = 0, min = Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (Number.isFinite(v)) { if (v < min) min = v; } else count++;
  }
  return { count, min: min === Infinity ? 0 : min };
}

/** `data` with NaN and ±Inf replaced by the smallest finite voxel (a copy), or `data` itself when all are finite. */
export function finiteVoxels(data: VoxelArray): VoxelArray {
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return data;
  const { count, min } = nonFiniteOf(data);
  if (count === 0) return data;
  const out = data.slice();
  for (let i = 0; i < out.length; i++) if (!Number.isFinite(out[i])) out[i] = min;
  return out;
}

/** The clip bounds and statistics that `normalize` applies to `data`. */
export function normalizationOf(voxels: VoxelArray, opts: NormalizeOptions = {}): Normalization {
  const data = finiteVoxels(voxels);
  const [pLo, pHi] = opts.percentiles ?? [0.5, 99.5];
  const maxSamples = opts.maxSamples ?? 100_000;
  const n = data.length;
  let sample: Float64Array;
  if (n <= maxSamples) {
    sample = Float64Array.from(data);
  } else {
    const rng = new Rng(`lsmseg/data/normalize/${n}`);
    sample = new Float64Array(maxSamples);
    for (let i = 0; i < maxSamples; i++) sample[i] = data[Math.floor(rng.next() * n)];
  }
  sample.sort();
  const { lo, hi } = clipBounds(sample, pLo, pHi);
  // two passes (mean, then squared deviations): no cancellation when the offset is large against the spread
  let s = 0;
  for (let i = 0; i < n; i++) {
    const v = data[i];
    s += v < lo ? lo : v > hi ? hi : v;
  }
  const mean = n ? s / n : 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const v = data[i];
    const d = (v < lo ? lo : v > hi ? hi : v) - mean;
    s2 += d * d;
  }
  const variance = n ? s2 / n : 0;
  return { lo, hi, mean, std: Math.sqrt(variance) };
}

/** `data` clipped to its [0.5, 99.5] percentiles and z-scored, as a new Float32Array. A constant volume maps to 0. */
export function normalize(voxels: VoxelArray, opts: NormalizeOptions = {}): Float32Array {
  const data = finiteVoxels(voxels);
  const { lo, hi, mean, std } = normalizationOf(data, opts);
  const out = new Float32Array(data.length);
  // nnU-Net divides by max(std, 1e-8)
  const inv = 1 / Math.max(std, 1e-8);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    out[i] = ((v < lo ? lo : v > hi ? hi : v) - mean) * inv;
  }
  return out;
}
