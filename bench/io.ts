// Volume I/O speed: write and read a 300³ uint16 volume as .nii.gz, .mha (zlib) and OME-Zarr (64³ chunks,
// zlib, with pyramid), read a 64³ region of each, and in the same run nibabel's time for the same .nii.gz
// (skipped with a note when python3-nibabel is absent) and plain gunzip of it (node's zlib and gzip -dc).
//   npm run bench -- io [SIDE]
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { type Vec3, makeVolume, readRegion, readVolume, writeVolume } from "../src/io/index.ts";
import { lowFrequency } from "../src/synth/physics.ts";
import { Rng } from "../src/synth/rng.ts";
import { machine, median, round } from "./common.ts";

const side = Number(process.argv[2] ?? 300);
const shape: Vec3 = [side, side, side];
const reps = 3;
const dir = mkdtempSync(join(tmpdir(), "lsmseg-bench-io-"));

async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    t.push((performance.now() - t0) / 1000);
  }
  return median(t);
}

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
console.log(`io: ${side}³ uint16 (${mb} MiB), median of ${reps}; ${machine()}, node ${process.version}`);

const results: Record<string, number | string | null> = {};
const box = { start: [side / 2 - 32, side / 2 - 32, side / 2 - 32] as Vec3, size: [64, 64, 64] as Vec3 };
for (const [name, file] of [["nii_gz", "v.nii.gz"], ["mha", "v.mha"], ["zarr", "v.zarr"]]) {
  const path = join(dir, file);
  const w = await time(() => writeVolume(path, vol));
  const r = await time(() => readVolume(path));
  const rr = await time(() => readRegion(path, box));
  results[`${name}_write_s`] = round(w, 3);
  results[`${name}_read_s`] = round(r, 3);
  results[`${name}_region64_s`] = round(rr, 3);
  results[`${name}_mb`] = round(sizeOf(path) / 2 ** 20, 1);
  console.log(`  ${file.padEnd(9)} write ${w.toFixed(2)} s  read ${r.toFixed(2)} s (${(Number(mb) / r).toFixed(0)} MiB/s)  64³ region ${rr.toFixed(3)} s  size ${(sizeOf(path) / 2 ** 20).toFixed(1)} MiB`);
}

const gz = join(dir, "v.nii.gz");
const gzBytes = readFileSync(gz);
const gunzipNode = await time(() => gunzipSync(gzBytes));
const gunzipCli = await time(() => spawnSync("sh", ["-c", `gzip -dc '${gz}' > /dev/null`]));
results.gunzip_node_s = round(gunzipNode, 3);
results.gunzip_cli_s = round(gunzipCli, 3);
console.log(`  plain gunzip of v.nii.gz: node zlib ${gunzipNode.toFixed(2)} s, gzip -dc ${gunzipCli.toFixed(2)} s`);

const py = `
import sys, time, numpy as np, nibabel as nib
p = sys.argv[1]
t = []
for _ in range(${reps}):
    t0 = time.perf_counter(); a = np.asanyarray(nib.load(p).dataobj); t.append(time.perf_counter() - t0)
r = sorted(t)[len(t) // 2]
t = []
for _ in range(${reps}):
    t0 = time.perf_counter(); nib.save(nib.Nifti1Image(a, np.eye(4)), sys.argv[2]); t.append(time.perf_counter() - t0)
print(r, sorted(t)[len(t) // 2], nib.__version__)
`;
const nib = spawnSync("/usr/bin/python3", ["-c", py, gz, join(dir, "nib.nii.gz")], { encoding: "utf8" });
if (nib.status === 0) {
  const [r, w, version] = nib.stdout.trim().split(/\s+/);
  results.nibabel_read_s = round(Number(r), 3);
  results.nibabel_write_s = round(Number(w), 3);
  results.nibabel_version = version;
  console.log(`  nibabel ${version}: read v.nii.gz ${Number(r).toFixed(2)} s, write ${Number(w).toFixed(2)} s (its default gzip level)`);
} else {
  results.nibabel_read_s = null;
  console.log("  (nibabel skipped: /usr/bin/python3 with python3-nibabel not found)");
}
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ bench: "io", side, machine: machine(), node: process.version, ...results }));
