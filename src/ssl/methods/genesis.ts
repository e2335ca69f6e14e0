// Restoration pretraining, Models Genesis (Zhou et al. 2019/2021): each crop is distorted by local voxel
// shuffling (p 0.5), a non-linear intensity remapping by a random Bézier curve (p 0.9), and in-painting
// (p 0.9 · 0.2) or out-painting (p 0.9 · 0.8); the U-Net with a 1-channel head restores the original, MSE
// over every voxel. The transforms run on the host, in the intensity range [lo, hi] of each crop (the
// paper's [0, 1] after min–max scaling), from the step's random stream.
import type { Rng } from "../../data/rng.ts";
import type { SegNetwork } from "../../nn/networks.ts";
import { fromBytes, mseLoss } from "../../torch/index.ts";
import { ReconstructionHead, type SslMethod, decoderOutput } from "../method.ts";

type Shape3 = readonly [number, number, number];

/**
 * Shuffles the voxels inside `blocks` random windows (edges 1 … max(1, n/10) per axis), in place: each
 * window is permuted among itself, so the whole is a permutation of the voxels (the multiset is kept).
 */
export function localShuffle(img: Float32Array, shape: Shape3, blocks: number, rng: Rng): void {
  const [nz, ny, nx] = shape;
  const maxEdge = shape.map((n) => Math.max(1, Math.floor(n / 10)));
  const idx: number[] = [];
  for (let k = 0; k < blocks; k++) {
    const ez = rng.int(1, maxEdge[0]), ey = rng.int(1, maxEdge[1]), ex = rng.int(1, maxEdge[2]);
    const z0 = rng.int(0, nz - ez), y0 = rng.int(0, ny - ey), x0 = rng.int(0, nx - ex);
    idx.length = 0;
    for (let z = z0; z < z0 + ez; z++) for (let y = y0; y < y0 + ey; y++) for (let x = x0; x < x0 + ex; x++) idx.push((z * ny + y) * nx + x);
    for (let i = idx.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      const a = idx[i], b = idx[j];
      const t = img[a]; img[a] = img[b]; img[b] = t;
    }
  }
}

/**
 * The cubic Bézier curve through (0, 0), (x1, y1), (x2, y2), (1, 1) with x1 ≤ x2 and y1 ≤ y2, so that x(t)
 * and y(t) both rise and the curve is the graph of a non-decreasing map [0, 1] → [0, 1]; `flip` mirrors it
 * to y → 1 − y (non-increasing). Returned as a lookup table of `n` values of y at x = i / (n − 1).
 */
export function bezierLut(control: [number, number, number, number], flip: boolean, n = 1024): Float32Array {
  const [x1, x2] = control[0] <= control[2] ? [control[0], control[2]] : [control[2], control[0]];
  const [y1, y2] = control[1] <= control[3] ? [control[1], control[3]] : [control[3], control[1]];
  const samples = 4 * n;
  const xs = new Float64Array(samples + 1), ys = new Float64Array(samples + 1);
  for (let i = 0; i <= samples; i++) {
    const t = i / samples, s = 1 - t;
    xs[i] = 3 * s * s * t * x1 + 3 * s * t * t * x2 + t * t * t;
    ys[i] = 3 * s * s * t * y1 + 3 * s * t * t * y2 + t * t * t;
  }
  const lut = new Float32Array(n);
  let j = 0;
  for (let i = 0; i < n; i++) {
    const x = i / (n - 1);
    while (j < samples - 1 && xs[j + 1] < x) j++;
    const span = xs[j + 1] - xs[j];
    const f = span > 0 ? Math.min(1, Math.max(0, (x - xs[j]) / span)) : 0;
    const y = ys[j] + f * (ys[j + 1] - ys[j]);
    lut[i] = flip ? 1 - y : y;
  }
  return lut;
}

/** Maps every voxel through `lut` (interpolated), after scaling [lo, hi] to [0, 1] and back. */
export function remapIntensity(img: Float32Array, lut: Float32Array, lo: number, hi: number): void {
  const range = hi - lo;
  if (!(range > 0)) return;
  const last = lut.length - 1;
  for (let i = 0; i < img.length; i++) {
    const u = Math.min(1, Math.max(0, (img[i] - lo) / range)) * last;
    const k = Math.min(last - 1, Math.floor(u)), f = u - k;
    img[i] = lo + range * (lut[k] + f * (lut[k + 1] - lut[k]));
  }
}

