// Data augmentation: nnU-Net's default set plus light-sheet artefacts. Every transform is a small pure function of
// a Sample and explicit parameters that returns new arrays (intensity transforms return the label array as it was);
// `augment` draws the parameters from a config of per-sample probabilities, in a fixed order, from one generator.
//
// nnU-Net v2 (nnUNetTrainer.get_training_transforms), per sample and in this order:
//   rotation ±30° about each axis (p 0.2) and isotropic scaling 0.7–1.4 (p 0.2), as one resampling
//   Gaussian noise, variance U(0, 0.1) (p 0.1)
//   Gaussian blur, σ U(0.5, 1) per axis (p 0.2 × 0.5 per channel = 0.1)
//   multiplicative brightness U(0.75, 1.25) (p 0.15)
//   contrast U(0.75, 1.25) around the mean, range preserved (p 0.15)
//   simulated low resolution, zoom U(0.5, 1), nearest down then linear up (p 0.25 × 0.5 per channel = 0.125)
//   gamma U(0.7, 1.5) on the inverted image (p 0.1), then on the image (p 0.3), statistics retained
//   mirroring, each axis with p 0.5
// Light-sheet artefacts (after the spatial transform, before the rest, as the optics come before the camera):
//   stripes: multiplicative streaks constant along the light-sheet axis (y or x), varying across it
//   depth attenuation: exp(−μz), the far end at U(0.4, 1) of the near end, from either side
//   anisotropic blur: σz U(1, 2.5), σy = σx U(0, 0.5) (the axial PSF is longer than the lateral)
// Multiplicative artefacts act on intensity above the image's minimum (normalised images are signed).
import type { Vec3 } from "../io/index.ts";
import { fork, type Rng } from "./rng.ts";
import { type Sample, cropPatch, minimumOf } from "./sampling.ts";

export interface AugmentConfig {
  pRotation: number;
  /** Maximum rotation about each axis, in degrees. */
  rotationDeg: number;
  pScale: number;
  /** Scale of the sampling coordinates: below 1 zooms in, above 1 zooms out. */
  scale: [number, number];
  pNoise: number;
  noiseVariance: [number, number];
  pBlur: number;
  blurSigma: [number, number];
  pBrightness: number;
  brightness: [number, number];
  pContrast: number;
  contrast: [number, number];
  pLowRes: number;
  lowResZoom: [number, number];
  pGammaInvert: number;
  pGamma: number;
  gamma: [number, number];
  /** Probability of mirroring along each of `mirrorAxes`. */
  pMirror: number;
  mirrorAxes: number[];
  pStripes: number;
  /** Darkest streak, as the fraction of intensity it removes. */
  stripeStrength: [number, number];
  pDepthAttenuation: number;
  /** Intensity at the far end of z relative to the near end. */
  depthAttenuation: [number, number];
  pAnisotropicBlur: number;
  anisotropicSigmaZ: [number, number];
  anisotropicSigmaYX: [number, number];
}

/** nnU-Net v2's defaults, and light-sheet artefacts at p 0.1 each. */
export const DEFAULT_AUGMENT: Readonly<AugmentConfig> = Object.freeze({
  pRotation: 0.2, rotationDeg: 30,
  pScale: 0.2, scale: [0.7, 1.4],
  pNoise: 0.1, noiseVariance: [0, 0.1],
  pBlur: 0.1, blurSigma: [0.5, 1],
  pBrightness: 0.15, brightness: [0.75, 1.25],
  pContrast: 0.15, contrast: [0.75, 1.25],
  pLowRes: 0.125, lowResZoom: [0.5, 1],
  pGammaInvert: 0.1, pGamma: 0.3, gamma: [0.7, 1.5],
  pMirror: 0.5, mirrorAxes: [0, 1, 2],
  pStripes: 0.1, stripeStrength: [0.1, 0.5],
  pDepthAttenuation: 0.1, depthAttenuation: [0.4, 1],
  pAnisotropicBlur: 0.1, anisotropicSigmaZ: [1, 2.5], anisotropicSigmaYX: [0, 0.5],
}) as AugmentConfig;

/** The defaults with some fields changed. */
export function augmentConfig(overrides: Partial<AugmentConfig> = {}): AugmentConfig {
  return { ...DEFAULT_AUGMENT, ...overrides };
}

