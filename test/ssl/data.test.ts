// Pretraining's data: the dataset index is cached and rebuilt per file when a file changes, and streaming
// crops from a dataset larger than the cache budget keeps resident memory bounded.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { PatchLoader } from "../../src/data/loader.ts";
import { makeVolume, writeVolume } from "../../src/io/index.ts";
import { buildIndex } from "../../src/ssl/data_index.ts";
import { heapBytesInUse } from "../../src/util/heap.ts";

let dir = "";
before(() => { dir = mkdtempSync(join(tmpdir(), "lsmseg-ssl-data-")); });
after(() => rmSync(dir, { recursive: true, force: true }));

function volume(edge: number, seed: number, scale = 1000) {
  const v = makeVolume("uint16", [edge, edge, edge]);
  let s = seed * 2654435761 >>> 0;
  for (let i = 0; i < v.data.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    v.data[i] = (s >>> 8) % scale;
  }
  return v;
}

async function writeDataset(root: string, types: string[], perType: number, edge: number, ext = ".nii"): Promise<string[]> {
  const files: string[] = [];
  let n = 0;
  for (const t of types) {
    const folder = join(root, "unannotated", "isolated_structures", t);
    mkdirSync(folder, { recursive: true });
    for (let i = 0; i < perType; i++, n++) {
      const f = join(folder, `patchvolume_${n}${ext}`);
      await writeVolume(f, volume(edge, n));
      files.push(f);
    }
  }
  return files;
}

test("the index is cached, and rebuilt for exactly the files that changed, appeared or went away", async () => {
  const root = join(dir, "indexed");
  const files = await writeDataset(root, ["cfos_neuron", "cell_nuclei", "astrocyte_gfap"], 2, 12, ".nii.gz");
  const cache = join(root, "index.json");
  const first = await buildIndex(root, cache);
  assert.equal(first.rebuilt, 6);
  assert.deepEqual(first.index.entries.map((e) => e.shape), Array(6).fill([12, 12, 12]));
  assert.ok(first.index.entries.every((e) => e.stats.max > e.stats.min && e.stats.voxels === 12 ** 3));
  assert.deepEqual(new Set(first.index.entries.map((e) => e.structure)), new Set(["cfos_neuron", "cell_nuclei", "astrocyte_gfap"]));
  const second = await buildIndex(root, cache);
  assert.equal(second.rebuilt, 0);
  assert.equal(second.reused, 6);
  // one file rewritten with other content (brighter), one removed, one added
  await writeVolume(files[1], volume(12, 99, 60000));
  utimesSync(files[1], new Date(), new Date(Date.now() + 5000));
  unlinkSync(files[4]);
  await writeVolume(join(root, "unannotated", "isolated_structures", "cfos_neuron", "patchvolume_77.nii.gz"), volume(12, 77));
  const third = await buildIndex(root, cache);
  assert.equal(third.rebuilt, 2, "the changed and the new file");
  assert.equal(third.reused, 4);
  assert.equal(third.index.entries.length, 6);
  const changed = third.index.entries.find((e) => e.imagePath === files[1])!;
  assert.ok(changed.stats.max > 10 * first.index.entries.find((e) => e.imagePath === files[1])!.stats.max);
  assert.ok(!third.index.entries.some((e) => e.imagePath === files[4]));
});

test("streaming crops from a dataset larger than the cache budget keeps the heap in use bounded", async () => {
  // 96 volumes of 64³: 96 MiB once decoded to float32, against a 3 MiB cache. The cache's own count must stay
  // within its budget after every batch; resident memory is measured after a warm-up of 4 batches (the heap's own
  // early growth, 9–17 MiB on a loaded CI machine, once failed a bound measured from the first batch on).
  const root = join(dir, "large");
  const types = Array.from({ length: 8 }, (_, i) => `type_${i}`);
  await writeDataset(root, types, 12, 64);
  const { index } = await buildIndex(root, join(root, "index.json"));
  const decodedBytes = index.entries.length * 64 ** 3 * 4;
  const budget = 3 * 2 ** 20;
  const loader = new PatchLoader({ cases: index.entries, patchSize: [16, 16, 16], batchSize: 8, seed: 1, workers: 0, sampling: "balanced", cacheBytes: budget });
  const seen = new Set<string>();
  try {
    for (let k = 0; k < 4; k++) await loader.next();
    // glibc's bytes in use after a garbage collection, else resident memory (which also holds the free pages of the
    // untrimmed heap). Without the collection, evicted volumes whose ArrayBuffers V8 had not collected yet counted:
    // up to 31.2 MiB of the 32 MiB bound in a CI run, with the cache within its budget throughout.
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const inUse = (): number => {
      gc();
      return heapBytesInUse() ?? process.memoryUsage().rss;
    };
    const base = inUse();
    let peak = base;
    for (let k = 0; k < 16; k++) {
      const b = await loader.next();
      b.caseIds.forEach((id) => seen.add(id));
      peak = Math.max(peak, inUse());
      const stats = loader.cacheStats()!;
      assert.ok(stats.bytes <= budget, `the cache holds ${stats.bytes} bytes over its budget of ${budget}`);
    }
    assert.ok(seen.size > 0.6 * index.entries.length, `the batches visited ${seen.size} of ${index.entries.length} volumes`);
    assert.ok(loader.cacheStats()!.misses >= seen.size, "every volume visited was decoded at least once");
    const grewMiB = (peak - base) / 2 ** 20;
    console.log(`# memory in use grew by ${grewMiB.toFixed(1)} MiB over ${(decodedBytes / 2 ** 20).toFixed(0)} MiB of decoded volumes`);
    assert.ok(peak - base < decodedBytes / 3, `memory in use grew by ${grewMiB.toFixed(1)} MiB while reading ${(decodedBytes / 2 ** 20).toFixed(0)} MiB of decoded volumes`);
  } finally {
    await loader.close();
  }
});
