// Normalisation against a slow reference (full sort, numpy-style percentiles), and patch sampling's geometry.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Vec3 } from "../../src/io/index.ts";
import { cropPatch, forcedForeground, foregroundLocations, normalizationOf, normalize, patchStart, percentileSorted, stream } from "../../src/data/index.ts";

function slowNormalize(x: number[]): number[] {
  const s = [...x].sort((a, b) => a - b);
  const pct = (p: number) => {
    const r = (p / 100) * (s.length - 1), i = Math.floor(r);
    return i + 1 < s.length ? s[i] + (r - i) * (s[i + 1] - s[i]) : s[i];
  };
  const lo = pct(0.5), hi = pct(99.5);
  const c = x.map((v) => Math.min(hi, Math.max(lo, v)));
  const mean = c.reduce((a, b) => a + b, 0) / c.length;
  const sd = Math.sqrt(c.reduce((a, b) => a + (b - mean) ** 2, 0) / c.length);
  return c.map((v) => (v - mean) / Math.max(sd, 1e-8));
}

test("normalize: percentile clip + z-score equals the slow reference", () => {
  const rng = stream(0, "normalize");
  // uint16 with a large offset and a few bright outliers, as LSM volumes have
  const data = Uint16Array.from({ length: 3000 }, () => (rng.next() < 0.01 ? 60000 : 1000 + Math.round(50 * rng.normal())));
  const out = normalize(data);
  const want = slowNormalize(Array.from(data));
  out.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-4, `${i}: ${v} vs ${want[i]}`));
  assert.deepEqual(normalize(new Float32Array(10).fill(3)), new Float32Array(10));
  assert.equal(percentileSorted([1, 2, 3, 4], 50), 2.5);
});

test("normalize: percentiles from a subsample are deterministic and close to the full ones", () => {
  const rng = stream(0, "big");
  const data = Float32Array.from({ length: 400_000 }, () => rng.normal());
  const a = normalizationOf(data), b = normalizationOf(data);
  assert.deepEqual(a, b);
  const full = normalizationOf(data, { maxSamples: data.length });
  assert.ok(Math.abs(a.lo - full.lo) < 0.05 && Math.abs(a.hi - full.hi) < 0.05, JSON.stringify([a, full]));
});

test("sampling: nnU-Net's oversampled slots, foreground subsample, patch placement", () => {
  assert.deepEqual([0, 1].map((i) => forcedForeground(i, 2, 1 / 3)), [false, true]);
  assert.deepEqual([0, 1, 2].map((i) => forcedForeground(i, 3, 1 / 3)), [false, false, true]);
  assert.deepEqual([0, 1].map((i) => forcedForeground(i, 2, 0)), [false, false]);
  const label = new Uint8Array(100);
  for (let i = 0; i < 100; i += 3) label[i] = 1;
  assert.deepEqual(Array.from(foregroundLocations(label)), Array.from({ length: 34 }, (_, k) => 3 * k));
  assert.deepEqual(Array.from(foregroundLocations(label, 10)), [0, 12, 24, 36, 48, 60, 72, 84, 96]);
  const shape: Vec3 = [10, 12, 14], patch: Vec3 = [4, 16, 6];
  const rng = stream(0, "place");
  for (let t = 0; t < 200; t++) {
    const z = rng.int(0, 9), y = rng.int(0, 11), x = rng.int(0, 13);
    const s = patchStart(shape, patch, rng, (z * 12 + y) * 14 + x);
    // the voxel is inside the patch, the patch inside the volume (or around it where larger)
    assert.ok(z >= s[0] && z < s[0] + 4 && y >= s[1] && y < s[1] + 16 && x >= s[2] && x < s[2] + 6);
    assert.ok(s[0] >= 0 && s[0] <= 6 && s[1] >= -4 && s[1] <= 0 && s[2] >= 0 && s[2] <= 8);
    const u = patchStart(shape, patch, rng);
    assert.ok(u[0] >= 0 && u[0] <= 6 && u[1] >= -4 && u[1] <= 0 && u[2] >= 0 && u[2] <= 8);
  }
});

test("cropPatch pads outside the volume", () => {
  const shape: Vec3 = [3, 4, 5];
  const image = Float32Array.from({ length: 60 }, (_, i) => i);
  const label = Uint8Array.from({ length: 60 }, (_, i) => i % 2);
  const start: Vec3 = [-1, 2, 3], size: Vec3 = [3, 3, 4];
  const p = cropPatch({ image, label, shape }, start, size, -9);
  for (let z = 0; z < 3; z++) for (let y = 0; y < 3; y++) for (let x = 0; x < 4; x++) {
    const sz = z + start[0], sy = y + start[1], sx = x + start[2];
    const inside = sz >= 0 && sz < 3 && sy >= 0 && sy < 4 && sx >= 0 && sx < 5;
    const i = (z * 3 + y) * 4 + x, j = (sz * 4 + sy) * 5 + sx;
    assert.equal(p.image[i], inside ? image[j] : -9);
    assert.equal(p.label![i], inside ? label[j] : 0);
  }
});
