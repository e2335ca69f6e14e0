// Curation's statistics against known answers and slow, obvious references on small arrays.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  cleanMask, downsample2, localContrastFraction, nearDuplicate, noiseSigma, otsuBin, percentiles, signatureOf,
  thresholdOf, tileStats, triangleBin, type Shape3,
} from "../../src/curate/stats.ts";
import { tissueFraction } from "../../src/curate/overview.ts";
import { gridStarts } from "../../src/curate/tiles.ts";
import { Rng } from "../../src/synth/rng.ts";

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

/** numpy.percentile's default on a sorted copy: the slow reference. */
function refPercentile(values: ArrayLike<number>, p: number): number {
  const s = Array.from(values).sort((a, b) => a - b);
  const r = (p / 100) * (s.length - 1), i = Math.floor(r);
  return i + 1 < s.length ? s[i] + (r - i) * (s[i + 1] - s[i]) : s[i];
}

function randomU16(n: number, seed: string, scale = 1000): Uint16Array {
  const rng = new Rng(seed);
  return Uint16Array.from({ length: n }, () => Math.floor(rng.next() * scale));
}

test("Otsu: two clusters {1,2} and {6,7} split at the first bin of the upper one's gap (known answer)", () => {
  // between-class variance is the same for every split in the gap 3…6; the first maximum is kept
  assert.equal(otsuBin([0, 10, 10, 0, 0, 0, 10, 10]), 3);
  // unequal clusters: 30 at 2, 10 at 10 → the best split puts 2 below and 10 above
  const h = new Array(12).fill(0); h[2] = 30; h[10] = 10;
  assert.equal(otsuBin(h), 3);
  const t = thresholdOf(Float32Array.from([100, 101, 99, 100, 300, 305, 298, 302]));
  assert.ok(t > 101 && t < 298, `threshold ${t}`);
});

test("triangle: a peak with a long linear tail is cut where the tail bends away from the peak–end line", () => {
  // peak at 1, then a tail falling linearly to 0 at bin 20 except a dip at bins 3–5 (the knee)
  const h = [0, 100, 40, 5, 5, 5, 10, 10, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1, 1, 1];
  const t = triangleBin(h);
  assert.ok(t >= 3 && t <= 6, `triangle bin ${t}`);
});

test("percentiles: exact against numpy's definition, uint16 by counting and float32 by sorting", () => {
  const u = randomU16(5001, "pct");
  const f = Float32Array.from(u, (v) => v / 7 - 3);
  const ps = [0, 0.5, 1, 25, 50, 99, 99.5, 99.9, 100];
  percentiles(u, ps).forEach((v, i) => close(v, refPercentile(u, ps[i])));
  percentiles(f, ps).forEach((v, i) => close(v, refPercentile(f, ps[i])));
  assert.deepEqual(percentiles(Uint16Array.from([7]), [0, 50, 100]), [7, 7, 7]);
});

test("noise σ: the MAD of x-differences (slow reference) and ≈ σ on Gaussian noise", () => {
  const shape: Shape3 = [8, 12, 20];
  const rng = new Rng("noise");
  const data = Uint16Array.from({ length: 8 * 12 * 20 }, () => Math.round(1000 + 10 * rng.normal()));
  const diffs: number[] = [];
  for (let r = 0; r < 8 * 12; r++) for (let x = 0; x + 1 < 20; x++) diffs.push(Math.abs(data[r * 20 + x + 1] - data[r * 20 + x]));
  close(noiseSigma(data, shape), refPercentile(diffs, 50) / (0.6745 * Math.SQRT2));
  close(noiseSigma(Float32Array.from(data), shape), noiseSigma(data, shape));
  assert.ok(Math.abs(noiseSigma(data, shape) - 10) < 1, `σ ${noiseSigma(data, shape)}`);
});

