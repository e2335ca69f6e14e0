#!/usr/bin/env node
// Builds the real-data SSL experiment's folders (docs/experiments.md) from ../shared/realdata/ into data/realdata/
// (git-ignored), in the layout `lsmseg experiment ssl` reads:
//   data/realdata/exp/       annotated/{images,labels}/ (the training parts), test/{images,labels}/ (held out),
//                            dataset.json (structure types; labels {background 0, foreground 1, ignore 2})
//   data/realdata/real/      the unannotated real chunks cut into patches by `lsmseg curate`
//   data/realdata/synth/     `lsmseg synth --preset demo` (its unannotated/ is the phantom pretraining set)
//   data/realdata/both/      unannotated/ = the real and the synthetic structure folders together (symbolic links)
// Annotated volumes are split, never shared between training and test:
//   vessels (VesselExpress, 100³, full mask {0, 255}):  z 0–59 train, z 60–99 test
//   axons (TRAILMAP, 101×120×120, labelled on z-planes 17, 48, 77 only; 0 not labelled, 1 background, 2 axon,
//   4 axon edge): x 0–79 train, x 80–119 test, so both parts keep all three labelled planes.
// Usage: node scripts/make-realdata-experiment.mjs [--real ../shared/realdata] [--out data/realdata]
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { register } from "tsx/esm/api";

register();
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { real: { type: "string" }, out: { type: "string" } } });
const real = resolve(values.real ?? join(root, "..", "shared", "realdata"));
const out = resolve(values.out ?? join(root, "data", "realdata"));
const { readVolume, writeVolume } = await import("../src/io/index.ts");
const { applyLabelMap, parseLabelMap, IGNORE_LABEL } = await import("../src/data/labels.ts");

