// Each augmentation against a known answer or a slow, obvious reference written here.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Vec3 } from "../../src/io/index.ts";
import {
  DEFAULT_AUGMENT, NO_AUGMENT, type Sample, augment, augmentConfig, blurAxis, brightness, contrast, cropPatch, depthAttenuation,
  gamma, gaussianBlur, gaussianKernel, gaussianNoise, mirror, reflectIndex, rotationMatrix, simulateLowResolution, spatialTransform,
  stream, stripes, twoViews,
} from "../../src/data/index.ts";

function randomSample(shape: Vec3, key: string, withLabel = true): Sample {
  const rng = stream(0, key);
  const n = shape[0] * shape[1] * shape[2];
  const image = Float32Array.from({ length: n }, () => rng.normal());
  const label = withLabel ? Uint8Array.from({ length: n }, () => (rng.next() < 0.3 ? 1 : 0)) : null;
  return { image, label, shape };
}
const idx = (s: Vec3, z: number, y: number, x: number) => (z * s[1] + y) * s[2] + x;
const sum = (a: Float32Array) => a.reduce((s, v) => s + v, 0);

test("identity rotation is an exact copy; a whole-volume resampling at an integer offset equals the crop", () => {
  const v = randomSample([6, 7, 8], "identity");
  const out = spatialTransform(v, rotationMatrix([0, 0, 0]));
  assert.deepEqual(out.image, v.image);
  assert.deepEqual(out.label, v.label);
  const start: Vec3 = [-1, 2, 3], size: Vec3 = [4, 4, 6];
  const center = start.map((s, a) => s + (size[a] - 1) / 2) as Vec3;
  const viaTransform = spatialTransform(v, rotationMatrix([0, 0, 0]), { outShape: size, center, padValue: -7 });
  const viaCrop = cropPatch(v, start, size, -7);
  assert.deepEqual(viaTransform, viaCrop);
});

test("90° rotations permute voxels exactly", () => {
  const s: Vec3 = [6, 6, 5];
  const v = randomSample(s, "rot90");
  // about x: turns (z, y); output (z, y, x) reads input (n−1−y, z, x)
  const out = spatialTransform(v, rotationMatrix([0, 0, Math.PI / 2]));
  for (let z = 0; z < 6; z++) for (let y = 0; y < 6; y++) for (let x = 0; x < 5; x++) {
    assert.equal(out.image[idx(s, z, y, x)], v.image[idx(s, 5 - y, z, x)]);
    assert.equal(out.label![idx(s, z, y, x)], v.label![idx(s, 5 - y, z, x)]);
  }
  // about z: turns (y, x)
  const s2: Vec3 = [3, 5, 5];
  const w = randomSample(s2, "rot90z");
  const m = rotationMatrix([Math.PI / 2, 0, 0]);
  assert.deepEqual(m, [1, 0, 0, 0, 0, -1, 0, 1, 0]);
  const out2 = spatialTransform(w, m);
  for (let z = 0; z < 3; z++) for (let y = 0; y < 5; y++) for (let x = 0; x < 5; x++) {
    // in_y = c − (x − c) = 4 − x, in_x = c + (y − c) = y
    assert.equal(out2.image[idx(s2, z, y, x)], w.image[idx(s2, z, 4 - x, y)]);
  }
});

test("rotated and scaled labels stay binary and the image interpolates within the input's range", () => {
  const v = randomSample([10, 12, 14], "rotscale");
  const m = rotationMatrix([0.3, -0.4, 0.5]).map((x) => x * 1.3);
  const out = spatialTransform(v, m, { outShape: [8, 8, 8], padValue: -10 });
  assert.ok(out.label!.every((x) => x === 0 || x === 1));
  let lo = Infinity, hi = -Infinity;
  for (const x of v.image) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
  assert.ok(out.image.every((x) => x >= -10 - 1e-6 && x <= hi + 1e-6));
  // trilinear at a half-voxel shift is the mean of the two neighbours
  const shift = spatialTransform(v, rotationMatrix([0, 0, 0]), { outShape: [1, 1, 1], center: [4, 5, 6.5] });
  assert.ok(Math.abs(shift.image[0] - (v.image[idx(v.shape, 4, 5, 6)] + v.image[idx(v.shape, 4, 5, 7)]) / 2) < 1e-6);
});

