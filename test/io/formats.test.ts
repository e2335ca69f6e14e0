// Round trips through every format and dtype, streaming writes, and region reads against whole reads.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { type Box, type Vec3, cropVolume, createVolume, openVolume, readRegion, readVolume, writeVolume } from "../../src/io/index.ts";
import { DTYPE_LIST, pattern, sameVoxels } from "./pattern.ts";

const dir = mkdtempSync(join(tmpdir(), "lsmseg-io-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const FORMATS: Array<{ name: string; ext: string; opts?: Record<string, unknown> }> = [
  { name: "NIfTI-1", ext: ".nii" },
  { name: "NIfTI-1 gz", ext: ".nii.gz" },
  { name: "NIfTI-2 gz", ext: ".nii.gz", opts: { niftiVersion: 2 } },
  { name: "MetaImage zlib", ext: ".mha" },
  { name: "MetaImage raw", ext: ".mha", opts: { compress: false } },
  { name: "TIFF deflate", ext: ".tif" },
  { name: "TIFF LZW", ext: ".tif", opts: { tiffCompression: "lzw" } },
  { name: "BigTIFF", ext: ".tif", opts: { bigtiff: true, tiffCompression: "none" } },
  { name: "TIFF plane folder", ext: "" },
  { name: "OME-Zarr 0.4", ext: ".zarr", opts: { chunks: [2, 4, 4] } },
  { name: "OME-Zarr 0.5", ext: ".ome.zarr", opts: { zarrVersion: 3, chunks: [2, 4, 4] } },
];

const shape: Vec3 = [9, 23, 31];
const spacing: Vec3 = [2.5, 0.5, 0.75];
const boxes: Box[] = [
  { start: [0, 0, 0], size: [1, 1, 1] },
  { start: [3, 5, 7], size: [4, 11, 13] },
  { start: [8, 22, 0], size: [1, 1, 31] },
  { start: [0, 0, 0], size: [9, 23, 31] },
];

describe("round trip through every format and dtype", () => {
  let n = 0;
  for (const f of FORMATS) {
    test(f.name, async () => {
      for (const dtype of DTYPE_LIST) {
        const vol = pattern(dtype, shape, spacing);
        const path = join(dir, `rt${n++}_${dtype}${f.ext}`);
        await writeVolume(path, vol, f.opts);
        const back = await readVolume(path);
        assert.equal(back.dtype, dtype, `${f.name} ${dtype}: dtype`);
        assert.deepEqual(back.shape, shape);
        assert.deepEqual(back.spacingUm.map((s) => +s.toFixed(6)), spacing, `${f.name} ${dtype}: spacing`);
        assert.ok(sameVoxels(back.data, vol.data), `${f.name} ${dtype}: voxels differ`);
        for (const box of boxes) {
          const region = await readRegion(path, box);
          assert.deepEqual(region.shape, box.size);
          assert.ok(sameVoxels(region.data, cropVolume(back, box).data), `${f.name} ${dtype}: region ${JSON.stringify(box)}`);
        }
        // into a reused buffer full of other bytes: every voxel of the box is overwritten
        const source = await openVolume(path);
        const into = new Uint8Array(shape[0] * shape[1] * shape[2] * 8).fill(0xab);
        for (const box of boxes) {
          const region = await source.readRegion(box, into);
          assert.equal(region.data.buffer, into.buffer, `${f.name} ${dtype}: read into the given buffer`);
          assert.ok(sameVoxels(region.data, cropVolume(back, box).data), `${f.name} ${dtype}: region ${JSON.stringify(box)} into a buffer`);
        }
        await source.close();
      }
    });
  }
});

test("no temporary file is left beside the outputs", () => {
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes(".lsmseg-tmp-")), []);
});

test("streaming: slabs written one by one read back as slabs, in any order", async () => {
  const vol = pattern("uint16", [20, 16, 12]);
  for (const ext of [".nii.gz", ".mha", ".tif", ".zarr"]) {
    const path = join(dir, `slabs${ext}`);
    const sink = await createVolume(path, vol);
    const plane = 16 * 12;
    for (const [z0, z1] of [[0, 3], [3, 10], [10, 20]]) await sink.writeSlab(vol.data.subarray(z0 * plane, z1 * plane));
    await sink.close();
    const src = await openVolume(path);
    // backwards and forwards: a gzip stream is restarted when reading behind its position
    for (const z0 of [15, 0, 5, 10, 2]) {
      const slab = await src.readRegion({ start: [z0, 0, 0], size: [5, 16, 12] });
      assert.ok(sameVoxels(slab.data, vol.data.subarray(z0 * plane, (z0 + 5) * plane)), `${ext} slab at z=${z0}`);
    }
    await src.close();
  }
});

test("a sink closed before all planes arrive fails and leaves nothing behind", async () => {
  const vol = pattern("uint8", [4, 5, 6]);
  const path = join(dir, "short.nii.gz");
  const sink = await createVolume(path, vol);
  await sink.writeSlab(vol.data.subarray(0, 30));
  await assert.rejects(sink.close(), /short\.nii\.gz: 1 of 4 planes were written/);
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith("short")), []);
});

test("OME-Zarr writes a 2× mean pyramid", async () => {
  const vol = pattern("float32", [8, 8, 8]);
  const path = join(dir, "pyr.zarr");
  await writeVolume(path, vol, { chunks: [4, 4, 4] });
  const level1 = await readVolume(join(path, "1"));
  assert.deepEqual(level1.shape, [4, 4, 4]);
  let s = 0;
  for (const z of [0, 1]) for (const y of [0, 1]) for (const x of [0, 1]) s += vol.data[(z * 8 + y) * 8 + x];
  assert.equal(level1.data[0], Math.fround(s / 8));
});