function fillBox(img: Float32Array, shape: Shape3, box: number[], value: (i: number) => number): void {
  const [, ny, nx] = shape;
  const [z0, y0, x0, ez, ey, ex] = box;
  for (let z = z0; z < z0 + ez; z++) for (let y = y0; y < y0 + ey; y++) {
    const row = (z * ny + y) * nx;
    for (let x = x0; x < x0 + ex; x++) img[row + x] = value(row + x);
  }
}

function randomBox(shape: Shape3, lo: (n: number) => number, hi: (n: number) => number, rng: Rng): number[] {
  const e = shape.map((n) => Math.min(n, Math.max(1, rng.int(Math.max(1, lo(n)), Math.max(1, hi(n))))));
  return [rng.int(0, shape[0] - e[0]), rng.int(0, shape[1] - e[1]), rng.int(0, shape[2] - e[2]), ...e];
}

/** In-painting: up to 5 boxes (edges n/6 … n/3) filled with uniform noise in [lo, hi]. */
export function inPaint(img: Float32Array, shape: Shape3, lo: number, hi: number, rng: Rng): void {
  for (let cnt = 5; cnt > 0 && (cnt === 5 || rng.next() < 0.95); cnt--) {
    fillBox(img, shape, randomBox(shape, (n) => Math.floor(n / 6), (n) => Math.floor(n / 3), rng), () => rng.uniform(lo, hi));
  }
}

/** Out-painting: everything becomes uniform noise in [lo, hi] except up to 5 boxes (edges 3n/7 … 4n/7) that keep the image. */
export function outPaint(img: Float32Array, shape: Shape3, lo: number, hi: number, rng: Rng): void {
  const orig = img.slice();
  for (let i = 0; i < img.length; i++) img[i] = rng.uniform(lo, hi);
  for (let cnt = 5; cnt > 0 && (cnt === 5 || rng.next() < 0.95); cnt--) {
    fillBox(img, shape, randomBox(shape, (n) => Math.floor((3 * n) / 7), (n) => Math.floor((4 * n) / 7), rng), (i) => orig[i]);
  }
}

export interface GenesisOptions {
  localRate: number;
  nonlinearRate: number;
  paintRate: number;
  outpaintRate: number;
}

/** The Models Genesis distortion of one crop (in place), with the paper's probabilities. */
export function genesisTransform(img: Float32Array, shape: Shape3, rng: Rng, o: GenesisOptions): void {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < img.length; i++) { const v = img[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
  if (!(hi > lo)) return;
  // the paper's 10,000 windows per 64×64×32 crop, scaled to this crop's size
  if (rng.next() < o.localRate) localShuffle(img, shape, Math.round((10_000 * img.length) / (64 * 64 * 32)), rng);
  if (rng.next() < o.nonlinearRate) remapIntensity(img, bezierLut([rng.next(), rng.next(), rng.next(), rng.next()], rng.next() < 0.5), lo, hi);
  if (rng.next() < o.paintRate) {
    if (rng.next() < o.outpaintRate) outPaint(img, shape, lo, hi, rng);
    else inPaint(img, shape, lo, hi, rng);
  }
}

const genesis: SslMethod = {
  name: "genesis",
  describe: "restoration (Models Genesis): local shuffling, Bézier intensity remapping, in-/out-painting; restore with MSE",
  views: 1,
  augment: null,
  trains: ["encoder", "decoder"],
  defaults: { localRate: 0.5, nonlinearRate: 0.9, paintRate: 0.9, outpaintRate: 0.8 },
  create(net: SegNetwork, o: Record<string, number>) {
    const heads = new ReconstructionHead(net.config.features[0]);
    const opts = o as unknown as GenesisOptions;
    return {
      heads,
      loss(batch, rng) {
        const [b, d, h, w] = batch.shape;
        const n = d * h * w;
        const distorted = batch.host.slice();
        for (let i = 0; i < b; i++) genesisTransform(distorted.subarray(i * n, (i + 1) * n), [d, h, w], rng, opts);
        const x = fromBytes(new Uint8Array(distorted.buffer), [b, 1, d, h, w], "float32").to(batch.images.device);
        const pred = heads.forward(decoderOutput(net, x)).float();
        return mseLoss(pred, batch.images);
      },
    };
  },
};

export default genesis;
