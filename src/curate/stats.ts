// The numbers curation decides by, as plain functions over typed arrays (no tensors, no I/O):
//   thresholds   Otsu (1979) and the triangle method (Zack et al. 1977) on a histogram
//   percentiles  exact, as numpy.percentile's default (linear between order statistics); a counting pass
//                for 8/16-bit integers (light-sheet data is uint16), a sort otherwise
//   noise σ      robust: median |v[x+1] − v[x]| / (0.6745·√2), the MAD of neighbour differences along x;
//                structures are smooth at one voxel, so the differences are mostly noise
//   structure    fraction of voxels whose local contrast v − mean(3×3×3 around v) exceeds k·σ, after 2×2×2
//                block averaging (σ/√8 for white noise): cells, vessels and fibres light up, flat tissue,
//                noise and out-of-focus haze do not (≈ 0.1 % for pure noise at k = 3)
//   focus        the same count at full resolution divided by the count at 2×: defocus removes the finest band
//   entropy      Shannon entropy (bits) of a 64-bin histogram over the volume's normalisation range
//   signature    4×4×4 block means, z-scored by the volume's statistics: what near-duplicate removal compares
import type { VoxelArray } from "../io/index.ts";
import { percentileSorted } from "../data/normalize.ts";

export type Shape3 = [number, number, number];

// ---------------------------------------------------------------------------------------------- thresholds

/** Otsu's threshold on a histogram: the bin edge index t (foreground = bins ≥ t) maximising between-class variance. */
export function otsuBin(hist: ArrayLike<number>): number {
  let total = 0, sumAll = 0;
  for (let i = 0; i < hist.length; i++) { total += hist[i]; sumAll += i * hist[i]; }
  let w0 = 0, sum0 = 0, best = -1, bestT = 1;
  for (let t = 1; t < hist.length; t++) {
    w0 += hist[t - 1];
    sum0 += (t - 1) * hist[t - 1];
    const w1 = total - w0;
    if (w0 === 0 || w1 === 0) continue;
    const m0 = sum0 / w0, m1 = (sumAll - sum0) / w1;
    const between = w0 * w1 * (m0 - m1) * (m0 - m1);
    if (between > best) { best = between; bestT = t; }
  }
  return bestT;
}

/**
 * The triangle threshold: the line from the histogram's peak to its far end; the bin farthest below that line.
 * Suits a large background peak with a long tail of tissue (sparse specimens). Returns the first foreground bin.
 */
export function triangleBin(hist: ArrayLike<number>): number {
  let peak = 0;
  for (let i = 1; i < hist.length; i++) if (hist[i] > hist[peak]) peak = i;
  let lo = 0, hi = hist.length - 1;
  while (lo < hist.length - 1 && hist[lo] === 0) lo++;
  while (hi > 0 && hist[hi] === 0) hi--;
  // walk towards the longer tail
  const end = hi - peak >= peak - lo ? hi : lo;
  const dir = end >= peak ? 1 : -1;
  const dx = end - peak, dy = hist[end] - hist[peak];
  const norm = Math.hypot(dx, dy) || 1;
  let best = -1, bestI = peak;
  for (let i = peak; i !== end; i += dir) {
    const d = Math.abs(dy * (i - peak) - dx * (hist[i] - hist[peak])) / norm;
    if (d > best) { best = d; bestI = i; }
  }
  return dir > 0 ? bestI + 1 : bestI;
}

/**
 * A threshold value on `values` by Otsu or triangle over a `bins`-bin histogram between min and max, or over
 * `range` (values outside go to the end bins): a few saturated voxels must not squeeze tissue and background
 * into one bin.
 */
export function thresholdOf(values: ArrayLike<number>, method: "otsu" | "triangle" = "otsu", bins = 256, range?: [number, number]): number {
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < values.length; i++) { const v = values[i]; if (v < min) min = v; if (v > max) max = v; }
  if (range) { min = Math.max(min, range[0]); max = Math.min(max, range[1]); }
  if (!(max > min)) return max;
  const hist = new Float64Array(bins);
  const scale = bins / (max - min);
  for (let i = 0; i < values.length; i++) {
    const b = Math.floor((values[i] - min) * scale);
    hist[b < 0 ? 0 : b > bins - 1 ? bins - 1 : b]++;
  }
  const t = method === "otsu" ? otsuBin(hist) : triangleBin(hist);
  return min + t / scale;
}

// ---------------------------------------------------------------------------------------------- percentiles