test("mirroring reverses indices along the chosen axes", () => {
  const s: Vec3 = [3, 4, 5];
  const v = randomSample(s, "mirror");
  for (const axes of [[true, false, false], [false, true, true], [true, true, true]]) {
    const out = mirror(v, axes);
    for (let z = 0; z < 3; z++) for (let y = 0; y < 4; y++) for (let x = 0; x < 5; x++) {
      const src = idx(s, axes[0] ? 2 - z : z, axes[1] ? 3 - y : y, axes[2] ? 4 - x : x);
      assert.equal(out.image[idx(s, z, y, x)], v.image[src]);
      assert.equal(out.label![idx(s, z, y, x)], v.label![src]);
    }
  }
});

test("brightness, contrast and gamma follow their formulas", () => {
  const v = randomSample([4, 5, 6], "intensity");
  const x = Array.from(v.image);
  const n = x.length;
  const b = brightness(v, 1.2);
  x.forEach((xi, i) => assert.ok(Math.abs(b.image[i] - xi * 1.2) < 1e-6));
  assert.equal(b.label, v.label);
  const mean = x.reduce((a, c) => a + c, 0) / n, min = Math.min(...x), max = Math.max(...x);
  const c = contrast(v, 1.25);
  x.forEach((xi, i) => assert.ok(Math.abs(c.image[i] - Math.min(max, Math.max(min, (xi - mean) * 1.25 + mean))) < 1e-5));
  for (const invert of [false, true]) {
    const g = gamma(v, 0.7, invert);
    const y = x.map((t) => (invert ? -t : t));
    const ymin = Math.min(...y), range = Math.max(...y) - ymin;
    const m0 = y.reduce((a, t) => a + t, 0) / n, sd0 = Math.sqrt(y.reduce((a, t) => a + (t - m0) ** 2, 0) / n);
    const z = y.map((t) => ((t - ymin) / (range + 1e-7)) ** 0.7 * range + ymin);
    const m1 = z.reduce((a, t) => a + t, 0) / n, sd1 = Math.sqrt(z.reduce((a, t) => a + (t - m1) ** 2, 0) / n);
    z.forEach((t, i) => {
      const want = ((t - m1) / (sd1 + 1e-8)) * sd0 + m0;
      assert.ok(Math.abs(g.image[i] - (invert ? -want : want)) < 1e-4, `${invert} ${i}`);
    });
  }
});

test("Gaussian blur conserves the sum and matches a naive 3D convolution with reflected edges", () => {
  const s: Vec3 = [7, 8, 9];
  const v = randomSample(s, "blur", false);
  const sigma: Vec3 = [0.8, 1.1, 0.6];
  const out = gaussianBlur(v, sigma);
  assert.ok(Math.abs(sum(out.image) - sum(v.image)) < 1e-3, `${sum(out.image)} vs ${sum(v.image)}`);
  const k = sigma.map(gaussianKernel);
  const r = k.map((w) => (w.length - 1) / 2);
  for (let z = 0; z < s[0]; z++) for (let y = 0; y < s[1]; y++) for (let x = 0; x < s[2]; x++) {
    let acc = 0;
    for (let a = -r[0]; a <= r[0]; a++) for (let b = -r[1]; b <= r[1]; b++) for (let c = -r[2]; c <= r[2]; c++) {
      acc += k[0][a + r[0]] * k[1][b + r[1]] * k[2][c + r[2]]
        * v.image[idx(s, reflectIndex(z + a, s[0]), reflectIndex(y + b, s[1]), reflectIndex(x + c, s[2]))];
    }
    assert.ok(Math.abs(out.image[idx(s, z, y, x)] - acc) < 1e-5);
  }
  // a kernel wider than the axis still conserves the sum (reflections of reflections)
  const wide = blurAxis(v.image, s, 0, 3);
  assert.ok(Math.abs(sum(wide) - sum(v.image)) < 1e-3);
  assert.deepEqual([reflectIndex(-1, 4), reflectIndex(-2, 4), reflectIndex(4, 4), reflectIndex(9, 4)], [0, 1, 3, 1]);
});