/** Every probability 0: `augment` then only crops. */
export const NO_AUGMENT: Readonly<AugmentConfig> = Object.freeze(augmentConfig({
  pRotation: 0, pScale: 0, pNoise: 0, pBlur: 0, pBrightness: 0, pContrast: 0, pLowRes: 0, pGammaInvert: 0, pGamma: 0,
  pMirror: 0, pStripes: 0, pDepthAttenuation: 0, pAnisotropicBlur: 0,
}));

const withImage = (vol: Sample, image: Float32Array): Sample => ({ image, label: vol.label, shape: [...vol.shape] });

// ---------------------------------------------------------------------------------------------- spatial

/** The 3×3 rotation (row-major, z y x order) by `angles` [about z, about y, about x] in radians: Rz·Ry·Rx. */
export function rotationMatrix(angles: Vec3): number[] {
  const [cz, sz] = [Math.cos(angles[0]), Math.sin(angles[0])];
  const [cy, sy] = [Math.cos(angles[1]), Math.sin(angles[1])];
  const [cx, sx] = [Math.cos(angles[2]), Math.sin(angles[2])];
  // about z: turns (y, x); about y: turns (z, x); about x: turns (z, y)
  const Rz = [1, 0, 0, 0, cz, -sz, 0, sz, cz];
  const Ry = [cy, 0, sy, 0, 1, 0, -sy, 0, cy];
  const Rx = [cx, -sx, 0, sx, cx, 0, 0, 0, 1];
  // entries within 1e-12 of 0 or ±1 are snapped, so that right angles permute voxels exactly
  return matmul3(matmul3(Rz, Ry), Rx).map((v) => (Math.abs(v) < 1e-12 ? 0 : Math.abs(Math.abs(v) - 1) < 1e-12 ? Math.sign(v) : v));
}

function matmul3(a: number[], b: number[]): number[] {
  const out = new Array<number>(9).fill(0);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) out[i * 3 + j] += a[i * 3 + k] * b[k * 3 + j];
  return out;
}

/**
 * Resamples `vol` into a patch of `outShape`: output voxel o reads input position center + M·(o − (outShape−1)/2)
 * (z, y, x), trilinear for the image, nearest for the label; outside the volume the image is `padValue` and the
 * label 0. One pass over the output, so a rotated and scaled patch is cut straight from a whole volume.
 */
