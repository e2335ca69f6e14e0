// Files written by the field's reference tools (nibabel, tifffile, libtiff, zarr-python; see
// fixtures/io/make_fixtures.py) read identically in lsmseg; files lsmseg writes read identically in them
// (checked by the same script when Debian's python3-nibabel is installed; skipped with a note otherwise).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { type DType, type Vec3, readVolume, writeVolume } from "../../src/io/index.ts";
import { DTYPE_LIST, pattern, sameVoxels } from "./pattern.ts";

const FIX = join(import.meta.dirname, "../../fixtures/io");
const expected = JSON.parse(readFileSync(join(FIX, "expected.json"), "utf8")) as Record<string, {
  dtype: DType; shape?: Vec3; spacingUm?: Vec3; affine?: number[]; scale?: [number, number]; plane?: number;
}>;

for (const [file, e] of Object.entries(expected)) {
  test(`reads ${file} as written by its reference tool`, async () => {
    const vol = await readVolume(join(FIX, file));
    const shape = e.shape ?? [5, 6, 7];
    assert.deepEqual(vol.shape, shape);
    assert.equal(vol.dtype, e.dtype);
    let want = pattern(e.scale ? "int16" : e.dtype, e.plane !== undefined ? [shape[0] + e.plane, shape[1], shape[2]] : shape).data;
    if (e.plane !== undefined) want = want.subarray(e.plane * shape[1] * shape[2]);
    if (e.scale) want = Float32Array.from(want, (v) => v * e.scale![0] + e.scale![1]);
    assert.ok(sameVoxels(vol.data, want), `${file}: voxels differ`);
    if (e.spacingUm) assert.deepEqual(vol.spacingUm.map((s) => +s.toFixed(5)), e.spacingUm);
    if (e.affine) assert.deepEqual(vol.affine!.map((v) => +v.toFixed(4)), e.affine.map((v) => +v.toFixed(4)));
  });
}

const python = "/usr/bin/python3";
const hasReference = spawnSync(python, ["-c", "import nibabel, tifffile, zarr, PIL"]).status === 0;

test("files lsmseg writes read identically in nibabel, tifffile, libtiff and zarr-python", { skip: hasReference ? false : "python3-nibabel/tifffile/zarr/pil not installed: reference check skipped" }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "lsmseg-ref-"));
  try {
    const spacing: Vec3 = [2.5, 0.5, 0.75];
    for (const dtype of DTYPE_LIST) {
      const vol = pattern(dtype, [5, 6, 7], spacing);
      await writeVolume(join(dir, `nii_${dtype}.nii.gz`), vol);
      await writeVolume(join(dir, `nii2_${dtype}.nii`), vol, { niftiVersion: 2 });
      await writeVolume(join(dir, `mha_${dtype}.mha`), vol);
      await writeVolume(join(dir, `tif_${dtype}.tif`), vol);
      await writeVolume(join(dir, `bigtif_${dtype}.tif`), vol, { bigtiff: true });
      await writeVolume(join(dir, `zarr_${dtype}.zarr`), vol, { chunks: [2, 4, 4] });
    }
    for (const dtype of ["uint8", "uint16"] as DType[]) await writeVolume(join(dir, `lzw_${dtype}.tif`), pattern(dtype, [5, 6, 7], spacing), { tiffCompression: "lzw" });
    const r = spawnSync(python, [join(FIX, "make_fixtures.py"), "verify", dir], { encoding: "utf8" });
    const lines = r.stdout.trim().split("\n");
    assert.equal(r.status, 0, `reference tools disagree:\n${lines.filter((l) => !l.startsWith("ok")).join("\n")}\n${r.stderr}`);
    assert.equal(lines.filter((l) => l.startsWith("ok")).length, DTYPE_LIST.length * 6 + 2);
    // the same values lsmseg reads back
    assert.ok(sameVoxels((await readVolume(join(dir, "lzw_uint16.tif"))).data, pattern("uint16").data));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