test("Gaussian noise has the requested statistics", () => {
  const zeros: Sample = { image: new Float32Array(40_000), label: null, shape: [40, 40, 25] };
  const out = gaussianNoise(zeros, 0.3, stream(1, "noise"));
  const mean = sum(out.image) / out.image.length;
  const sd = Math.sqrt(out.image.reduce((a, x) => a + (x - mean) ** 2, 0) / out.image.length);
  assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
  assert.ok(Math.abs(sd - 0.3) < 0.01, `sd ${sd}`);
});

test("simulated low resolution: zoom 1 is the identity, a constant stays constant, detail is lost", () => {
  const v = randomSample([8, 8, 8], "lowres", false);
  assert.deepEqual(simulateLowResolution(v, [1, 1, 1]).image, v.image);
  const c: Sample = { image: new Float32Array(512).fill(2.5), label: null, shape: [8, 8, 8] };
  assert.ok(simulateLowResolution(c, [0.5, 0.5, 0.5]).image.every((x) => Math.abs(x - 2.5) < 1e-6));
  const low = simulateLowResolution(v, [0.5, 0.5, 0.5]);
  const energy = (a: Float32Array) => a.reduce((s, x) => s + x * x, 0);
  assert.ok(energy(low.image) < energy(v.image));
});

test("light-sheet artefacts: depth attenuation and stripes scale the intensity above the minimum", () => {
  const s: Vec3 = [5, 4, 3];
  const v = randomSample(s, "lsm", false);
  const floor = Math.min(...v.image);
  const d = depthAttenuation(v, 0.2);
  for (let z = 0; z < 5; z++) for (let i = 0; i < 12; i++) {
    const j = z * 12 + i;
    assert.ok(Math.abs(d.image[j] - (floor + (v.image[j] - floor) * Math.exp(-0.2 * z))) < 1e-5);
  }
  const fromEnd = depthAttenuation(v, 0.2, true);
  assert.ok(Math.abs(fromEnd.image[4 * 12] - v.image[4 * 12]) < 1e-6);
  const profile = Float32Array.from([1, 0.5, 0.9]);
  const st = stripes(v, 2, profile);
  for (let i = 0; i < v.image.length; i++) assert.ok(Math.abs(st.image[i] - (floor + (v.image[i] - floor) * profile[i % 3])) < 1e-5);
  assert.throws(() => stripes(v, 1, profile), /profile has 3 factors, axis 1 has 4 voxels/);
});

test("augment: deterministic for a generator state, a plain crop without augmentation, labels binary, two views differ", () => {
  const v = randomSample([20, 20, 20], "augment");
  const heavy = augmentConfig({
    pRotation: 1, pScale: 1, pNoise: 1, pBlur: 1, pBrightness: 1, pContrast: 1, pLowRes: 1, pGammaInvert: 1, pGamma: 1,
    pStripes: 1, pDepthAttenuation: 1, pAnisotropicBlur: 1,
  });
  const opts = { patchSize: [8, 10, 12] as Vec3, center: [9.5, 9.5, 9.5] as Vec3, padValue: -3 };
  const a = augment(v, heavy, stream(4, "a"), opts);
  const b = augment(v, heavy, stream(4, "a"), opts);
  assert.deepEqual(a, b);
  assert.deepEqual(a.shape, [8, 10, 12]);
  assert.ok(a.label!.every((x) => x === 0 || x === 1));
  assert.ok(a.image.every(Number.isFinite));
  const plain = augment(v, NO_AUGMENT, stream(4, "a"), { ...opts, center: [9.5, 9.5, 9.5] });
  assert.deepEqual(plain, cropPatch(v, [6, 5, 4], [8, 10, 12], -3));
  const [v1, v2] = twoViews(v, DEFAULT_AUGMENT, stream(4, "views"), opts);
  assert.notDeepEqual(v1.image, v2.image);
  const [w1, w2] = twoViews(v, DEFAULT_AUGMENT, stream(4, "views"), opts);
  assert.deepEqual([w1, w2], [v1, v2]);
});