const lsmseg = (args) => {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join(root, "bin", "lsmseg.js"), ...args], { stdio: ["ignore", "ignore", "inherit"] });
  if (r.status !== 0) throw new Error(`lsmseg ${args.join(" ")} failed (${r.status})`);
  console.log(`lsmseg ${args.slice(0, 1)}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
};

/** The box [z0, z1) × [y0, y1) × [x0, x1) of a volume, as a new volume of the same header. */
function crop(vol, [z0, z1], [y0, y1], [x0, x1], data = vol.data) {
  const [, ny, nx] = vol.shape;
  const shape = [z1 - z0, y1 - y0, x1 - x0];
  const outData = new data.constructor(shape[0] * shape[1] * shape[2]);
  let k = 0;
  for (let z = z0; z < z1; z++) for (let y = y0; y < y1; y++) {
    const src = (z * ny + y) * nx;
    outData.set(data.subarray(src + x0, src + x1), k);
    k += shape[2];
  }
  return { dtype: vol.dtype, shape, spacingUm: vol.spacingUm, data: outData };
}

/** lsmseg labels (0, 1, IGNORE_LABEL) as the files' 0, 1, 2. */
function asFileLabels(mapped) {
  const o = new Uint8Array(mapped.length);
  for (let i = 0; i < o.length; i++) o[i] = mapped[i] === IGNORE_LABEL ? 2 : mapped[i];
  return o;
}

const t0 = performance.now();
// 1. the annotated volumes, split into training and held-out test parts
const exp = join(out, "exp");
rmSync(exp, { recursive: true, force: true });
for (const split of ["annotated", "test"]) for (const d of ["images", "labels"]) mkdirSync(join(exp, split, d), { recursive: true });
const write = async (split, name, image, label) => {
  await writeVolume(join(exp, split, "images", `${name}.nii.gz`), image);
  await writeVolume(join(exp, split, "labels", `${name}.nii.gz`), { ...label, dtype: "uint8" });
};
{
  const img = await readVolume(join(real, "vesselexpress_vessels_100.tif"));
  const mask = await readVolume(join(real, "vesselexpress_vessels_100_mask.tif"));
  const lab = asFileLabels(applyLabelMap(mask.data, null));
  const all = [0, img.shape[1]], allX = [0, img.shape[2]];
  await write("annotated", "blood_vessel_0", crop(img, [0, 60], all, allX), crop(mask, [0, 60], all, allX, lab));
  await write("test", "blood_vessel_1", crop(img, [60, 100], all, allX), crop(mask, [60, 100], all, allX, lab));
}
{
  const img = await readVolume(join(real, "trailmap_axons.tif"));
  const labels = await readVolume(join(real, "trailmap_axons_labels.tif"));
  const lab = asFileLabels(applyLabelMap(labels.data, parseLabelMap("0=ignore,1=background,2=axon,4=axon")));
  const allZ = [0, img.shape[0]], allY = [0, img.shape[1]];
  await write("annotated", "axonalmarker_0", crop(img, allZ, allY, [0, 80]), crop(labels, allZ, allY, [0, 80], lab));
  await write("test", "axonalmarker_1", crop(img, allZ, allY, [80, 120]), crop(labels, allZ, allY, [80, 120], lab));
}
writeFileSync(join(exp, "dataset.json"), JSON.stringify({
  name: "lsmseg real-data SSL experiment (VesselExpress vessels, TRAILMAP axons)",
  sources: { blood_vessel: "RUB-Bioinf/VesselExpress (GPL-3.0)", axonalmarker: "albert597/TRAILMAP (MIT)" },
  structures: {
    blood_vessel: { category: "contiguous", density: "dense", role: "annotated" },
    axonalmarker: { category: "contiguous", density: "sparse", role: "annotated" },
  },
  labels: { background: 0, foreground: 1, ignore: 2 },
}, null, 2) + "\n");

// 2. the unannotated real chunks, cut into patches by lsmseg curate (one type per source)
const realOut = join(out, "real");
rmSync(realOut, { recursive: true, force: true });
// minimum tissue fraction: the mesoSPIM crop is a small piece of tissue whose Otsu mask marks its cells only,
// so its tiles would all be rejected as "background"
const chunks = [
  ["trailmap_raw_planes", "idisco_axon_chunk", "contiguous", "0.2"],
  ["cellseg3d_mesospim_c5.tif", "mesospim_cells", "isolated", "0"],
  ["cellfinder_planes", "cellfinder_cells", "isolated", "0.2"],
];
for (const [input, type, category, minTissue] of chunks) {
  rmSync(join(out, "curate", type), { recursive: true, force: true });
  lsmseg(["curate", "--in", join(real, input), "--out", join(out, "curate", type), "--patch", "30,60,60", "--type", type, "--category", category,
    "--workers", "1", "--quiet", "--min-tissue", minTissue]);
  const from = join(out, "curate", type, "unannotated", `${category}_structures`, type);
  if (!existsSync(from)) { console.log(`${input}: curate kept no patch`); continue; }
  mkdirSync(join(realOut, "unannotated", `${category}_structures`), { recursive: true });
  symlinkSync(from, join(realOut, "unannotated", `${category}_structures`, type));
}

// 3. the phantoms' unannotated set, and both sets together
const synth = join(out, "synth");
if (!existsSync(join(synth, "unannotated"))) lsmseg(["synth", "--out", synth, "--preset", "demo", "--quiet"]);
const both = join(out, "both");
rmSync(both, { recursive: true, force: true });
for (const src of [join(realOut, "unannotated"), join(synth, "unannotated")]) {
  for (const cat of readdirSync(src).filter((d) => d.endsWith("_structures"))) {
    mkdirSync(join(both, "unannotated", cat), { recursive: true });
    for (const type of readdirSync(join(src, cat))) symlinkSync(resolve(src, cat, type), join(both, "unannotated", cat, type));
  }
}
const count = (dir) => {
  let n = 0;
  (function walk(d) { for (const e of readdirSync(d, { withFileTypes: true })) { const p = join(d, e.name); if (e.isDirectory() || e.isSymbolicLink()) { if (!e.name.endsWith(".json")) { try { walk(p); } catch { /* a file link */ } } } else if (/^patchvolume_\d+\./.test(e.name)) n++; } })(dir);
  return n;
};
console.log(`patches: real ${count(join(realOut, "unannotated"))}, synthetic ${count(join(synth, "unannotated"))}, both ${count(join(both, "unannotated"))}`);
console.log(`${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
