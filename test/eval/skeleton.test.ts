// Skeletons and connected components agree voxel for voxel with scikit-image (fixtures/eval, made by
// fixtures/io/make_fixtures.py with skimage.morphology.skeletonize_3d and skimage.measure.label).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { labelComponents } from "../../src/eval/components.ts";
import { floodFill } from "./reference.ts";
import { isDeletable, isSimplePoint, skeletonize3d, skeletonLength } from "../../src/eval/skeleton.ts";

interface Case {
  name: string; shape: [number, number, number]; mask: string; skeleton: string; skeletonVoxels: number;
  components: number; labels: string | null; sizes: number[];
}
const { cases } = JSON.parse(readFileSync(join(import.meta.dirname, "../../fixtures/eval/skeleton_cases.json"), "utf8")) as { cases: Case[] };

function unpack(b64: string, n: number): Uint8Array {
  const bytes = Buffer.from(b64, "base64");
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (bytes[i >> 3] >> (7 - (i & 7))) & 1;
  return out;
}

for (const c of cases) {
  const n = c.shape[0] * c.shape[1] * c.shape[2];
  test(`skeleton of '${c.name}' equals scikit-image's`, () => {
    const skel = skeletonize3d(unpack(c.mask, n), c.shape);
    const want = unpack(c.skeleton, n);
    const diff = skel.reduce((s, v, i) => s + (v !== want[i] ? 1 : 0), 0);
    assert.equal(diff, 0, `${diff} voxels differ`);
    assert.equal(skeletonLength(skel), c.skeletonVoxels);
  });
  test(`26-connected components of '${c.name}' equal scikit-image's`, () => {
    const comp = labelComponents(unpack(c.mask, n), c.shape);
    assert.equal(comp.count, c.components);
    assert.deepEqual(Array.from(comp.sizes.subarray(1)), c.sizes);
    if (c.labels) {
      const want = new Int32Array(Uint8Array.from(Buffer.from(c.labels, "base64")).buffer);
      assert.deepEqual(Array.from(comp.labels), Array.from(want));
    }
  });
}

test("components: 6-, 18- and 26-connectivity differ as they should", () => {
  // in a 3×3×3 cube (index z·9 + y·3 + x): (0,0,0)–(1,0,0) share a face, (1,0,0)–(1,1,1) an edge,
  // (1,1,1)–(0,1,1) a face, and (2,2,2) touches (1,1,1) only by a corner
  const m = new Uint8Array(27);
  for (const i of [0, 9, 13, 4, 26]) m[i] = 1;
  assert.equal(labelComponents(m, [3, 3, 3], 26).count, 1);
  assert.equal(labelComponents(m, [3, 3, 3], 18).count, 2);
  assert.equal(labelComponents(m, [3, 3, 3], 6).count, 3);
});

test("skeleton of a straight rod is its centre line, and of nothing is nothing", () => {
  const shape: [number, number, number] = [5, 5, 20];
  const m = new Uint8Array(500);
  for (let z = 1; z < 4; z++) for (let y = 1; y < 4; y++) for (let x = 2; x < 18; x++) m[(z * 5 + y) * 20 + x] = 1;
  const skel = skeletonize3d(m, shape);
  const comp = labelComponents(skel, shape);
  assert.equal(comp.count, 1);
  assert.ok(skeletonLength(skel) >= 12 && skeletonLength(skel) <= 16);
  assert.equal(skeletonLength(skeletonize3d(new Uint8Array(500), shape)), 0);
});

// ---------------------------------------------------------------- slow, obvious references

/**
 * scikit-image's loop as it is written: every sub-iteration scans the whole volume for border points that
 * pass Lee's tests, then deletes them in raster order if still simple.
 */
function referenceSkeleton(mask: Uint8Array, shape: [number, number, number]): Uint8Array {
  const [nz, ny, nx] = shape;
  const at = (z: number, y: number, x: number) => (z < 0 || y < 0 || x < 0 || z >= nz || y >= ny || x >= nx ? 0 : img[(z * ny + y) * nx + x]);
  const img = mask.slice();
  const nb = (z: number, y: number, x: number) => {
    let v = 0;
    for (let dz = -1; dz <= 1; dz++) for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
      v |= at(z + dz, y + dy, x + dx) << ((dz + 1) * 9 + (dx + 1) * 3 + dy + 1);
    }
    return v;
  };
  // border directions in scikit-image's order, as the neighbour (dz, dy, dx) that must be background
  const dirs = [[0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, -1], [1, 0, 0], [-1, 0, 0]].slice(0, nz === 1 ? 4 : 6);
  for (let unchanged = 0; unchanged < dirs.length;) {
    unchanged = 0;
    for (const [dz, dy, dx] of dirs) {
      const found: Array<[number, number, number]> = [];
      for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
        if (at(z, y, x) && !at(z + dz, y + dy, x + dx) && isDeletable(nb(z, y, x))) found.push([z, y, x]);
      }
      let changed = false;
      for (const [z, y, x] of found) if (isSimplePoint(nb(z, y, x))) { img[(z * ny + y) * nx + x] = 0; changed = true; }
      if (!changed) unchanged++;
    }
  }
  return img;
}

/** Random blobs: seeds grown by a few random boxes, so there are plates, rods, holes and loops. */
function randomBlobs(shape: [number, number, number], seed: number, boxes: number): Uint8Array {
  const [nz, ny, nx] = shape;
  let s = seed;
  const rand = (k: number) => { s = (s * 1103515245 + 12345) % 2 ** 31; return Math.floor((s / 2 ** 31) * k); };
  const m = new Uint8Array(nz * ny * nx);
  for (let b = 0; b < boxes; b++) {
    const z0 = rand(nz), y0 = rand(ny), x0 = rand(nx), dz = 1 + rand(6), dy = 1 + rand(6), dx = 1 + rand(8);
    for (let z = z0; z < Math.min(nz, z0 + dz); z++) for (let y = y0; y < Math.min(ny, y0 + dy); y++) {
      for (let x = x0; x < Math.min(nx, x0 + dx); x++) m[(z * ny + y) * nx + x] = 1;
    }
  }
  return m;
}

test("skeleton: the worklist thinning equals scikit-image's whole-volume scan on random volumes", () => {
  const shapes: Array<[number, number, number]> = [[14, 16, 18], [1, 20, 24], [9, 9, 30]];
  for (let trial = 0; trial < 9; trial++) {
    const shape = shapes[trial % 3];
    const m = randomBlobs(shape, 7 + trial, 8 + 4 * trial);
    const got = skeletonize3d(m, shape), want = referenceSkeleton(m, shape);
    assert.ok(skeletonLength(want) > 0, `trial ${trial} has a skeleton`);
    assert.deepEqual(Array.from(got), Array.from(want), `trial ${trial}`);
  }
});

test("components: run-based labels equal a flood fill for 6-, 18- and 26-connectivity", () => {
  const shape: [number, number, number] = [11, 13, 15];
  for (const conn of [6, 18, 26] as const) {
    for (let trial = 0; trial < 4; trial++) {
      const m = randomBlobs(shape, 100 + trial, 20 + 10 * trial);
      const { labels: want, count } = floodFill(m, shape, conn);
      const got = labelComponents(m, shape, conn);
      assert.equal(got.count, count, `${conn}-connectivity, trial ${trial}`);
      assert.deepEqual(Array.from(got.labels), Array.from(want), `${conn}-connectivity, trial ${trial}`);
      const sizes = new Array<number>(count + 1).fill(0);
      for (const l of want) sizes[l]++;
      assert.deepEqual(Array.from(got.sizes), sizes);
    }
  }
});
