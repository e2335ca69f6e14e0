// PatchLoader: batch k depends only on (seed, k) — same with 0 or 2 workers and when a run resumes at k —,
// foreground oversampling, unlabelled and balanced sampling, two views, and errors from workers.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { synthDataset } from "../../src/synth/index.ts";
import { type Batch, type Case, PatchLoader, annotatedCases, augmentConfig, loadCase, unannotatedCases } from "../../src/data/index.ts";

const root = mkdtempSync(join(tmpdir(), "lsmseg-data-loader-"));
let annotated: Case[];
let unannotated: Case[];
before(async () => {
  await synthDataset(root + "/ds", { preset: "tiny", seed: 3, quiet: true, overrides: { testPerType: 0, rawVolumes: 0, annotatedShape: [24, 28, 32], unannotatedShape: [20, 20, 20] } });
  annotated = await annotatedCases(join(root, "ds"));
  unannotated = unannotatedCases(join(root, "ds"));
});
after(() => rmSync(root, { recursive: true, force: true }));

async function take(loader: PatchLoader, n: number): Promise<Batch[]> {
  const out: Batch[] = [];
  try {
    for (let i = 0; i < n; i++) out.push(await loader.next());
  } finally {
    await loader.close();
  }
  return out;
}

function assertSameBatch(a: Batch, b: Batch): void {
  assert.equal(a.index, b.index);
  assert.deepEqual(a.caseIds, b.caseIds);
  assert.deepEqual(a.images, b.images, `images of batch ${a.index}`);
  assert.deepEqual(a.labels, b.labels, `labels of batch ${a.index}`);
}

const heavy = augmentConfig({
  pRotation: 0.5, pScale: 0.5, pNoise: 0.5, pBlur: 0.3, pStripes: 0.3, pDepthAttenuation: 0.3, pAnisotropicBlur: 0.3, pLowRes: 0.3,
});

test("same seed: identical batches with 0 and 2 workers, and from startBatch k", async () => {
  const opts = { cases: annotated, patchSize: [16, 16, 16] as [number, number, number], batchSize: 3, seed: 11, augment: heavy };
  const inline = await take(new PatchLoader({ ...opts, workers: 0 }), 6);
  const pooled = await take(new PatchLoader({ ...opts, workers: 2, prefetch: 3 }), 6);
  for (let k = 0; k < 6; k++) assertSameBatch(inline[k], pooled[k]);
  const resumed = await take(new PatchLoader({ ...opts, workers: 2, startBatch: 4 }), 2);
  assertSameBatch(resumed[0], inline[4]);
  assertSameBatch(resumed[1], inline[5]);
  const resumedInline = await take(new PatchLoader({ ...opts, workers: 0, startBatch: 5 }), 1);
  assertSameBatch(resumedInline[0], inline[5]);
  // a different seed gives different batches
  const other = await take(new PatchLoader({ ...opts, workers: 0, seed: 12 }), 1);
  assert.notDeepEqual(other[0].images, inline[0].images);
  assert.equal(inline[0].images.length, 3 * 16 ** 3);
  assert.equal(inline[0].labels!.length, 3 * 16 ** 3);
});

test("sharding: rank r's batch k is global batch k·N + r; a resume with another N starts at the global batch given", async () => {
  const opts = { cases: annotated, patchSize: [16, 16, 16] as [number, number, number], batchSize: 2, seed: 9, workers: 0 };
  const single = await take(new PatchLoader(opts), 8);
  const ranks = await Promise.all([0, 1].map((rank) => take(new PatchLoader({ ...opts, shard: { rank, worldSize: 2 } }), 3)));
  const same = (a: Batch, b: Batch) => {
    assert.deepEqual(a.caseIds, b.caseIds);
    assert.deepEqual(a.images, b.images);
    assert.deepEqual(a.labels, b.labels);
  };
  for (let k = 0; k < 3; k++) for (const rank of [0, 1]) same(ranks[rank][k], single[2 * k + rank]);
  // 3 steps of 2 ranks consumed global batches 0…5; one process resumed at step 3 goes on with batch 6
  const resumed = await take(new PatchLoader({ ...opts, startBatch: 3, shard: { rank: 0, worldSize: 1, startGlobal: 6 } }), 2);
  same(resumed[0], single[6]);
  same(resumed[1], single[7]);
});

