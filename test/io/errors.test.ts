// Bad input gives an Error that names the file and what is wrong, never a crash or a half-written output.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { after, test } from "node:test";
import { niftiHeader } from "../../src/io/nifti.ts";
import { createVolume, readVolume, writeVolume } from "../../src/io/index.ts";
import { pattern } from "./pattern.ts";

const dir = mkdtempSync(join(tmpdir(), "lsmseg-bad-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const FIX = join(import.meta.dirname, "../../fixtures/io");

async function rejects(path: string, what: RegExp): Promise<void> {
  await assert.rejects(readVolume(path), (err: Error) => {
    assert.ok(err.message.includes(path), `message does not name the file: ${err.message}`);
    assert.match(err.message, what);
    return true;
  });
}

test("a truncated gzip", async () => {
  const vol = pattern("uint16", [8, 32, 32]);
  const p = join(dir, "ok.nii.gz");
  await writeVolume(p, vol);
  const bytes = readFileSync(p);
  writeFileSync(join(dir, "trunc.nii.gz"), bytes.subarray(0, bytes.length - 200));
  await rejects(join(dir, "trunc.nii.gz"), /gzip data is truncated or corrupt|promises \d+ bytes/);
  const mha = join(dir, "ok.mha");
  await writeVolume(mha, vol);
  const m = readFileSync(mha);
  writeFileSync(join(dir, "trunc.mha"), m.subarray(0, m.length - 100));
  await rejects(join(dir, "trunc.mha"), /zlib data is truncated or corrupt|promises/);
});

test("a header that promises more data than the file holds", async () => {
  const p = join(dir, "short.nii");
  const h = niftiHeader({ dtype: "uint16", shape: [10, 10, 10], spacingUm: [1, 1, 1] }, 1);
  writeFileSync(p, Buffer.concat([h, Buffer.alloc(500)]));
  await rejects(p, /promises 2000 bytes of voxel data .* holds only 500/);
  const gz = join(dir, "short.nii.gz");
  writeFileSync(gz, gzipSync(Buffer.concat([h, Buffer.alloc(500)])));
  await rejects(gz, /promises 2000 bytes of voxel data but the file holds only 500/);
  const tif = join(dir, "short.tif");
  await writeVolume(tif, pattern("uint16", [3, 40, 40]), { tiffCompression: "none" });
  const t = readFileSync(tif);
  writeFileSync(tif, t.subarray(0, t.length - 4000));
  await assert.rejects(readVolume(tif), /short\.tif: .*(beyond|truncated)/);
});

test("an unsupported dtype", async () => {
  const p = join(dir, "complex.nii");
  const h = niftiHeader({ dtype: "float32", shape: [2, 2, 2], spacingUm: [1, 1, 1] }, 1);
  h.writeInt16LE(32, 70); // complex64
  h.writeInt16LE(64, 72);
  writeFileSync(p, Buffer.concat([h, Buffer.alloc(64)]));
  await rejects(p, /unsupported NIfTI datatype 32 \(complex64\)/);
  const mha = join(dir, "rgb.mha");
  writeFileSync(mha, "ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\nElementType = MET_LONG_LONG\nElementDataFile = LOCAL\n" + "\0".repeat(64));
  await rejects(mha, /unsupported ElementType 'MET_LONG_LONG'/);
});

test("dimensions that don't multiply out", async () => {
  const mha = join(dir, "dims.mha");
  writeFileSync(mha, "ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_UCHAR\nElementDataFile = LOCAL\n" + "\0".repeat(80));
  await rejects(mha, /dimensions 4×4×4 of uint8 make 64 bytes but the file holds 80/);
  const bits = join(dir, "bitpix.nii");
  const h = niftiHeader({ dtype: "uint16", shape: [2, 2, 2], spacingUm: [1, 1, 1] }, 1);
  h.writeInt16LE(8, 72);
  writeFileSync(bits, Buffer.concat([h, Buffer.alloc(16)]));
  await rejects(bits, /bitpix 8 does not match datatype uint16/);
  const neg = join(dir, "negdim.mha");
  writeFileSync(neg, "NDims = 3\nDimSize = 4 0 4\nElementType = MET_UCHAR\nElementDataFile = LOCAL\n");
  await rejects(neg, /DimSize '4 0 4' must be positive integers/);
  // a Zarr chunk of the wrong size
  const z = join(dir, "chunk.zarr");
  await writeVolume(z, pattern("uint8", [4, 4, 4]), { chunks: [4, 4, 4], zarrCompression: "none" });
  writeFileSync(join(z, "0", "0", "0", "0"), Buffer.alloc(10));
  await assert.rejects(readVolume(z), /chunk\.zarr\/0\/0\/0\/0: chunk holds 10 bytes, its shape 4×4×4 of uint8 needs 64/);
});

test("a missing slice in a TIFF folder", async () => {
  const d = join(dir, "planes_gap");
  mkdirSync(d);
  for (const f of readdirSync(join(FIX, "tf_planes"))) copyFileSync(join(FIX, "tf_planes", f), join(d, f));
  rmSync(join(d, "slice_5.tif"));
  await rejects(d, /missing slice between slice_4\.tif and slice_6\.tif/);
});

test("mismatched slice sizes in a TIFF folder", async () => {
  const d = join(dir, "planes_size");
  await writeVolume(d, pattern("uint16", [3, 6, 7]));
  await writeVolume(join(dir, "other"), pattern("uint16", [1, 6, 8]));
  renameSync(join(dir, "other", "z0000.tif"), join(d, "z0003.tif"));
  await assert.rejects(readVolume(d), /planes_size\/z0003\.tif: slice is 8×6 but .*z0000\.tif is 7×6 \(mismatched slice sizes\)/);
});

test("not a volume at all, or no such file", async () => {
  const p = join(dir, "text.nii");
  writeFileSync(p, "hello, this is not a NIfTI header at all");
  await rejects(p, /not a NIfTI file/);
  await rejects(join(dir, "absent.mha"), /file not found/);
  const t = join(dir, "text.tif");
  writeFileSync(t, "plain text");
  await rejects(t, /not a TIFF file/);
  await assert.rejects(readVolume(join(dir, "x.png")), /x\.png: unknown volume format/);
});

test("a failed write leaves no file under the final name", async () => {
  const p = join(dir, "sub", "never.tif");
  await assert.rejects(writeVolume(p, { ...pattern("uint8", [2, 2, 2]), shape: [3, 2, 2] }));
  assert.deepEqual(readdirSync(join(dir, "sub")), []);
});

test("a sink aborted before its file was open leaves no temporary behind", async () => {
  // the write stream opens its file asynchronously; an abort right after creation (a source that fails at its
  // first read) must wait for that open, else the file appears after the temporary was removed
  const out = join(dir, "aborted");
  mkdirSync(out);
  for (const name of ["a.nii", "b.nii.gz", "c.mha", "d.tif", "e.ome.zarr"]) {
    for (let k = 0; k < 20; k++) {
      const sink = await createVolume(join(out, name), pattern("uint8", [2, 2, 2]));
      await sink.abort();
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 50)); // any late open would have created its file by now
  assert.deepEqual(readdirSync(out), []);
});