/** Exact percentiles (0–100) of `data`, interpolated as numpy.percentile (and percentileSorted) do. */
export function percentiles(data: VoxelArray, ps: readonly number[]): number[] {
  if (data.length === 0) return ps.map(() => 0);
  if (data instanceof Uint16Array || data instanceof Uint8Array) {
    const counts = new Uint32Array(data instanceof Uint8Array ? 256 : 65536);
    for (let i = 0; i < data.length; i++) counts[data[i]]++;
    return percentilesOfCounts(counts, data.length, ps);
  }
  const sorted = Float64Array.from(data).sort();
  return ps.map((p) => percentileSorted(sorted, p));
}

/** Percentiles of `n` integer values given as counts per value (counts[v] = how many equal v). */
function percentilesOfCounts(counts: ArrayLike<number>, n: number, ps: readonly number[]): number[] {
  // order statistic k (0-based): the smallest v whose cumulative count exceeds k
  const ranks = ps.map((p) => (p / 100) * (n - 1));
  const wanted = [...new Set(ranks.flatMap((r) => [Math.floor(r), Math.min(n - 1, Math.floor(r) + 1)]))].sort((a, b) => a - b);
  const value = new Map<number, number>();
  let cum = 0, w = 0;
  for (let v = 0; v < counts.length && w < wanted.length; v++) {
    cum += counts[v];
    while (w < wanted.length && wanted[w] < cum) value.set(wanted[w++], v);
  }
  return ranks.map((r) => {
    const i = Math.floor(r), f = r - i;
    const a = value.get(i)!, b = value.get(Math.min(n - 1, i + 1))!;
    return i + 1 < n ? a + f * (b - a) : a;
  });
}

// ---------------------------------------------------------------------------------------------- noise

/** Robust noise σ from neighbour differences along x (MAD); 0 for a constant tile. */
export function noiseSigma(data: VoxelArray, shape: Shape3): number {
  const [nz, ny, nx] = shape;
  const rows = nz * ny;
  if (nx < 2) return 0;
  const n = rows * (nx - 1);
  let median: number;
  if (data instanceof Uint16Array || data instanceof Uint8Array) {
    const counts = new Uint32Array(data instanceof Uint8Array ? 256 : 65536);
    for (let r = 0; r < rows; r++) {
      const o = r * nx;
      for (let x = 0; x + 1 < nx; x++) { const d = data[o + x + 1] - data[o + x]; counts[d < 0 ? -d : d]++; }
    }
    median = percentilesOfCounts(counts, n, [50])[0];
  } else {
    const diffs = new Float64Array(n);
    let k = 0;
    for (let r = 0; r < rows; r++) for (let x = 0; x + 1 < nx; x++) diffs[k++] = Math.abs(data[r * nx + x + 1] - data[r * nx + x]);
    median = percentileSorted(diffs.sort(), 50);
  }
  return median / (0.6745 * Math.SQRT2);
}

// ---------------------------------------------------------------------------------------------- local contrast

/** 2×2×2 block means (odd edges dropped): [floor(z/2), floor(y/2), floor(x/2)] float32. */
export function downsample2(data: ArrayLike<number>, shape: Shape3): { data: Float32Array; shape: Shape3 } {
  const [nz, ny, nx] = shape;
  const mz = nz >> 1, my = ny >> 1, mx = nx >> 1;
  const out = new Float32Array(mz * my * mx);
  for (let z = 0; z < mz; z++) for (let y = 0; y < my; y++) {
    const a = ((2 * z) * ny + 2 * y) * nx, b = a + nx, c = a + ny * nx, d = c + nx;
    const o = (z * my + y) * mx;
    for (let x = 0; x < mx; x++) {
      const i = 2 * x;
      out[o + x] = (data[a + i] + data[a + i + 1] + data[b + i] + data[b + i + 1]
        + data[c + i] + data[c + i + 1] + data[d + i] + data[d + i + 1]) / 8;
    }
  }
  return { data: out, shape: [mz, my, mx] };
}

/**
 * Fraction of the interior voxels (one-voxel border left out) where v − mean of its 3×3×3 neighbourhood (itself
 * included) exceeds `threshold`. Plane by plane with a ring of three 3×3 box sums, so memory is three planes.
 */
