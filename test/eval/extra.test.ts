// The extra metrics (not the 2026 challenge's): Betti numbers and HD95 on shapes with known answers,
// against slow, obvious references (V − E + F − C by enumerating the cube complex, brute-force nearest
// surface voxels), and against scipy + scikit-image (fixtures/eval/make_extra_fixtures.py).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { Shape3 } from "../../src/eval/components.ts";
import { evaluateFolder } from "../../src/eval/evaluate.ts";
import { extraMetrics } from "../../src/eval/metrics.ts";
import { hausdorff95, percentile, squaredDistanceTransform, surfaceVoxels } from "../../src/eval/surface.ts";
import { bettiNumbers, eulerCharacteristic } from "../../src/eval/topology.ts";
import { readVolume } from "../../src/io/index.ts";

function volume(shape: Shape3, inside: (z: number, y: number, x: number) => boolean): Uint8Array {
  const [nz, ny, nx] = shape;
  const m = new Uint8Array(nz * ny * nx);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) if (inside(z, y, x)) m[(z * ny + y) * nx + x] = 1;
  return m;
}
const inBox = (v: number, lo: number, hi: number) => v >= lo && v < hi;
const S: Shape3 = [16, 18, 20];

test("Betti numbers: cube, torus, hollow sphere, two rings, a cube with a tunnel, nothing", () => {
  const betti = (m: Uint8Array) => { const b = bettiNumbers(m, S); return [b.b0, b.b1, b.b2]; };
  assert.deepEqual(betti(volume(S, (z, y, x) => inBox(z, 3, 9) && inBox(y, 3, 9) && inBox(x, 3, 9))), [1, 0, 0], "solid cube");
  // a digital torus: the voxels within 1.6 of a circle of radius 5 in the plane z = 8
  const torus = volume(S, (z, y, x) => (Math.hypot(y - 9, x - 10) - 5) ** 2 + (z - 8) ** 2 <= 1.6 ** 2);
  assert.deepEqual(betti(torus), [1, 1, 0], "torus");
  const hollow = volume(S, (z, y, x) => { const r = Math.hypot(z - 8, y - 9, x - 10); return r <= 6.5 && r > 4; });
  assert.deepEqual(betti(hollow), [1, 0, 1], "hollow sphere");
  // two square rings one voxel thick, in different planes, not touching
  const ring = (z0: number, y: number, x: number, z: number) => z === z0 && inBox(y, 2, 8) && inBox(x, 2, 8) && !(inBox(y, 3, 7) && inBox(x, 3, 7));
  assert.deepEqual(betti(volume(S, (z, y, x) => ring(3, y, x, z) || ring(6, y - 8, x - 10, z))), [2, 2, 0], "two disjoint rings");
  assert.deepEqual(betti(volume(S, (z, y, x) => inBox(z, 2, 12) && inBox(y, 2, 12) && inBox(x, 2, 12) && !(inBox(y, 6, 8) && inBox(x, 6, 8)))), [1, 1, 0], "cube with a tunnel");
  // a tunnel ending inside (a blind hole) is no tunnel
  assert.deepEqual(betti(volume(S, (z, y, x) => inBox(z, 2, 12) && inBox(y, 2, 12) && inBox(x, 2, 12) && !(z >= 5 && inBox(y, 6, 8) && inBox(x, 6, 8)))), [1, 0, 0], "blind hole");
  // corner contact joins components (26-connectivity) and a diagonal ring of corner-touching voxels is a loop
  assert.deepEqual(betti(volume(S, (z, y, x) => (z === 1 && y === 1 && x === 1) || (z === 2 && y === 2 && x === 2))), [1, 0, 0], "corner contact");
  assert.deepEqual(betti(new Uint8Array(S[0] * S[1] * S[2])), [0, 0, 0], "empty");
  // foreground touching the volume's border: the outside is still background
  assert.deepEqual(betti(volume(S, (z, y, x) => inBox(y, 0, 18) && inBox(x, 0, 20) && !(inBox(y, 5, 9) && inBox(x, 5, 9)) && z < 16)), [1, 1, 0], "slab with a hole through the whole volume");
});

