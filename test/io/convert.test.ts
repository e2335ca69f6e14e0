// lsmseg convert: any format to any other, slab by slab, values kept (or cast on request).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { convertVolume, run } from "../../src/cli/convert.ts";
import { readVolume, writeVolume } from "../../src/io/index.ts";
import { pattern, sameVoxels } from "./pattern.ts";

const dir = mkdtempSync(join(tmpdir(), "lsmseg-convert-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("a chain of conversions through every format keeps every voxel, in slabs of a few planes", async () => {
  const vol = pattern("uint16", [13, 17, 19], [2, 0.5, 0.5]);
  await writeVolume(join(dir, "a.nii.gz"), vol);
  const chain = ["a.nii.gz", "b.mha", "c.tif", "d", "e.zarr", "f.ome.zarr", "g.nii"];
  for (let i = 1; i < chain.length; i++) {
    // a slab budget of 2 KB: a plane of 17×19 uint16 is 646 bytes, so three planes per slab
    await convertVolume(join(dir, chain[i - 1]), join(dir, chain[i]), { slabBytes: 2048, quiet: true, write: chain[i] === "f.ome.zarr" ? { zarrVersion: 3, chunks: [4, 8, 8] } : { chunks: [4, 8, 8] } });
  }
  const back = await readVolume(join(dir, "g.nii"));
  assert.ok(sameVoxels(back.data, vol.data));
  assert.deepEqual(back.spacingUm, [2, 0.5, 0.5]);
});

test("--dtype casts, and the CLI reports usage errors", async () => {
  await writeVolume(join(dir, "f.nii"), pattern("float32"));
  assert.equal(await run([join(dir, "f.nii"), join(dir, "i.mha"), "--dtype", "int16", "--quiet"]), 0);
  const v = await readVolume(join(dir, "i.mha"));
  assert.equal(v.dtype, "int16");
  assert.equal(v.data[3], Math.round(pattern("float32").data[3]));
  await assert.rejects(run([join(dir, "f.nii")]), /convert needs IN and OUT/);
  await assert.rejects(run([join(dir, "f.nii"), join(dir, "x.nii"), "--dtype", "int64"]), /--dtype must be one of/);
});
