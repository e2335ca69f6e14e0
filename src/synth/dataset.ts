// The synthetic SELMA3D-like dataset, in the challenge's layout and names:
//   unannotated/{isolated,contiguous}_structures/<type>/patchvolume_<n>.nii.gz   Task 1 pretraining patches
//   annotated/images/<prefix>_<id>.nii.gz, annotated/labels/<prefix>_<id>.nii.gz  fine-tuning
//   test/images/<prefix>_<id>.mha, test/labels/<prefix>_<id>.mha                  evaluation (with held-out types)
//   raw/<volume>/z0000.tif …  and raw/<volume>.ome.zarr                            Task 2 whole volumes
//   dataset.json                                                                   types, categories, splits
// Every file's content depends only on the seed and the file's own key, so the dataset is byte-identical
// for a seed whatever order or subset of it is generated.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic, tempPathFor } from "../util/atomic.ts";
import { swapFolderIn } from "../util/output.ts";
import { Progress } from "../util/progress.ts";
import { writeVolume } from "../io/index.ts";
import { type Vec3, makeVolume } from "../io/volume.ts";
import { type Shape3, blurAxis, makeCanvas } from "./draw.ts";
import { type Specimen, drawSpecimen, renderLsm } from "./physics.ts";
import { Rng } from "./rng.ts";
import { STRUCTURES, type StructureType } from "./structures.ts";

export interface SynthOptions {
  /** Patch shapes (z, y, x). */
  unannotatedShape: Shape3;
  annotatedShape: Shape3;
  /** Files per structure type. */
  unannotatedPerType: number;
  annotatedPerType: number;
  testPerType: number;
  /** Raw whole volumes (the first as a TIFF plane folder, the second as OME-Zarr, alternating), and their shape. */
  rawVolumes: number;
  rawShape: Shape3;
  /** Specimens (source volumes) per structure type: each has its own imaging physics. */
  specimensPerType: number;
  spacingUm: Vec3;
}

export const PRESETS: Record<"tiny" | "demo" | "challenge", SynthOptions> = {
  tiny: {
    unannotatedShape: [32, 32, 32], annotatedShape: [48, 48, 48],
    unannotatedPerType: 1, annotatedPerType: 2, testPerType: 1, rawVolumes: 2, rawShape: [32, 80, 80], specimensPerType: 2, spacingUm: [1, 1, 1],
  },
  demo: {
    unannotatedShape: [64, 64, 64], annotatedShape: [64, 64, 64],
    unannotatedPerType: 4, annotatedPerType: 6, testPerType: 3, rawVolumes: 2, rawShape: [64, 192, 192], specimensPerType: 3, spacingUm: [1, 1, 1],
  },
  challenge: {
    unannotatedShape: [300, 300, 300], annotatedShape: [200, 200, 200],
    unannotatedPerType: 20, annotatedPerType: 10, testPerType: 8, rawVolumes: 2, rawShape: [400, 1000, 1000], specimensPerType: 4,
    spacingUm: [1, 1, 1],
  },
};

export interface SynthEntry {
  type: string;
  specimen: string;
  shape: Shape3;
  image?: string;
  label?: string;
  path?: string;
  format?: string;
}

export interface DatasetJson {
  name: string;
  description: string;
  seed: number;
  preset: string;
  spacingUm: Vec3;
  structures: Record<string, { category: string; density: string; role: string; splits: string[]; description: string }>;
  categories: Record<string, string[]>;
  specimens: Record<string, Specimen & { type: string }>;
  splits: { unannotated: SynthEntry[]; annotated: SynthEntry[]; test: SynthEntry[]; raw: SynthEntry[] };
  generator: { tool: string; options: SynthOptions; physics: string };
}

/** One patch of a type: the rendered uint16 image and its uint8 label. */
export function synthPatch(
  seed: number, type: StructureType, specimen: Specimen, key: string, shape: Shape3,
): { image: Uint16Array; label: Uint8Array } {
  const rng = new Rng(`${seed}/${key}`);
  const cv = makeCanvas(shape);
  type.draw(rng, cv);
  return { image: renderLsm(cv, specimen, rng), label: cv.label };
}

function specimenFor(seed: number, type: string, k: number): Specimen {
  return drawSpecimen(new Rng(`${seed}/specimen/${type}/${k}`));
}