/** χ = V − E + F − C by listing every vertex, edge, face and cube of the closed voxel cubes. */
function referenceEuler(m: Uint8Array, shape: Shape3): number {
  const [nz, ny, nx] = shape;
  const on = (z: number, y: number, x: number) => z >= 0 && y >= 0 && x >= 0 && z < nz && y < ny && x < nx && m[(z * ny + y) * nx + x] === 1;
  // an element of the lattice is (2z', 2y', 2x') in doubled coordinates: even = on a lattice plane, odd = inside a voxel
  let chi = 0;
  for (let a = 0; a <= 2 * nz; a++) for (let b = 0; b <= 2 * ny; b++) for (let c = 0; c <= 2 * nx; c++) {
    const voxels = (v: number) => (v % 2 === 1 ? [(v - 1) / 2] : [v / 2 - 1, v / 2]);
    let present = false;
    for (const z of voxels(a)) for (const y of voxels(b)) for (const x of voxels(c)) present ||= on(z, y, x);
    if (present) chi += (-1) ** ((a % 2) + (b % 2) + (c % 2)); // dimension = number of odd coordinates
  }
  return chi;
}

test("Euler characteristic equals V − E + F − C counted element by element, on random volumes", () => {
  let seed = 99;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const shape: Shape3 = [7, 8, 9];
  for (let trial = 0; trial < 10; trial++) {
    const density = 0.15 + 0.07 * trial;
    const m = Uint8Array.from({ length: 7 * 8 * 9 }, () => (rand() < density ? 1 : 0));
    assert.equal(eulerCharacteristic(m, shape), referenceEuler(m, shape), `trial ${trial}`);
  }
});

test("distance transform equals the brute-force nearest site, with anisotropic spacing", () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const shape: Shape3 = [6, 9, 11];
  const [nz, ny, nx] = shape;
  for (const spacing of [[1, 1, 1], [2, 1, 0.5], [0.3, 1.7, 1.1]] as Array<[number, number, number]>) {
    const sites = Uint8Array.from({ length: nz * ny * nx }, () => (rand() < 0.03 ? 1 : 0));
    const d2 = squaredDistanceTransform(sites, shape, spacing);
    for (let i = 0; i < sites.length; i++) {
      let best = Infinity;
      for (let j = 0; j < sites.length; j++) {
        if (!sites[j]) continue;
        const dz = (Math.floor(i / (ny * nx)) - Math.floor(j / (ny * nx))) * spacing[0];
        const dy = ((Math.floor(i / nx) % ny) - (Math.floor(j / nx) % ny)) * spacing[1];
        const dx = ((i % nx) - (j % nx)) * spacing[2];
        best = Math.min(best, dz * dz + dy * dy + dx * dx);
      }
      assert.ok(Math.abs(d2[i] - best) <= 1e-9 * Math.max(1, best), `voxel ${i}, spacing ${spacing}: ${d2[i]} vs ${best}`);
    }
  }
  assert.ok(squaredDistanceTransform(new Uint8Array(8), [2, 2, 2]).every((v) => v === Infinity), "no sites: infinite");
});

test("percentile is numpy's linear interpolation", () => {
  const xs = () => Float64Array.from({ length: 20 }, (_, i) => 20 - i); // 20..1, sorted inside
  assert.equal(percentile(xs(), 95), 19.05); // numpy.percentile(range(1, 21), 95)
  assert.equal(percentile(xs(), 50), 10.5);
  assert.equal(percentile(Float64Array.of(3), 95), 3);
  assert.ok(Number.isNaN(percentile(new Float64Array(0), 95)));
});

test("HD95 of two cubes shifted along x, by hand; anisotropic spacing; empty masks", () => {
  const shape: Shape3 = [12, 12, 20];
  const a = volume(shape, (z, y, x) => inBox(z, 2, 8) && inBox(y, 2, 8) && inBox(x, 2, 8));
  const b = volume(shape, (z, y, x) => inBox(z, 2, 8) && inBox(y, 2, 8) && inBox(x, 5, 11));
  // each 6³ cube has 6³ − 4³ = 152 surface voxels; the 36 of its far face (x = 2 for a) are 3 voxels from
  // the other's nearest surface voxel (x = 5, same y, z) and none is farther: the 95th percentile
  // (index 0.95 · 151 = 143.45 of 152 sorted, past the first 116) is 3 in both directions
  assert.equal(surfaceVoxels(a, shape).reduce((s, v) => s + v, 0), 152);
  const r = hausdorff95(a, b, shape);
  assert.deepEqual([r.hd95Voxels, r.hd95Um, r.predToGtUm, r.gtToPredUm, r.predSurfaceVoxels], [3, 3, 3, 3, 152]);
  // spacing z, y, x = 2, 1, 0.5 µm: the shift is 3 × 0.5 µm, in voxels still 3
  const an = hausdorff95(a, b, shape, [2, 1, 0.5]);
  assert.deepEqual([an.hd95Voxels, an.hd95Um], [3, 1.5]);
  // isotropic spacing scales
  assert.equal(hausdorff95(a, b, shape, [0.5, 0.5, 0.5]).hd95Um, 1.5);
  assert.equal(hausdorff95(a, a, shape).hd95Voxels, 0);
  const empty = new Uint8Array(a.length);
  for (const [p, g] of [[empty, a], [a, empty], [empty, empty]]) assert.ok(Number.isNaN(hausdorff95(p, g, shape).hd95Voxels), "an empty mask gives NaN");
  // a mask touching the volume's border: its border voxels are surface (outside is background)
  const full = volume(shape, () => true);
  assert.equal(surfaceVoxels(full, shape).reduce((s, v) => s + v, 0), 12 * 12 * 20 - 10 * 10 * 18);
});