test("local contrast and 2× downsampling against triple-loop references", () => {
  const shape: Shape3 = [7, 9, 10];
  const rng = new Rng("contrast");
  const data = Float32Array.from({ length: 7 * 9 * 10 }, () => rng.next() * 100);
  const at = (z: number, y: number, x: number) => data[(z * 9 + y) * 10 + x];
  for (const t of [0, 5, 20]) {
    let above = 0, n = 0;
    for (let z = 1; z < 6; z++) for (let y = 1; y < 8; y++) for (let x = 1; x < 9; x++) {
      let s = 0;
      for (let a = -1; a <= 1; a++) for (let b = -1; b <= 1; b++) for (let c = -1; c <= 1; c++) s += at(z + a, y + b, x + c);
      if (at(z, y, x) - s / 27 > t) above++;
      n++;
    }
    close(localContrastFraction(data, shape, t), above / n, 1e-12);
  }
  const half = downsample2(data, shape);
  assert.deepEqual(half.shape, [3, 4, 5]);
  let s = 0;
  for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) for (let c = 0; c < 2; c++) s += at(2 + a, 4 + b, 6 + c);
  close(half.data[(1 * 4 + 2) * 5 + 3], s / 8, 1e-6);
});

test("tile statistics: saturation, entropy, mean and std against references; a flat tile has no structure", () => {
  const shape: Shape3 = [6, 6, 6];
  const data = randomU16(216, "tile", 200);
  for (let i = 0; i < 216; i += 9) data[i] = 65535;
  const s = tileStats(data, shape, { tissue: 0.75, lo: 0, hi: 200, saturationValue: 65535 });
  close(s.saturation, 24 / 216);
  close(s.mean, data.reduce((a, b) => a + b, 0) / 216);
  const bins = new Array(64).fill(0);
  for (const v of data) bins[Math.min(63, Math.max(0, Math.floor((v * 64) / 200)))]++;
  close(s.entropy, -bins.filter((c) => c > 0).reduce((a, c) => a + (c / 216) * Math.log2(c / 216), 0));
  assert.equal(s.tissue, 0.75);
  const flat = tileStats(new Uint16Array(216).fill(500), shape, { tissue: 1, lo: 0, hi: 1000, saturationValue: 65535 });
  assert.equal(flat.structure, 0);
  assert.equal(flat.entropy, 0);
});

test("signatures: near-duplicates are the same pattern at the same level, not a shifted or different one", () => {
  const shape: Shape3 = [8, 8, 8];
  const a = randomU16(512, "sigA");
  const b = randomU16(512, "sigB");
  const sa = signatureOf(a, shape, 500, 290), sb = signatureOf(b, shape, 500, 290);
  assert.equal(sa.length, 64);
  assert.ok(nearDuplicate(sa, [...sa]));
  assert.ok(!nearDuplicate(sa, sb));
  assert.ok(!nearDuplicate(sa, sa.map((v) => v + 1)), "a brighter copy is not a duplicate");
});

test("morphological clean-up removes a speck and fills a one-voxel hole; tissue fraction matches counting", () => {
  const shape: Shape3 = [11, 11, 11];
  const at = (z: number, y: number, x: number) => (z * 11 + y) * 11 + x;
  const m = new Uint8Array(11 ** 3);
  for (let z = 2; z < 9; z++) for (let y = 2; y < 9; y++) for (let x = 2; x < 9; x++) m[at(z, y, x)] = 1;
  m[at(5, 5, 5)] = 0; // hole
  m[at(0, 0, 10)] = 1; // speck
  const c = cleanMask(m, shape, 1);
  assert.equal(c[at(5, 5, 5)], 1);
  assert.equal(c[at(0, 0, 10)], 0);
  assert.equal(c[at(2, 2, 2)], 1, "the cube's corner survives");
  // tissue fraction with factor 3: count at full resolution
  const ov = { factor: 3, shape: [3, 3, 3] as Shape3, tissue: Uint8Array.from({ length: 27 }, (_, i) => (i % 4 === 0 ? 1 : 0)) };
  const start: Shape3 = [1, 2, 0], size: Shape3 = [5, 4, 7];
  let inside = 0;
  for (let z = 0; z < 5; z++) for (let y = 0; y < 4; y++) for (let x = 0; x < 7; x++) {
    const k = (Math.floor((1 + z) / 3) * 3 + Math.floor((2 + y) / 3)) * 3 + Math.floor(x / 3);
    inside += ov.tissue[k];
  }
  close(tissueFraction(ov, start, size), inside / 140);
  assert.deepEqual(gridStarts(80, 16, 16), [0, 16, 32, 48, 64]);
  assert.deepEqual(gridStarts(40, 16, 10), [0, 10, 20]);
  assert.deepEqual(gridStarts(10, 16, 16), []);
});