/** A tissue mask for a raw volume: a smooth, lumpy ellipsoid with a soft edge, empty background around it. */
function tissueMask(rng: Rng, shape: Shape3): Float32Array {
  const [nz, ny, nx] = shape;
  const m = new Float32Array(nz * ny * nx);
  const c = [nz / 2, ny / 2, nx / 2];
  const r = [nz * rng.uniform(0.42, 0.5), ny * rng.uniform(0.3, 0.4), nx * rng.uniform(0.3, 0.4)];
  const lobes = Array.from({ length: 5 }, () => [rng.uniform(0, 2 * Math.PI), rng.uniform(0.05, 0.15), rng.int(2, 5)]);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
    const a = Math.atan2(y - c[1], x - c[2]);
    const bump = 1 + lobes.reduce((s, [ph, amp, k]) => s + amp * Math.sin(k * a + ph), 0);
    const d = Math.hypot((z - c[0]) / r[0], (y - c[1]) / r[1], (x - c[2]) / r[2]) / bump;
    m[(z * ny + y) * nx + x] = d < 1 ? 1 : 0;
  }
  return blurAxis(blurAxis(m, shape, 2, 2), shape, 1, 2);
}

/** What synth writes in its output folder: the only entries it replaces in an existing one. */
export const SYNTH_OUTPUTS = ["unannotated", "annotated", "test", "raw", "dataset.json"];

/** Options of synthDataset: a preset, a seed, and any preset numbers to override. */
interface SynthDatasetOptions { preset?: keyof typeof PRESETS; seed?: number; overrides?: Partial<SynthOptions>; quiet?: boolean }

/** What the writers of the four splits share: where they write, the options, dataset.json being filled in. */
interface SynthContext {
  tmp: string;
  seed: number;
  o: SynthOptions;
  json: DatasetJson;
  progress: Progress;
  /** The specimen of the `index`-th patch of `t` (recorded in dataset.json's specimens when first used). */
  specimenOf: (t: StructureType, index: number) => { name: string; sp: Specimen };
}

/** dataset.json before any file: the structure types, categories and generator; the splits are filled in as written. */
function datasetJsonHead(presetName: string, seed: number, o: SynthOptions): DatasetJson {
  const json: DatasetJson = {
    name: "lsmseg-synth",
    description: "A synthetic light-sheet microscopy dataset in the layout of SELMA3D, generated by lsmseg synth",
    seed, preset: presetName, spacingUm: o.spacingUm,
    structures: {}, categories: {}, specimens: {},
    splits: { unannotated: [], annotated: [], test: [], raw: [] },
    generator: {
      tool: "lsmseg synth", options: o,
      physics: "labels are the objects before optics; images: autofluorescent low-frequency background, anisotropic Gaussian PSF (axial sigma grows away from the light-sheet waist along x), stripes along x, attenuation along z and x, Poisson photon noise + Gaussian read noise, uint16 with per-specimen gain and offset",
    },
  };
  for (const t of STRUCTURES) {
    const splits = t.role === "annotated" ? ["unannotated", "annotated", "test"] : t.role === "heldOut" ? ["test"] : ["unannotated"];
    json.structures[t.name] = { category: t.category, density: t.density, role: t.role, splits, description: t.description };
    (json.categories[`${t.category} ${t.density}`] ??= []).push(t.name);
  }
  return json;
}

/** unannotated/<category>_structures/<type>/patchvolume_<n>.nii.gz: images of every type but the held-out ones. */
async function writeUnannotated(c: SynthContext, types: StructureType[]): Promise<void> {
  const { o, tmp } = c;
  let n = 0;
  for (const t of types) {
    for (let i = 0; i < o.unannotatedPerType; i++) {
      const { name, sp: specimen } = c.specimenOf(t, i);
      const p = synthPatch(c.seed, t, specimen, `unannotated/${t.name}/${i}`, o.unannotatedShape);
      const rel = `unannotated/${t.category}_structures/${t.name}/patchvolume_${n++}.nii.gz`;
      await writeVolume(join(tmp, rel), makeVolume("uint16", o.unannotatedShape, o.spacingUm, p.image));
      c.json.splits.unannotated.push({ type: t.name, specimen: name, shape: o.unannotatedShape, path: rel });
      c.progress.tick(1, rel);
    }
  }
}

/**
 * Image and label pairs: annotated/{images,labels}/<type>_<id>.nii.gz, or (test) test/{images,labels}/<type>_<id>.mha
 * from specimens of their own, as the challenge's test set comes from other samples.
 */
