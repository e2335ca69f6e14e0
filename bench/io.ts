// Volume I/O speed: write and read a 300³ uint16 volume as .nii.gz, .mha (zlib) and OME-Zarr (64³ chunks,
// zlib, with pyramid), read a 64³ region of each, and in the same run nibabel's time for the same .nii.gz
// (skipped with a note when python3-nibabel is absent) and plain gunzip of it (node's zlib and gzip -dc). The shared
// method (bench/common.ts): a warm-up, then interleaved repetitions, minima and medians; nibabel runs as shipped and
// with lsmseg's heap settings, and `ratio` is lsmseg's .nii.gz read over the fair nibabel read, minima.
//   npm run bench -- io [SIDE] [--reps 5]
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { type Vec3, makeVolume, readRegion, readVolume, writeVolume } from "../src/io/index.ts";
import { lowFrequency } from "../src/synth/physics.ts";
import { Rng } from "../src/synth/rng.ts";
import { Peer, benchArgs, compare, interleave, load, machine, round, seconds } from "./common.ts";

const { positionals, reps } = benchArgs("io", {});
const side = Number(positionals[0] ?? 300);
const shape: Vec3 = [side, side, side];
const dir = mkdtempSync(join(tmpdir(), "lsmseg-bench-io-"));

function sizeOf(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((s, f) => s + sizeOf(join(path, f)), 0);
}

// LSM-like content (smooth background, Poisson noise), so compression works as hard as on real data
const rng = new Rng("bench/io");
const tex = lowFrequency(rng, shape, 20);
const vol = makeVolume("uint16", shape);
for (let i = 0; i < vol.data.length; i++) vol.data[i] = 100 + 2 * rng.poisson(20 + 200 * tex[i] * tex[i]);
const mb = (vol.data.byteLength / 2 ** 20).toFixed(0);
console.log(`io: ${side}³ uint16 (${mb} MiB), minimum and median of ${reps} after a warm-up; ${machine()}, node ${process.version}; load ${load().join(" ")}`);

const results: Record<string, unknown> = {};
const box = { start: [side / 2 - 32, side / 2 - 32, side / 2 - 32] as Vec3, size: [64, 64, 64] as Vec3 };
const gz = join(dir, "v.nii.gz");
await writeVolume(gz, vol);
// .nii.gz against nibabel, read and write
const needs = ["numpy", "nibabel"];
const peer = await Peer.start("nibabel", "io", [gz, join(dir, "nib.nii.gz")], { needs, anchors: false });
const fair = peer ? await Peer.start("nibabel (fair)", "io", [gz, join(dir, "nib.nii.gz")], { needs, anchors: false, fair: true }) : null;
results.nii_gz_read = await compare("read .nii.gz", () => seconds(() => readVolume(gz)), peer, fair, reps, { task: "read" });
results.nii_gz_write = await compare("write .nii.gz", () => seconds(() => writeVolume(join(dir, "w.nii.gz"), vol)), peer, fair, reps, { task: "write" });
peer?.close();
fair?.close();
// the other formats and plain gunzip, lsmseg alone
const sides = [];
for (const [name, file] of [["mha", "v.mha"], ["zarr", "v.zarr"]]) {
  const path = join(dir, file);
  await writeVolume(path, vol);
  sides.push({ label: `${name}_write`, rep: () => seconds(() => writeVolume(path, vol)) });
  sides.push({ label: `${name}_read`, rep: () => seconds(() => readVolume(path)) });
  sides.push({ label: `${name}_region64`, rep: () => seconds(() => readRegion(path, box)) });
}
sides.push({ label: "nii_gz_region64", rep: () => seconds(() => readRegion(gz, box)) });
const gzBytes = readFileSync(gz);
sides.push({ label: "gunzip_node", rep: () => seconds(() => gunzipSync(gzBytes)) });
sides.push({ label: "gunzip_cli", rep: () => seconds(() => spawnSync("sh", ["-c", `gzip -dc '${gz}' > /dev/null`])) });
console.log(`  other formats and plain gunzip: warm-up, then ${reps} interleaved repetitions`);
const other = await interleave(sides, reps, { quiet: true });
for (const [name, file] of [["nii_gz", "v.nii.gz"], ["mha", "v.mha"], ["zarr", "v.zarr"]]) {
  results[`${name}_mb`] = round(sizeOf(join(dir, file)) / 2 ** 20, 1);
}
for (const [k, t] of Object.entries(other.times)) console.log(`  ${k.padEnd(16)} ${t.min.toFixed(3)} / ${t.median.toFixed(3)} s (min / median)`);
console.log(`  sizes: .nii.gz ${results.nii_gz_mb} MiB, .mha ${results.mha_mb} MiB, OME-Zarr ${results.zarr_mb} MiB`);
rmSync(dir, { recursive: true, force: true });
const read = results.nii_gz_read as { ratio: number | null };
console.log(JSON.stringify({ bench: "io", side, reps, machine: machine(), node: process.version, ratio: read.ratio, ...results, others: other.times, others_load: other.load }));