export function spatialTransform(vol: Sample, matrix: readonly number[], opts: { outShape?: Vec3; center?: Vec3; padValue?: number } = {}): Sample {
  const [nz, ny, nx] = vol.shape;
  const outShape = opts.outShape ?? vol.shape;
  const [oz, oy, ox] = outShape;
  const center = opts.center ?? [(nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2];
  const pad = opts.padValue ?? 0;
  const src = vol.image, srcLabel = vol.label;
  const image = new Float32Array(oz * oy * ox);
  const label = srcLabel ? new Uint8Array(oz * oy * ox) : null;
  const [m00, m01, m02, m10, m11, m12, m20, m21, m22] = matrix;
  const hz = (oz - 1) / 2, hy = (oy - 1) / 2, hx = (ox - 1) / 2;
  const nyx = ny * nx;
  const at = (z: number, y: number, x: number) => (z < 0 || y < 0 || x < 0 || z >= nz || y >= ny || x >= nx ? pad : src[z * nyx + y * nx + x]);
  let o = 0;
  for (let z = 0; z < oz; z++) {
    for (let y = 0; y < oy; y++) {
      const rz = z - hz, ry = y - hy;
      // input position of x = 0 on this row, and its step per x
      const bz = center[0] + m00 * rz + m01 * ry - m02 * hx;
      const by = center[1] + m10 * rz + m11 * ry - m12 * hx;
      const bx = center[2] + m20 * rz + m21 * ry - m22 * hx;
      for (let x = 0; x < ox; x++, o++) {
        const pz = bz + m02 * x, py = by + m12 * x, px = bx + m22 * x;
        const z0 = Math.floor(pz), y0 = Math.floor(py), x0 = Math.floor(px);
        const fz = pz - z0, fy = py - y0, fx = px - x0;
        let c000, c001, c010, c011, c100, c101, c110, c111;
        if (z0 >= 0 && y0 >= 0 && x0 >= 0 && z0 < nz - 1 && y0 < ny - 1 && x0 < nx - 1) {
          const i = z0 * nyx + y0 * nx + x0;
          c000 = src[i]; c001 = src[i + 1]; c010 = src[i + nx]; c011 = src[i + nx + 1];
          c100 = src[i + nyx]; c101 = src[i + nyx + 1]; c110 = src[i + nyx + nx]; c111 = src[i + nyx + nx + 1];
        } else {
          c000 = at(z0, y0, x0); c001 = at(z0, y0, x0 + 1); c010 = at(z0, y0 + 1, x0); c011 = at(z0, y0 + 1, x0 + 1);
          c100 = at(z0 + 1, y0, x0); c101 = at(z0 + 1, y0, x0 + 1); c110 = at(z0 + 1, y0 + 1, x0); c111 = at(z0 + 1, y0 + 1, x0 + 1);
        }
        const c00 = c000 + fx * (c001 - c000), c01 = c010 + fx * (c011 - c010);
        const c10 = c100 + fx * (c101 - c100), c11 = c110 + fx * (c111 - c110);
        const c0 = c00 + fy * (c01 - c00), c1 = c10 + fy * (c11 - c10);
        image[o] = c0 + fz * (c1 - c0);
        if (label) {
          const lz = Math.round(pz), ly = Math.round(py), lx = Math.round(px);
          if (lz >= 0 && ly >= 0 && lx >= 0 && lz < nz && ly < ny && lx < nx) label[o] = srcLabel![lz * nyx + ly * nx + lx];
        }
      }
    }
  }
  return { image, label, shape: [...outShape] };
}

/** Mirrors `vol` along each axis a (0 z, 1 y, 2 x) where `axes[a]` is true. */
export function mirror(vol: Sample, axes: readonly boolean[]): Sample {
  const [nz, ny, nx] = vol.shape;
  const image = new Float32Array(vol.image.length);
  const label = vol.label ? new Uint8Array(vol.label.length) : null;
  for (let z = 0; z < nz; z++) {
    const sz = axes[0] ? nz - 1 - z : z;
    for (let y = 0; y < ny; y++) {
      const sy = axes[1] ? ny - 1 - y : y;
      const dst = (z * ny + y) * nx, src = (sz * ny + sy) * nx;
      if (axes[2]) {
        for (let x = 0; x < nx; x++) image[dst + x] = vol.image[src + nx - 1 - x];
        if (label) for (let x = 0; x < nx; x++) label[dst + x] = vol.label![src + nx - 1 - x];
      } else {
        image.set(vol.image.subarray(src, src + nx), dst);
        if (label) label.set(vol.label!.subarray(src, src + nx), dst);
      }
    }
  }
  return { image, label, shape: [...vol.shape] };
}

// ---------------------------------------------------------------------------------------------- filters

/** The normalised Gaussian kernel of `sigma`, radius ⌊4σ + 0.5⌋ (scipy.ndimage.gaussian_filter's truncation). */
export function gaussianKernel(sigma: number): Float64Array {
  const r = Math.floor(4 * sigma + 0.5);
  const w = new Float64Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += w[i + r] = Math.exp((-0.5 * i * i) / (sigma * sigma));
  for (let i = 0; i < w.length; i++) w[i] /= s;
  return w;
}

/** Index i of a line of n mirrored at the edges (d c b a | a b c d | d c b a), scipy's "reflect" mode. */
export function reflectIndex(i: number, n: number): number {
  const period = 2 * n;
  const m = ((i % period) + period) % period;
  return m < n ? m : period - 1 - m;
}

/** 1D Gaussian convolution of `data` along `axis` (0 z, 1 y, 2 x), edges reflected, so the sum is conserved. */
export function blurAxis(data: Float32Array, shape: Vec3, axis: number, sigma: number): Float32Array {
  if (!(sigma > 0)) return data.slice();
  const w = gaussianKernel(sigma), r = (w.length - 1) >> 1;
  const n = shape[axis];
  const inner = axis === 0 ? shape[1] * shape[2] : axis === 1 ? shape[2] : 1;
  const outer = data.length / (n * inner);
  const out = new Float32Array(data.length);
  const src = new Int32Array(n * w.length);
  for (let i = 0; i < n; i++) for (let k = -r; k <= r; k++) src[i * w.length + k + r] = reflectIndex(i + k, n);
  if (inner === 1) {
    // each line copied once into a reflected, padded buffer, then a straight convolution
    const line = new Float64Array(n + 2 * r), L = w.length;
    for (let o = 0; o < outer; o++) {
      const base = o * n;
      for (let i = -r; i < n + r; i++) line[i + r] = data[base + reflectIndex(i, n)];
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < L; k++) s += w[k] * line[i + k];
        out[base + i] = s;
      }
    }
    return out;
  }
  // whole rows at a time: out[i, :] = Σ_k w_k · in[reflect(i + k), :], contiguous in memory
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < n; i++) {
      const dst = (o * n + i) * inner;
      for (let k = 0; k < w.length; k++) {
        const wk = w[k], from = (o * n + src[i * w.length + k]) * inner;
        for (let t = 0; t < inner; t++) out[dst + t] += wk * data[from + t];
      }
    }
  }
  return out;
}

