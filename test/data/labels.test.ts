// Label maps and the ignore label: parsing (flag and dataset.json), mapping, and foreground oversampling that
// never centres a patch on an ignored voxel.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { IGNORE_LABEL, PatchLoader, annotatedCases, applyLabelMap, foregroundLocations, labelMapOfDatasetJson, loadCase, parseLabelMap } from "../../src/data/index.ts";
import { TRAILMAP_MAP, writeSparseDataset } from "./sparse.ts";

const root = mkdtempSync(join(tmpdir(), "lsmseg-labels-"));
before(async () => { await writeSparseDataset(join(root, "ds"), { cases: 2 }); });
after(() => rmSync(root, { recursive: true, force: true }));

test("label maps from a flag and from dataset.json's labels; values not listed: > 0 is foreground", () => {
  const m = parseLabelMap(TRAILMAP_MAP);
  assert.deepEqual(m, { 0: "ignore", 1: "background", 2: "foreground", 4: "foreground" });
  assert.deepEqual([...applyLabelMap([0, 1, 2, 3, 4, 255], m)], [IGNORE_LABEL, 0, 1, 1, 1, 1]);
  assert.deepEqual([...applyLabelMap([0, 1, 2, 255], null)], [0, 1, 1, 1]);
  assert.deepEqual(labelMapOfDatasetJson({ labels: { background: 0, axon: 1, ignore: 2 } }), { 0: "background", 1: "foreground", 2: "ignore" });
  assert.deepEqual(labelMapOfDatasetJson({ labels: { background: 0, axon: [1, 3] } }), { 0: "background", 1: "foreground", 3: "foreground" });
  assert.equal(labelMapOfDatasetJson({ structures: {} }), null);
  assert.throws(() => parseLabelMap("0=ignore,1"), /--label-map: expected VALUE=CLASS/);
  assert.throws(() => parseLabelMap("0=ignore,0=axon"), /mapped twice/);
  assert.throws(() => labelMapOfDatasetJson({ labels: { axon: "x" } }, "d/dataset.json"), /d\/dataset.json: labels.axon must be a number/);
});

test("annotatedCases: a --label-map wins over dataset.json's labels; loadCase maps the file's values", async () => {
  const ds = join(root, "ds");
  writeFileSync(join(ds, "dataset.json"), JSON.stringify({ labels: { background: 1, axon: 2, edge: 4, ignore: 0 } }));
  try {
    const fromJson = await annotatedCases(ds);
    assert.deepEqual(fromJson[0].labelMap, { 0: "ignore", 1: "background", 2: "foreground", 4: "foreground" });
    const fromFlag = await annotatedCases(ds, { labelMap: { 0: "background" } });
    assert.deepEqual(fromFlag[0].labelMap, { 0: "background" });
    const c = await loadCase(fromJson[0]);
    const [nz, ny, nx] = c.shape, plane = ny * nx;
    // planes 5 and 14 are labelled, every other voxel is ignored
    for (let z = 0; z < nz; z++) {
      const slice = c.label!.subarray(z * plane, (z + 1) * plane);
      if (z === 5 || z === 14) assert.ok(slice.every((v) => v === 0 || v === 1) && slice.some((v) => v === 1), `plane ${z}`);
      else assert.ok(slice.every((v) => v === IGNORE_LABEL), `plane ${z} ignored`);
    }
    assert.equal(nx, 24);
  } finally {
    rmSync(join(ds, "dataset.json"));
  }
});

test("foreground oversampling never centres a patch on an ignored voxel", async () => {
  // a slow reference: foregroundLocations holds exactly the voxels of label 1
  const label = Uint8Array.from({ length: 1000 }, (_, i) => (i % 7 === 0 ? 1 : i % 3 === 0 ? IGNORE_LABEL : 0));
  const want = [...label.keys()].filter((i) => label[i] === 1);
  assert.deepEqual([...foregroundLocations(label)], want);
  // every patch of a loader that only oversamples (fraction 1) has a foreground voxel at its centre
  const cases = await annotatedCases(join(root, "ds"), { labelMap: parseLabelMap(TRAILMAP_MAP) });
  const P = 5, B = 4;
  const loader = new PatchLoader({ cases, patchSize: [P, P, P], batchSize: B, seed: 9, workers: 0, oversampleForeground: 1 });
  try {
    for (let k = 0; k < 25; k++) {
      const b = await loader.next();
      for (let i = 0; i < B; i++) {
        const centre = i * P ** 3 + ((P >> 1) * P + (P >> 1)) * P + (P >> 1);
        assert.equal(b.labels![centre], 1, `batch ${k} sample ${i}: centre voxel ${b.labels![centre]}`);
      }
    }
  } finally {
    await loader.close();
  }
});
