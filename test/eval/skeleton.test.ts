// Skeletons and connected components agree voxel for voxel with scikit-image (fixtures/eval, made by
// fixtures/io/make_fixtures.py with skimage.morphology.skeletonize_3d and skimage.measure.label).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { labelComponents } from "../../src/eval/components.ts";
import { skeletonize3d, skeletonLength } from "../../src/eval/skeleton.ts";

interface Case { name: string; shape: [number, number, number]; mask: string; skeleton: string; skeletonVoxels: number; components: number; labels: string | null; sizes: number[] }
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