/** Separable Gaussian blur of the image with σ per axis (z, y, x), in voxels. */
export function gaussianBlur(vol: Sample, sigma: Vec3): Sample {
  let img = vol.image;
  for (let a = 0; a < 3; a++) if (sigma[a] > 0) img = blurAxis(img, vol.shape, a, sigma[a]);
  return withImage(vol, img === vol.image ? img.slice() : img);
}

/** Linear resampling of `data` along `axis` to `m` voxels (half-pixel centres, edges clamped: align_corners=False). */
function resizeAxisLinear(data: Float32Array, shape: Vec3, axis: number, m: number): { data: Float32Array; shape: Vec3 } {
  const n = shape[axis];
  const inner = axis === 0 ? shape[1] * shape[2] : axis === 1 ? shape[2] : 1;
  const outer = data.length / (n * inner);
  const out = new Float32Array(outer * m * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      const p = Math.min(n - 1, Math.max(0, ((j + 0.5) * n) / m - 0.5));
      const i0 = Math.floor(p), i1 = Math.min(n - 1, i0 + 1), f = p - i0;
      const a = (o * n + i0) * inner, b = (o * n + i1) * inner, d = (o * m + j) * inner;
      for (let t = 0; t < inner; t++) out[d + t] = data[a + t] + f * (data[b + t] - data[a + t]);
    }
  }
  const s: Vec3 = [...shape];
  s[axis] = m;
  return { data: out, shape: s };
}

/** Nearest ("nearest-exact") resampling of `data` to `outShape`. */
function resizeNearest(data: Float32Array, shape: Vec3, outShape: Vec3): Float32Array {
  const [nz, ny, nx] = shape, [mz, my, mx] = outShape;
  const out = new Float32Array(mz * my * mx);
  const ix = Int32Array.from({ length: mx }, (_, j) => Math.min(nx - 1, Math.floor(((j + 0.5) * nx) / mx)));
  let o = 0;
  for (let z = 0; z < mz; z++) {
    const sz = Math.min(nz - 1, Math.floor(((z + 0.5) * nz) / mz));
    for (let y = 0; y < my; y++) {
      const row = (sz * ny + Math.min(ny - 1, Math.floor(((y + 0.5) * ny) / my))) * nx;
      for (let x = 0; x < mx; x++) out[o++] = data[row + ix[x]];
    }
  }
  return out;
}

/** Simulated low resolution: nearest downsampling by `zoom` (< 1) per axis, then linear upsampling back. */
export function simulateLowResolution(vol: Sample, zoom: Vec3): Sample {
  const low: Vec3 = [0, 1, 2].map((a) => Math.max(1, Math.round(vol.shape[a] * zoom[a]))) as Vec3;
  let cur = { data: resizeNearest(vol.image, vol.shape, low), shape: low };
  for (let a = 0; a < 3; a++) cur = resizeAxisLinear(cur.data, cur.shape, a, vol.shape[a]);
  return withImage(vol, cur.data);
}

// ---------------------------------------------------------------------------------------------- intensity

/** x + N(0, std²) per voxel. */
export function gaussianNoise(vol: Sample, std: number, rng: Rng): Sample {
  const out = new Float32Array(vol.image.length);
  for (let i = 0; i < out.length; i++) out[i] = vol.image[i] + std * rng.normal();
  return withImage(vol, out);
}

/** x · factor. */
export function brightness(vol: Sample, factor: number): Sample {
  const out = new Float32Array(vol.image.length);
  for (let i = 0; i < out.length; i++) out[i] = vol.image[i] * factor;
  return withImage(vol, out);
}

