// Files in the formats public archives and the field's tools write (fixtures/io/make_public_formats.py:
// zarr-python, numcodecs, tifffile, nibabel; Zarr v3 laid out by hand after the spec) read as numpy wrote them.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { type OpenOptions, bytesOf, readVolume } from "../../src/io/index.ts";
import { sha256 } from "./pattern.ts";

const FIX = join(import.meta.dirname, "../../fixtures/io/public");
interface Expected { path: string; options: OpenOptions; dtype: string; shape: number[]; spacingUm: number[]; originUm?: number[]; sha256: string }
const expected = JSON.parse(readFileSync(join(FIX, "expected.json"), "utf8")) as Expected[];

for (const e of expected) {
  const opts = Object.entries(e.options).map(([k, v]) => ` --${k} ${v}`).join("");
  test(`reads ${e.path}${opts} as its reference tool wrote it`, async () => {
    const vol = await readVolume(join(FIX, e.path), e.options);
    assert.equal(vol.dtype, e.dtype);
    assert.deepEqual(vol.shape, e.shape);
    assert.deepEqual(vol.spacingUm.map((s) => +s.toFixed(6)), e.spacingUm);
    if (e.originUm) assert.deepEqual(vol.originUm?.map((s) => +s.toFixed(6)), e.originUm);
    assert.equal(sha256(bytesOf(vol.data)), e.sha256, `${e.path}: voxels differ`);
  });
}