// ---------------------------------------------------------------- scipy + scikit-image

interface BettiJson { b0: number; b1: number; b2: number; euler: number }
const fixtures = join(import.meta.dirname, "../../fixtures/eval");
const expected = JSON.parse(readFileSync(join(fixtures, "extra_expected.json"), "utf8")) as {
  anisotropic_spacing_um: [number, number, number];
  cases: Record<string, {
    betti_pred: BettiJson; betti_gt: BettiJson; betti0_error: number; betti1_error: number;
    hd95_voxels: number | null; hd95_anisotropic_um: number | null;
  }>;
  skeleton_masks: Record<string, BettiJson>;
};
const close = (got: number, want: number | null, what: string) => {
  if (want === null) assert.ok(Number.isNaN(got), `${what}: ${got}, expected NaN`);
  else assert.ok(Math.abs(got - want) <= 1e-12, `${what}: ${got}, expected ${want}`);
};

for (const [name, want] of Object.entries(expected.cases)) {
  test(`extra metrics of fixture ${name} equal scipy's and scikit-image's`, async () => {
    const [pred, gt] = await Promise.all([readVolume(join(fixtures, "metrics", "pred", `${name}.nii.gz`)), readVolume(join(fixtures, "metrics", "gt", `${name}.nii.gz`))]);
    const e = extraMetrics(pred.data, gt.data, gt.shape);
    assert.deepEqual(e.details.bettiPred, want.betti_pred);
    assert.deepEqual(e.details.bettiGt, want.betti_gt);
    assert.deepEqual([e.betti0_error, e.betti1_error], [want.betti0_error, want.betti1_error]);
    close(e.hd95_voxels, want.hd95_voxels, "hd95_voxels");
    close(e.hd95_um, want.hd95_voxels, "hd95_um at 1 µm");
    const an = extraMetrics(pred.data, gt.data, gt.shape, expected.anisotropic_spacing_um);
    close(an.hd95_um, want.hd95_anisotropic_um, "hd95_um, anisotropic");
    close(an.hd95_voxels, want.hd95_voxels, "hd95_voxels, anisotropic");
  });
}

test("Betti numbers and χ of the skeleton fixtures' masks equal skimage.measure.euler_number's", () => {
  const { cases } = JSON.parse(readFileSync(join(fixtures, "skeleton_cases.json"), "utf8")) as { cases: Array<{ name: string; shape: Shape3; mask: string }> };
  for (const c of cases) {
    const n = c.shape[0] * c.shape[1] * c.shape[2];
    const bytes = Buffer.from(c.mask, "base64");
    const m = Uint8Array.from({ length: n }, (_, i) => (bytes[i >> 3] >> (7 - (i & 7))) & 1);
    assert.deepEqual(bettiNumbers(m, c.shape), expected.skeleton_masks[c.name], c.name);
  }
});

test("evaluateFolder with extra: per case and per group, apart from the challenge's aggregates; none by default", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "lsmseg-eval-extra-"));
  try {
    const out = join(tmp, "metrics.json");
    const m = await evaluateFolder(join(fixtures, "metrics", "pred"), join(fixtures, "metrics", "gt"), { out, workers: 1, quiet: true, extra: true });
    for (const r of m.results) assert.equal(r.extra!.betti1_error, expected.cases[r.case].betti1_error, r.case);
    assert.equal(m.categories["contiguous dense"].extra!.betti1_error.mean, (0 + 126) / 2);
    assert.equal(m.overall.extra!.hd95_voxels.nan, 3);
    assert.ok(Object.keys(m.aggregates).every((k) => !/betti|hd95/.test(k)), "no extra in the challenge's aggregates");
    const written = JSON.parse(readFileSync(out, "utf8")) as { results: Array<{ extra: { hd95_um: number | null } }> };
    assert.ok(written.results.some((r) => r.extra.hd95_um === null), "NaN written as null");
    const plain = await evaluateFolder(join(fixtures, "metrics", "pred"), join(fixtures, "metrics", "gt"), { workers: 1, quiet: true });
    assert.ok(plain.results.every((r) => r.extra === undefined) && plain.overall.extra === undefined);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