function statsOf(x: Float32Array): { mean: number; std: number; min: number; max: number } {
  let s = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    s += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = s / x.length;
  let s2 = 0;
  for (let i = 0; i < x.length; i++) s2 += (x[i] - mean) ** 2;
  return { mean, std: Math.sqrt(s2 / x.length), min, max };
}

/** (x − mean)·factor + mean, clipped to the image's former [min, max] (batchgenerators' preserve_range). */
export function contrast(vol: Sample, factor: number): Sample {
  const { mean, min, max } = statsOf(vol.image);
  const out = new Float32Array(vol.image.length);
  for (let i = 0; i < out.length; i++) {
    const v = (vol.image[i] - mean) * factor + mean;
    out[i] = v < min ? min : v > max ? max : v;
  }
  return withImage(vol, out);
}

/**
 * batchgenerators' augment_gamma with retain_stats: (optionally on −x) x ↦ ((x − min)/(range + 1e-7))^γ · range + min,
 * then shifted and scaled back to the former mean and standard deviation.
 */
export function gamma(vol: Sample, g: number, invert = false): Sample {
  const x = vol.image, n = x.length;
  const out = new Float32Array(n);
  const sign = invert ? -1 : 1;
  for (let i = 0; i < n; i++) out[i] = sign * x[i];
  const before = statsOf(out);
  const range = before.max - before.min;
  // exp(g·log t) rather than t ** g: the same value, faster in V8; t = 0 gives exp(−∞) = 0
  const scale = 1 / (range + 1e-7);
  for (let i = 0; i < n; i++) out[i] = Math.exp(g * Math.log((out[i] - before.min) * scale)) * range + before.min;
  const after = statsOf(out);
  const k = before.std / (after.std + 1e-8);
  for (let i = 0; i < n; i++) out[i] = sign * ((out[i] - after.mean) * k + before.mean);
  return withImage(vol, out);
}

/** Multiplies intensity above the image's minimum by `factor[z, y, x]` given as a function of the three indices' lines. */
function multiplyAboveFloor(vol: Sample, factorOf: (z: number, y: number, x: number) => number): Sample {
  const [nz, ny, nx] = vol.shape;
  const floor = minimumOf(vol.image);
  const out = new Float32Array(vol.image.length);
  let i = 0;
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++, i++) {
    out[i] = floor + (vol.image[i] - floor) * factorOf(z, y, x);
  }
  return withImage(vol, out);
}

/**
 * Light-sheet stripes: intensity above the floor multiplied by `profile` (one factor per index of `acrossAxis`),
 * constant along the other axes, as the shadows that absorbers cast along the sheet's direction.
 */
export function stripes(vol: Sample, acrossAxis: number, profile: Float32Array): Sample {
  if (profile.length !== vol.shape[acrossAxis]) throw new Error(`stripes: profile has ${profile.length} factors, axis ${acrossAxis} has ${vol.shape[acrossAxis]} voxels`);
  return multiplyAboveFloor(vol, acrossAxis === 0 ? (z) => profile[z] : acrossAxis === 1 ? (_z, y) => profile[y] : (_z, _y, x) => profile[x]);
}

/** A stripe profile of length n: Gaussian-shaped dips of depth U(strength) and width σ U(0.5, 2), about one per 8 voxels. */
export function stripeProfile(n: number, strength: [number, number], rng: Rng): Float32Array {
  const profile = new Float32Array(n).fill(1);
  const count = Math.max(1, Math.round(n / 8));
  for (let s = 0; s < count; s++) {
    const c = rng.uniform(0, n), sigma = rng.uniform(0.5, 2), depth = rng.uniform(strength[0], strength[1]);
    for (let i = 0; i < n; i++) profile[i] *= 1 - depth * Math.exp(-0.5 * ((i - c) / sigma) ** 2);
  }
  return profile;
}

/** Depth attenuation: intensity above the floor times exp(−μ·d), d the depth from the lit face (z = 0, or the last z if `fromEnd`) in voxels. */
export function depthAttenuation(vol: Sample, mu: number, fromEnd = false): Sample {
  const nz = vol.shape[0];
  const f = Float32Array.from({ length: nz }, (_, z) => Math.exp(-mu * (fromEnd ? nz - 1 - z : z)));
  return multiplyAboveFloor(vol, (z) => f[z]);
}

// ---------------------------------------------------------------------------------------------- the pipeline