test("foreground oversampling: the last third of each batch is centred on foreground", async () => {
  const B = 3, P = 8, n = P ** 3, batches = 20;
  const got = await take(new PatchLoader({ cases: annotated, patchSize: [P, P, P], batchSize: B, seed: 5, workers: 0 }), batches);
  let withFg = 0;
  for (const b of got) {
    for (let i = 0; i < B; i++) {
      const fg = b.labels!.subarray(i * n, (i + 1) * n).some((v) => v === 1);
      if (i === B - 1) assert.ok(fg, `batch ${b.index} sample ${i} (forced) has foreground`);
      if (fg) withFg++;
    }
  }
  assert.ok(withFg >= batches * B / 3, `${withFg} of ${batches * B} patches hold foreground`);
  // without oversampling, fewer patches hold foreground
  const none = await take(
    new PatchLoader({ cases: annotated, patchSize: [P, P, P], batchSize: B, seed: 5, workers: 0, oversampleForeground: 0 }), batches,
  );
  const noneFg = none.reduce((s, b) => s + [0, 1, 2].filter((i) => b.labels!.subarray(i * n, (i + 1) * n).some((v) => v === 1)).length, 0);
  assert.ok(noneFg < withFg, `${noneFg} vs ${withFg}`);
});

test("unlabelled cases: labels null; balanced sampling spreads over structure types; two views", async () => {
  const types = new Set(unannotated.map((c) => c.structure));
  const got = await take(new PatchLoader({ cases: unannotated, patchSize: [16, 16, 16], batchSize: 4, seed: 2, workers: 2, sampling: "balanced", views: 2, augment: heavy }), 10);
  assert.equal(got[0].labels, null);
  assert.ok(got[0].images2);
  assert.notDeepEqual(got[0].images, got[0].images2);
  const seen = new Set(got.flatMap((b) => b.caseIds.map((id) => id.split("/")[0])));
  assert.ok(seen.size >= Math.min(types.size, 20) * 0.6, `${seen.size} of ${types.size} types seen`);
  const inline = await take(new PatchLoader({ cases: unannotated, patchSize: [16, 16, 16], batchSize: 4, seed: 2, workers: 0, sampling: "balanced", views: 2, augment: heavy }), 2);
  assert.deepEqual(inline[1].images2, got[1].images2);
});

test("patches larger than the volume are padded with the volume's minimum", async () => {
  const c = annotated[0];
  const vol = await loadCase(c);
  const [b] = await take(new PatchLoader({ cases: [c], patchSize: [32, 32, 40], batchSize: 1, seed: 0, workers: 0, oversampleForeground: 0 }), 1);
  // volume 24×28×32 inside a 32×32×40 patch: the first voxel is padding, and the image appears unchanged inside
  assert.equal(b.images[0], vol.padValue);
  let found = false;
  for (let z0 = 0; z0 <= 8 && !found; z0++) for (let y0 = 0; y0 <= 4 && !found; y0++) for (let x0 = 0; x0 <= 8 && !found; x0++) {
    found = b.images[(z0 * 32 + y0) * 40 + x0] === vol.image[0]
      && b.images[((z0 + 23) * 32 + y0 + 27) * 40 + x0 + 31] === vol.image[vol.image.length - 1];
  }
  assert.ok(found);
});

test("loadCase: normalised image, binary label, shape", async () => {
  const v = await loadCase(annotated[0]);
  assert.deepEqual(v.shape, [24, 28, 32]);
  assert.ok(v.label!.every((x) => x === 0 || x === 1));
  const mean = v.image.reduce((a, b) => a + b, 0) / v.image.length;
  assert.ok(Math.abs(mean) < 1e-3, `mean ${mean}`);
  assert.ok(v.foreground.length > 0);
});

test("errors: a worker's failure to read a case reaches next(), naming the file", async () => {
  const bad: Case = { ...annotated[0], id: "missing", imagePath: join(root, "nope.nii.gz") };
  for (const workers of [0, 1]) {
    const loader = new PatchLoader({ cases: [bad], patchSize: [8, 8, 8], batchSize: 1, seed: 0, workers });
    await assert.rejects(loader.next(), /nope\.nii\.gz/);
    await loader.close();
  }
  assert.throws(() => new PatchLoader({ cases: [annotated[0], unannotated[0]], patchSize: [8, 8, 8], batchSize: 1, seed: 0 }), /has no label/);
  assert.throws(() => new PatchLoader({ cases: annotated, patchSize: [8, 8] as never, batchSize: 1, seed: 0 }), /patchSize/);
});
