// lsmseg's Zarr reader on bad metadata, and its writer: origin into the OME-NGFF translation, blosc/zstd
// chunks, and a mask as an OME-NGFF image-label group (read back by lsmseg here and by zarr-python below).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type Vec3, formatOf, makeVolume, openVolume, readRegion, readVolume, writeVolume } from "../../src/io/index.ts";
import { convertVolume } from "../../src/cli/convert.ts";
import { pattern, sameVoxels } from "./pattern.ts";

const dir = mkdtempSync(join(tmpdir(), "lsmseg-zarr-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function zarray(name: string, meta: Record<string, unknown>): string {
  const p = join(dir, name);
  mkdirSync(p, { recursive: true });
  writeFileSync(join(p, ".zarray"), JSON.stringify({ zarr_format: 2, dtype: "<u2", compressor: null, fill_value: 0, order: "C", filters: null, ...meta }));
  return p;
}

test("a chunk shape of 0 is refused, naming the file and field", async () => {
  const p = zarray("zero.zarr", { shape: [4, 4, 4], chunks: [0, 4, 4] });
  await assert.rejects(readVolume(p), /zero\.zarr\/\.zarray: chunks must be an array of 3 positive integers, got \[0,4,4\]/);
  const v3 = join(dir, "zero3.zarr");
  mkdirSync(v3);
  writeFileSync(join(v3, "zarr.json"), JSON.stringify({ zarr_format: 3, node_type: "array", shape: [4, 4, 4], data_type: "uint8", chunk_grid: { name: "regular", configuration: { chunk_shape: [4, 0, 4] } }, codecs: [{ name: "bytes" }], fill_value: 0 }));
  await assert.rejects(readVolume(v3), /zero3\.zarr\/zarr\.json: chunk_grid\.configuration\.chunk_shape must be an array of 3 positive integers/);
});

test("a shape given as a string is refused, naming the file and field", async () => {
  const p = zarray("strshape.zarr", { shape: "4,4,4", chunks: [4, 4, 4] });
  await assert.rejects(readVolume(p), /strshape\.zarr\/\.zarray: shape must be an array of the array's rank in non-negative integers, got "4,4,4"/);
});

test("an array too large to read whole is refused with its numbers, not a heap abort", async () => {
  // a shape no reader can hold is refused when the store is opened (src/io/index.ts)
  await assert.rejects(openVolume(zarray("huger.zarr", { shape: [2, 3e9, 3e9], chunks: [1, 1000, 1000] })), /huger\.zarr: the header's shape 2×3000000000×3000000000 is not three sizes/);
  const p = zarray("huge.zarr", { shape: [2, 1e6, 1e6], chunks: [1, 1000, 1000] });
  const src = await openVolume(p);
  assert.deepEqual(src.header.shape, [2, 1e6, 1e6]);
  await assert.rejects(src.readRegion({ start: [0, 0, 0], size: [2, 1e6, 1e6] }), /a region of 2×1000000×1000000 uint16 voxels needs 3725\.3 GiB, more than this machine's/);
  // a small region of it reads (missing chunks are the fill value)
  const r = await src.readRegion({ start: [1, 5, 5], size: [1, 2, 2] });
  assert.deepEqual([...r.data], [0, 0, 0, 0]);
  // convert names the input, not the output
  await assert.rejects(convertVolume(p, join(dir, "out.nii"), { quiet: true }), /huge\.zarr: a region of 1×1000000×1000000/);
});

test("errors about a bad .zarray name the input, not the output", async () => {
  const p = zarray("bad.zarr", { shape: [4, 4], chunks: [4, 4] });
  await assert.rejects(convertVolume(p, join(dir, "x.nii.gz"), { quiet: true }), (err: Error) => err.message.includes("bad.zarr") && !err.message.includes("x.nii.gz"));
});

test("--level, --channel and --series are checked against what the store has", async () => {
  const FIX = join(import.meta.dirname, "../../fixtures/io/public");
  await assert.rejects(openVolume(join(FIX, "v2_default_pyramid.ome.zarr"), { level: 2 }), /--level 2 does not exist \(the pyramid has levels 0…1\)/);
  await assert.rejects(openVolume(join(FIX, "v2_two_channels.ome.zarr")), /the image has 2 channels \(axis c\); choose one with --channel 0…1/);
  await assert.rejects(openVolume(join(FIX, "bioformats2raw.zarr"), { series: 2 }), /--series 2 does not exist \(bioformats2raw series 0…1\)/);
  await assert.rejects(openVolume(join(FIX, "v2_zlib.zarr"), { series: 1 }), /--series applies to a bioformats2raw layout/);
  await assert.rejects(openVolume(join(FIX, "ome_two_channels.ome.tif")), /the OME-TIFF has 2 channels \(2 channels, 8 slices, 1 time points\); choose one with --channel 0…1/);
  await assert.rejects(openVolume(join(FIX, "ome_two_times.ome.tif"), {}), /has 2 time points/);
});

test("the writer puts the origin into the translation and writes blosc and zstd chunks that read back exactly", async () => {
  const vol = { ...pattern("uint16", [9, 10, 11], [2, 0.5, 0.25]), originUm: [100, -20, 3] as Vec3 };
  for (const [codec, zarrVersion] of [["blosc", 2], ["zstd", 2], ["blosc", 3], ["zstd", 3]] as const) {
    const p = join(dir, `w_${codec}_${zarrVersion}.ome.zarr`);
    await writeVolume(p, vol, { zarrCompression: codec, zarrVersion, chunks: [4, 4, 4] });
    const back = await readVolume(p);
    assert.ok(sameVoxels(back.data, vol.data), `${codec} v${zarrVersion}`);
    assert.deepEqual(back.originUm, [100, -20, 3]);
    assert.deepEqual(back.spacingUm, [2, 0.5, 0.25]);
    const l1 = await readVolume(p, { level: 1 });
    assert.deepEqual(l1.shape, [5, 5, 6]);
    assert.deepEqual(l1.spacingUm, [4, 1, 0.5]);
    assert.deepEqual(l1.originUm, [101, -19.75, 3.125]); // (2^k − 1)/2 voxels: the centre of a 2×2×2 mean
    const region = await readRegion(p, { start: [3, 2, 5], size: [4, 5, 6] });
    const want = (await readVolume(p)).data;
    for (let z = 0; z < 4; z++) for (let y = 0; y < 5; y++) for (let x = 0; x < 6; x++) {
      assert.equal(region.data[(z * 5 + y) * 6 + x], want[((z + 3) * 10 + y + 2) * 11 + x + 5]);
    }
  }
});

test("a mask with its image is an OME-NGFF image-label group, downsampled by nearest neighbour", async () => {
  const image = { ...pattern("uint16", [8, 8, 8], [2, 1, 1]), originUm: [5, 6, 7] as Vec3 };
  const mask = makeVolume("uint8", [8, 8, 8], [2, 1, 1]);
  for (let i = 0; i < mask.data.length; i++) mask.data[i] = i % 3 === 0 ? 1 : 0;
  for (const zarrVersion of [2, 3] as const) {
    const p = join(dir, `labels_${zarrVersion}.ome.zarr`);
    await writeVolume(p, { ...mask, originUm: image.originUm }, { labelImage: image, labelName: "mask", zarrVersion, chunks: [4, 4, 4] });
    const attrs = (f: string) => {
      const j = JSON.parse(readFileSync(join(p, f, zarrVersion === 2 ? ".zattrs" : "zarr.json"), "utf8"));
      return zarrVersion === 2 ? j : j.attributes.ome;
    };
    assert.deepEqual(attrs("labels").labels, ["mask"]);
    const label = attrs("labels/mask");
    assert.deepEqual(label["image-label"].source, { image: "../../" });
    assert.deepEqual(label["image-label"].colors[0]["label-value"], 1);
    if (zarrVersion === 2) assert.equal(label["image-label"].version, "0.4");
    assert.equal(label.multiscales[0].type, "nearest");
    const back = await readVolume(join(p, "labels", "mask"));
    assert.ok(sameVoxels(back.data, mask.data));
    assert.deepEqual(back.originUm, [5, 6, 7]);
    assert.deepEqual(back.spacingUm, [2, 1, 1]);
    const l1 = await readVolume(join(p, "labels", "mask"), { level: 1 });
    for (let z = 0; z < 4; z++) for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) {
      assert.equal(l1.data[(z * 4 + y) * 4 + x], mask.data[(2 * z * 8 + 2 * y) * 8 + 2 * x]);
    }
    assert.ok(sameVoxels((await readVolume(p)).data, image.data));
  }
});

test("a mask written to IMAGE/labels/NAME of an existing OME-Zarr image goes in as its image-label, listed in labels/", async () => {
  const image = pattern("uint16", [8, 8, 8], [2, 1, 1]);
  const mask = makeVolume("uint8", [8, 8, 8], [2, 1, 1]);
  for (let i = 0; i < mask.data.length; i++) mask.data[i] = i % 5 === 0 ? 1 : 0;
  for (const zarrVersion of [2, 3] as const) {
    const p = join(dir, `host_${zarrVersion}.ome.zarr`);
    await writeVolume(p, image, { zarrVersion, chunks: [4, 4, 4] });
    const attrs = (f: string) => {
      const j = JSON.parse(readFileSync(join(p, f, zarrVersion === 2 ? ".zattrs" : "zarr.json"), "utf8"));
      return zarrVersion === 2 ? j : j.attributes.ome;
    };
    assert.equal(formatOf(join(p, "labels", "cells")), "zarr", "a label path without an extension is a Zarr");
    await writeVolume(join(p, "labels", "cells"), mask); // no option: the path says where it goes
    await writeVolume(join(p, "labels", "nuclei"), mask);
    assert.deepEqual(attrs("labels").labels, ["cells", "nuclei"]);
    const label = attrs("labels/cells");
    assert.deepEqual(label["image-label"].source, { image: "../../" });
    assert.equal(label.multiscales[0].type, "nearest");
    assert.equal(existsSync(join(p, "labels", "cells", zarrVersion === 2 ? ".zattrs" : "zarr.json")), true, `Zarr v${zarrVersion} like its image`);
    assert.ok(sameVoxels((await readVolume(join(p, "labels", "cells"))).data, mask.data));
    assert.ok(sameVoxels((await readVolume(p)).data, image.data), "the image is untouched");
    await writeVolume(join(p, "labels", "cells"), mask); // written again: listed once
    assert.deepEqual(attrs("labels").labels, ["cells", "nuclei"]);
    const small = makeVolume("uint8", [4, 8, 8]);
    await assert.rejects(writeVolume(join(p, "labels", "small"), small), /labels\/small: a label of 4×8×8 voxels cannot go into .*host_\d\.ome\.zarr, whose image is 8×8×8/);
    assert.equal(existsSync(join(p, "labels", "small")), false);
  }
});

const python = "/usr/bin/python3";
const hasZarr = spawnSync(python, ["-c", "import zarr, numcodecs"]).status === 0;

test("zarr-python reads lsmseg's blosc and zstd OME-Zarr 0.4 and its labels group", { skip: hasZarr ? false : "python3-zarr not installed" }, async () => {
  const vol = pattern("uint16", [9, 10, 11]);
  const p = join(dir, "py.ome.zarr");
  const mask = makeVolume("uint8", [9, 10, 11]);
  for (let i = 0; i < mask.data.length; i++) mask.data[i] = vol.data[i] % 5 === 0 ? 1 : 0;
  await writeVolume(p, mask, { labelImage: vol, zarrCompression: "blosc", chunks: [4, 4, 4] });
  const pz = join(dir, "pyz.ome.zarr");
  await writeVolume(pz, vol, { zarrCompression: "zstd", chunks: [4, 4, 4] });
  await writeVolume(join(pz, "labels", "cells"), mask); // a label into the existing image
  const script = `
import sys, zarr, numpy as np
g = zarr.open_group(sys.argv[1], mode="r"); h = zarr.open_group(sys.argv[2], mode="r")
img, lab, z = g["0"][:], g["labels/mask/0"][:], h["0"][:]
print(int(img.astype(np.int64).sum()), int(lab.sum()), int(z.astype(np.int64).sum()), g["0"].compressor.codec_id, h["0"].compressor.codec_id,
      ",".join(h["labels"].attrs["labels"]), int(h["labels/cells/0"][:].sum()), h["labels/cells"].attrs["image-label"]["source"]["image"])`;
  const r = spawnSync(python, ["-c", script, p, pz], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const sum = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0);
  assert.equal(r.stdout.trim(), `${sum(vol.data)} ${sum(mask.data)} ${sum(vol.data)} blosc zstd cells ${sum(mask.data)} ../../`);
});

test("codecs, filters and dtypes zarrita cannot decode are refused at open, naming the file and field", async () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ["bz2.zarr", { compressor: { id: "bz2", level: 1 } }, /bz2\.zarr\/\.zarray: compressor "bz2" is not supported; lsmseg reads blosc, zstd, lz4, gzip, zlib or none/],
    ["i8.zarr", { dtype: "<i8" }, /i8\.zarr\/\.zarray: dtype "<i8" is not supported/],
    ["f16.zarr", { dtype: "<f2" }, /f16\.zarr\/\.zarray: dtype "<f2" is not supported/],
    ["forder.zarr", { order: "F" }, /forder\.zarr\/\.zarray: order "F"/],
    ["filt.zarr", { filters: [{ id: "fixedscaleoffset", offset: 0, scale: 1, dtype: "<u2" }] }, /filt\.zarr\/\.zarray: filter "fixedscaleoffset" is not supported/],
  ];
  for (const [name, meta, re] of cases) await assert.rejects(readVolume(zarray(name, { shape: [2, 2, 2], chunks: [2, 2, 2], ...meta })), re);
  await assert.rejects(openVolume("https://example.org/a.tif"), /over HTTP\(S\) lsmseg reads OME-Zarr stores only/);
});
