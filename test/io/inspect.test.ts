// lsmseg inspect FILE|URL: a single volume's description, against the fixture's known layout and percentiles
// computed here the slow obvious way (sort every voxel); folders keep the dataset fingerprint.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { describeVolume } from "../../src/io/describe.ts";
import { readVolume } from "../../src/io/index.ts";
import { run } from "../../src/cli/inspect.ts";

const FIX = join(import.meta.dirname, "../../fixtures/io/public");

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

test("inspect describes a pyramid OME-Zarr: format, geometry, chunks, codec, levels, percentiles", async () => {
  const p = join(FIX, "v2_default_pyramid.ome.zarr");
  const d = await describeVolume(p);
  assert.equal(d.format, "OME-Zarr 0.4");
  assert.deepEqual([d.shape, d.dtype, d.spacingUm, d.originUm], [[8, 16, 16], "uint16", [2, 0.5, 0.5], [10, 20, 30]]);
  assert.deepEqual([d.chunks, d.codec, d.pyramidLevels, d.channels], [[4, 8, 8], "blosc(lz4, shuffle 1)", 2, 1]);
  const all = Array.from((await readVolume(p)).data);
  assert.equal(d.intensity.sampledVoxels, all.length); // 8 small planes: all sampled
  for (const [k, q] of [["p0_5", 0.005], ["p50", 0.5], ["p99_5", 0.995]] as const) assert.ok(Math.abs(d.intensity[k] - quantile(all, q)) < 1e-9, k);
  assert.equal(d.intensity.max, Math.max(...all));
});

test("inspect names a TIFF's channels and the chosen one's spacing", async () => {
  const d = await describeVolume(join(FIX, "ome_two_channels.ome.tif"), { channel: 1 });
  assert.deepEqual([d.format, d.channels, d.spacingUm], ["OME-TIFF", 2, [2, 0.5, 0.5]]);
});

test("inspect FILE --json prints one JSON object; a folder of a dataset still gets the fingerprint", async () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(s);
  try {
    assert.equal(await run([join(FIX, "v3_zstd.ome.zarr"), "--json"]), 0);
  } finally {
    console.log = log;
  }
  const j = JSON.parse(lines.join("\n"));
  assert.equal(j.codec, "bytes+zstd");
  assert.deepEqual(j.originUm, [5, 0, -3]);
});