const uniform = (rng: Rng, r: [number, number]) => rng.uniform(r[0], r[1]);
/** batchgenerators' draw for a factor range around 1: half the time below 1, half above. */
const aroundOne = (rng: Rng, r: [number, number]) => (r[0] < 1 && rng.next() < 0.5 ? rng.uniform(r[0], 1) : rng.uniform(Math.max(r[0], 1), r[1]));

export interface AugmentOptions {
  /** The output patch (default: the sample's shape). */
  patchSize?: Vec3;
  /** Where in the sample the patch is centred (default: the sample's centre), continuous z, y, x. */
  center?: Vec3;
  /** Image value outside the sample (default: the sample's minimum). */
  padValue?: number;
}

/**
 * One augmented patch of `sample`: the spatial transform (or a plain crop when it does not fire) cuts a patch of
 * `patchSize` around `center`, straight from the sample (which may be a whole volume), then the other transforms
 * follow. Every decision comes from `rng` in a fixed order, so (sample, config, rng state) fixes the result.
 */
export function augment(sample: Sample, config: AugmentConfig, rng: Rng, opts: AugmentOptions = {}): Sample {
  const c = config;
  const patchSize = opts.patchSize ?? sample.shape;
  const center = opts.center ?? sample.shape.map((n) => (n - 1) / 2) as Vec3;
  const padValue = opts.padValue ?? minimumOf(sample.image);
  const maxAngle = (c.rotationDeg * Math.PI) / 180;
  const rotate = rng.next() < c.pRotation;
  const angles: Vec3 = rotate ? [rng.uniform(-maxAngle, maxAngle), rng.uniform(-maxAngle, maxAngle), rng.uniform(-maxAngle, maxAngle)] : [0, 0, 0];
  const scaled = rng.next() < c.pScale;
  const s = scaled ? aroundOne(rng, c.scale) : 1;
  const start = center.map((v, a) => v - (patchSize[a] - 1) / 2) as Vec3;
  let out: Sample;
  if (rotate || scaled || !start.every(Number.isInteger)) {
    out = spatialTransform(sample, rotationMatrix(angles).map((v) => v * s), { outShape: patchSize, center, padValue });
  } else {
    out = cropPatch(sample, start, patchSize, padValue);
  }
  if (rng.next() < c.pStripes) {
    const acrossAxis = rng.next() < 0.5 ? 1 : 2;
    out = stripes(out, acrossAxis, stripeProfile(out.shape[acrossAxis], c.stripeStrength, rng));
  }
  if (rng.next() < c.pDepthAttenuation) {
    const farEnd = uniform(rng, c.depthAttenuation), fromEnd = rng.next() < 0.5;
    out = depthAttenuation(out, -Math.log(farEnd) / Math.max(1, out.shape[0] - 1), fromEnd);
  }
  if (rng.next() < c.pAnisotropicBlur) {
    const sz = uniform(rng, c.anisotropicSigmaZ), syx = uniform(rng, c.anisotropicSigmaYX);
    out = gaussianBlur(out, [sz, syx, syx]);
  }
  if (rng.next() < c.pNoise) out = gaussianNoise(out, Math.sqrt(uniform(rng, c.noiseVariance)), rng);
  if (rng.next() < c.pBlur) out = gaussianBlur(out, [uniform(rng, c.blurSigma), uniform(rng, c.blurSigma), uniform(rng, c.blurSigma)]);
  if (rng.next() < c.pBrightness) out = brightness(out, uniform(rng, c.brightness));
  if (rng.next() < c.pContrast) out = contrast(out, aroundOne(rng, c.contrast));
  if (rng.next() < c.pLowRes) {
    const z = uniform(rng, c.lowResZoom);
    out = simulateLowResolution(out, [z, z, z]);
  }
  if (rng.next() < c.pGammaInvert) out = gamma(out, aroundOne(rng, c.gamma), true);
  if (rng.next() < c.pGamma) out = gamma(out, aroundOne(rng, c.gamma), false);
  const axes = [false, false, false];
  for (const a of c.mirrorAxes) axes[a] = rng.next() < c.pMirror;
  if (axes.some(Boolean)) out = mirror(out, axes);
  return out;
}

/** Two independent augmentations of the same patch (the two views of contrastive pretraining). */
export function twoViews(sample: Sample, config: AugmentConfig, rng: Rng, opts: AugmentOptions = {}): [Sample, Sample] {
  const a = fork(rng, "view 0"), b = fork(rng, "view 1");
  return [augment(sample, config, a, opts), augment(sample, config, b, opts)];
}
