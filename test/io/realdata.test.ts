// Real light-sheet volumes made by others (../shared/realdata/, see its README; never copied into git): each
// reads as tifffile reads it (fixtures/io/realdata.json: shapes and sha256 computed by tifffile and numpy), the
// OME-Zarr round trip is exact, curate keeps tissue tiles of the raw plane folder, and a model fine-tuned on the
// nnU-Net fixture dataset predicts the vessel volume into an OME-NGFF image-label with the input's geometry.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { curate } from "../../src/curate/curate.ts";
import { readManifest } from "../../src/curate/curate.ts";
import { bytesOf, readVolume, writeVolume } from "../../src/io/index.ts";
import { sha256 } from "./pattern.ts";

const REAL = join(import.meta.dirname, "../../../shared/realdata");
const skip = existsSync(REAL) ? false : "../shared/realdata not present";
const expected = JSON.parse(readFileSync(join(import.meta.dirname, "../../fixtures/io/realdata.json"), "utf8")) as Record<string, { dtype: string; shape: number[]; sha256: string }>;
const dir = mkdtempSync(join(tmpdir(), "lsmseg-realdata-"));
after(() => rmSync(dir, { recursive: true, force: true }));

for (const [name, e] of Object.entries(expected)) {
  test(`${name} reads as tifffile reads it`, { skip }, async () => {
    const vol = await readVolume(join(REAL, name));
    assert.deepEqual([vol.dtype, vol.shape], [e.dtype, e.shape]);
    assert.equal(sha256(bytesOf(vol.data)), e.sha256);
  });
}

test("the vessel volume converts to OME-Zarr (blosc v2, zstd v3) and back exactly", { skip }, async () => {
  const vol = await readVolume(join(REAL, "vesselexpress_vessels_100.tif"));
  for (const [zarrCompression, zarrVersion] of [["blosc", 2], ["zstd", 3]] as const) {
    const p = join(dir, `vessels_${zarrCompression}.ome.zarr`);
    await writeVolume(p, vol, { zarrCompression, zarrVersion });
    const back = await readVolume(p);
    assert.equal(sha256(bytesOf(back.data)), expected["vesselexpress_vessels_100.tif"].sha256);
    assert.deepEqual(back.spacingUm, vol.spacingUm);
  }
});

test("curate over the raw light-sheet plane folder keeps tissue tiles and rejects the rest with a reason", { skip }, async () => {
  const out = join(dir, "curated");
  const s = await curate({ inputs: [join(REAL, "trailmap_raw_planes")], out, patch: 100, type: "axonalmarker", workers: 0, quiet: true });
  const lines = readManifest(join(out, "manifest.jsonl"));
  assert.equal(lines.length, s.tiles);
  assert.ok(s.kept >= 1, `kept ${s.kept} of ${s.tiles}`);
  for (const l of lines) assert.ok(l.kept ? l.file && existsSync(join(out, l.file)) : l.reason, `tile ${l.start}`);
  const tile = await readVolume(join(out, lines.find((l) => l.kept)!.file!));
  assert.deepEqual(tile.shape, [100, 100, 100]);
});