export function localContrastFraction(data: ArrayLike<number>, shape: Shape3, threshold: number): number {
  const [nz, ny, nx] = shape;
  if (nz < 3 || ny < 3 || nx < 3) return 0;
  const plane = ny * nx;
  const ring = [new Float32Array(plane), new Float32Array(plane), new Float32Array(plane)];
  const row = new Float32Array(plane);
  const boxSum = (z: number, out: Float32Array) => {
    const o = z * plane;
    for (let y = 0; y < ny; y++) for (let x = 1; x + 1 < nx; x++) {
      const i = o + y * nx + x;
      row[y * nx + x] = data[i - 1] + data[i] + data[i + 1];
    }
    for (let y = 1; y + 1 < ny; y++) for (let x = 1; x + 1 < nx; x++) {
      const i = y * nx + x;
      out[i] = row[i - nx] + row[i] + row[i + nx];
    }
  };
  boxSum(0, ring[0]);
  boxSum(1, ring[1]);
  let above = 0;
  const t27 = threshold * 27;
  for (let z = 1; z + 1 < nz; z++) {
    boxSum(z + 1, ring[(z + 1) % 3]);
    const a = ring[(z - 1) % 3], b = ring[z % 3], c = ring[(z + 1) % 3];
    const o = z * plane;
    for (let y = 1; y + 1 < ny; y++) for (let x = 1; x + 1 < nx; x++) {
      const i = y * nx + x;
      // 27·v − sum > 27·threshold  ⇔  v − mean > threshold
      if (27 * data[o + i] - (a[i] + b[i] + c[i]) > t27) above++;
    }
  }
  return above / ((nz - 2) * (ny - 2) * (nx - 2));
}

// ---------------------------------------------------------------------------------------------- signature

/** 4×4×4 block means (as many blocks as fit per axis, at least one), z-scored by `mean`, `std`. */
export function signatureOf(data: ArrayLike<number>, shape: Shape3, mean: number, std: number, blocks = 4): number[] {
  const [nz, ny, nx] = shape;
  const b = [Math.min(blocks, nz), Math.min(blocks, ny), Math.min(blocks, nx)];
  const sums = new Float64Array(b[0] * b[1] * b[2]), counts = new Float64Array(sums.length);
  const bx = Int32Array.from({ length: nx }, (_, x) => Math.floor((x * b[2]) / nx));
  for (let z = 0; z < nz; z++) {
    const bz = Math.floor((z * b[0]) / nz);
    for (let y = 0; y < ny; y++) {
      const k0 = (bz * b[1] + Math.floor((y * b[1]) / ny)) * b[2];
      const o = (z * ny + y) * nx;
      for (let x = 0; x < nx; x++) sums[k0 + bx[x]] += data[o + x];
      for (let x = 0; x < nx; x++) counts[k0 + bx[x]]++;
    }
  }
  const inv = 1 / Math.max(std, 1e-8);
  return Array.from(sums, (s, k) => Math.round(((s / counts[k] - mean) * inv) * 1000) / 1000);
}

/**
 * Whether two signatures are near-duplicates: Pearson correlation ≥ `minCorrelation` and mean absolute
 * difference ≤ `maxDifference` (in units of the volume's std): the same pattern at the same brightness.
 */
export function nearDuplicate(a: readonly number[], b: readonly number[], minCorrelation = 0.99, maxDifference = 0.1): boolean {
  if (a.length !== b.length || a.length === 0) return false;
  const n = a.length;
  let ma = 0, mb = 0, diff = 0;
  for (let i = 0; i < n; i++) { ma += a[i]; mb += b[i]; diff += Math.abs(a[i] - b[i]); }
  if (diff / n > maxDifference) return false;
  ma /= n; mb /= n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) { const da = a[i] - ma, db = b[i] - mb; sab += da * db; saa += da * da; sbb += db * db; }
  if (saa === 0 || sbb === 0) return saa === sbb; // two flat signatures at the same level are duplicates
  return sab / Math.sqrt(saa * sbb) >= minCorrelation;
}

// ---------------------------------------------------------------------------------------------- tile statistics

export interface TileStats {
  /** Fraction of the tile inside the low-resolution tissue mask. */
  tissue: number;
  mean: number;
  std: number;
  p1: number;
  p50: number;
  p99: number;
  p999: number;
  /** Robust noise σ (see noiseSigma). */
  noise: number;
  /** (p99.9 − p50) / σ: how far the brightest structures stand above the typical voxel, in noise units. */
  snr: number;
  /** Fraction of voxels at or above the saturation value. */
  saturation: number;
  /** Shannon entropy in bits of the 64-bin histogram over the volume's [lo, hi]. */
  entropy: number;
  /** Fraction of voxels above the local-contrast threshold at 2× (see the file's header). */
  structure: number;
  /** Local-contrast fraction at full resolution over that at 2× (1 = sharp; small = blurred). */
  focus: number;
}