async function writeLabelled(c: SynthContext, split: "annotated" | "test", types: StructureType[]): Promise<void> {
  const { o, tmp } = c;
  const sp = o.spacingUm;
  const perType = split === "annotated" ? o.annotatedPerType : o.testPerType;
  let id = split === "annotated" ? 1 : 2001;
  for (const t of types) {
    for (let i = 0; i < perType; i++) {
      const { name, sp: specimen } = c.specimenOf(t, split === "annotated" ? i : o.specimensPerType + i);
      const p = synthPatch(c.seed, t, specimen, `${split}/${t.name}/${i}`, o.annotatedShape);
      const base = split === "annotated" ? `${t.name}_${String(id++).padStart(4, "0")}.nii.gz` : `${t.name}_${id++}.mha`;
      await writeVolume(join(tmp, `${split}/images`, base), makeVolume("uint16", o.annotatedShape, sp, p.image));
      await writeVolume(join(tmp, `${split}/labels`, base), makeVolume("uint8", o.annotatedShape, sp, p.label));
      const entry = { type: t.name, specimen: name, shape: o.annotatedShape, image: `${split}/images/${base}`, label: `${split}/labels/${base}` };
      c.json.splits[split].push(entry);
      c.progress.tick(1, base);
    }
  }
}

/** raw/volume<NN>_<type>: whole volumes with tissue, alternately a TIFF plane folder and an OME-Zarr. */
async function writeRaw(c: SynthContext, annotated: StructureType[]): Promise<void> {
  const { o, tmp } = c;
  const sp = o.spacingUm;
  const rawTypes = [annotated.find((t) => t.category === "isolated")!, annotated.find((t) => t.category === "contiguous")!];
  for (let i = 0; i < o.rawVolumes; i++) {
    const t = rawTypes[i % 2];
    const { name, sp: specimen } = c.specimenOf(t, i);
    const rng = new Rng(`${c.seed}/raw/${i}`);
    const cv = makeCanvas(o.rawShape);
    t.draw(rng, cv);
    const tissue = tissueMask(rng, o.rawShape);
    for (let k = 0; k < cv.signal.length; k++) if (tissue[k] < 0.5) { cv.signal[k] = 0; cv.label[k] = 0; }
    const image = renderLsm(cv, specimen, rng, tissue);
    const zarr = i % 2 === 1;
    const rel = `raw/volume${String(i + 1).padStart(2, "0")}_${t.name}${zarr ? ".ome.zarr" : ""}`;
    await writeVolume(join(tmp, rel), makeVolume("uint16", o.rawShape, [sp[0] * 2, sp[1], sp[2]], image), zarr ? { chunks: [32, 64, 64] } : {});
    c.json.splits.raw.push({ type: t.name, specimen: name, shape: o.rawShape, path: rel, format: zarr ? "ome-zarr" : "tiff-folder" });
    c.progress.tick(1, rel);
  }
}

/** Generates the dataset into `outDir` (replaced atomically: built under a temporary name, then renamed). */
export async function synthDataset(outDir: string, opts: SynthDatasetOptions = {}): Promise<DatasetJson> {
  const presetName = opts.preset ?? "tiny";
  const o: SynthOptions = { ...PRESETS[presetName], ...opts.overrides };
  const seed = opts.seed ?? 0;
  const tmp = tempPathFor(outDir.replace(/\/+$/, ""));
  mkdirSync(tmp, { recursive: true });
  const annotated = STRUCTURES.filter((t) => t.role === "annotated");
  const heldOut = STRUCTURES.filter((t) => t.role === "heldOut");
  const pretrain = STRUCTURES.filter((t) => t.role !== "heldOut");
  const tested = [...annotated, ...heldOut];
  const total = pretrain.length * o.unannotatedPerType + annotated.length * o.annotatedPerType + tested.length * o.testPerType + o.rawVolumes;
  const progress = new Progress("synth", total, { unit: "files", silent: opts.quiet });
  const json = datasetJsonHead(presetName, seed, o);
  const specimenOf = (t: StructureType, index: number) => {
    const k = index % o.specimensPerType;
    const name = `${t.name}_specimen${k + 1}`;
    const sp = specimenFor(seed, t.name, k);
    json.specimens[name] = { ...sp, type: t.name };
    return { name, sp };
  };
  const c: SynthContext = { tmp, seed, o, json, progress, specimenOf };
  try {
    await writeUnannotated(c, pretrain);
    await writeLabelled(c, "annotated", annotated);
    await writeLabelled(c, "test", tested);
    await writeRaw(c, annotated);
    writeFileAtomic(join(tmp, "dataset.json"), Buffer.from(JSON.stringify(json, null, 2) + "\n"));
    progress.finish();
    // an existing folder keeps everything but lsmseg's own outputs (the CLI refuses it without --overwrite)
    swapFolderIn(tmp, outDir.replace(/\/+$/, ""), (name) => SYNTH_OUTPUTS.includes(name));
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return json;
}