export interface TileStatsOptions {
  /** Fraction of the tile inside the tissue mask (computed from the overview, passed through). */
  tissue: number;
  /** The volume's normalisation range, for the entropy histogram. */
  lo: number;
  hi: number;
  /** Voxels ≥ this are saturated (the dtype's maximum for integers). */
  saturationValue: number;
  /** Local-contrast threshold in units of the noise σ (default 3). */
  contrastK?: number;
}

/** Every statistic of one tile. */
export function tileStats(data: VoxelArray, shape: Shape3, o: TileStatsOptions): TileStats {
  const n = data.length;
  const [p1, p50, p99, p999] = percentiles(data, [1, 50, 99, 99.9]);
  let s = 0, sat = 0;
  const bins = new Float64Array(64);
  const scale = 64 / Math.max(o.hi - o.lo, 1e-9);
  for (let i = 0; i < n; i++) {
    const v = data[i];
    s += v;
    if (v >= o.saturationValue) sat++;
    const b = Math.floor((v - o.lo) * scale);
    bins[b < 0 ? 0 : b > 63 ? 63 : b]++;
  }
  const mean = n ? s / n : 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) { const d = data[i] - mean; s2 += d * d; }
  let entropy = 0;
  for (const c of bins) if (c > 0) entropy -= (c / n) * Math.log2(c / n);
  const noise = noiseSigma(data, shape);
  const k = o.contrastK ?? 3;
  // a noiseless tile (σ = 0, e.g. a constant background) counts any positive contrast
  const sigma = Math.max(noise, 1e-6);
  const half = downsample2(data, shape);
  const structure = localContrastFraction(half.data, half.shape, (k * sigma) / Math.sqrt(8));
  const fine = localContrastFraction(data, shape, k * sigma);
  return {
    tissue: o.tissue, mean, std: n ? Math.sqrt(s2 / n) : 0, p1, p50, p99, p999, noise,
    snr: (p999 - p50) / sigma, saturation: n ? sat / n : 0, entropy, structure,
    focus: structure > 0 ? fine / structure : 0,
  };
}

// ---------------------------------------------------------------------------------------------- morphology

/**
 * Binary dilation (op "max") or erosion ("min") by a (2r+1)³ cube: separable, one pass per axis whatever r (the
 * distance to the nearest set voxel before and after each voxel along the line); the window is cut at the
 * volume's edge, which is the same as clamping (edge voxels repeated).
 */
function morph(mask: Uint8Array, shape: Shape3, r: number, op: "max" | "min"): Uint8Array {
  const [nz, ny, nx] = shape;
  // erosion is the complement of the dilation of the complement
  const flip = op === "max" ? 0 : 1;
  let cur = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) cur[i] = (mask[i] ? 1 : 0) ^ flip;
  for (let axis = 0; axis < 3; axis++) {
    const out = new Uint8Array(cur.length);
    if (axis === 0) for (let k = 0; k < ny * nx; k++) dilateLine(cur, out, k, ny * nx, nz, r);
    else if (axis === 1) for (let z = 0; z < nz; z++) for (let x = 0; x < nx; x++) dilateLine(cur, out, z * ny * nx + x, nx, ny, r);
    else for (let k = 0; k < nz * ny; k++) dilateLine(cur, out, k * nx, 1, nx, r);
    cur = out;
  }
  if (flip) for (let i = 0; i < cur.length; i++) cur[i] ^= 1;
  return cur;
}

/** out[line] = 1 where a set voxel of `src` lies within r along the line (base, base+stride, … n voxels). */
function dilateLine(src: Uint8Array, out: Uint8Array, base: number, stride: number, n: number, r: number): void {
  let last = -1 - r;
  for (let i = 0, k = base; i < n; i++, k += stride) {
    if (src[k]) last = i;
    if (i - last <= r) out[k] = 1;
  }
  last = n + r;
  for (let i = n - 1, k = base + (n - 1) * stride; i >= 0; i--, k -= stride) {
    if (src[k]) last = i;
    if (last - i <= r) out[k] = 1;
  }
}

/** Opening then closing by a (2r+1)³ cube: removes specks smaller than the cube, fills gaps narrower than it. */
export function cleanMask(mask: Uint8Array, shape: Shape3, r = 1): Uint8Array {
  if (r <= 0) return mask.slice();
  const opened = morph(morph(mask, shape, r, "min"), shape, r, "max");
  return morph(morph(opened, shape, r, "max"), shape, r, "min");
}
