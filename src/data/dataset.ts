// Dataset manifests: the cases of an annotated (fine-tuning) or unannotated (pretraining) folder in the
// challenge's layout, and nnU-Net's k-fold cross-validation splits.
//   annotated:   <dir>/images/<structure>_<id>.<ext>  with  <dir>/labels/<same name>
//   unannotated: <dir>/**/patchvolume_<n>.<ext>, the structure type being the name of the file's folder
//   nnU-Net raw: <dir>/imagesTr/<structure>_<id>_0000.<ext>  with  <dir>/labelsTr/<structure>_<id>.<ext>
// <dir> may be the dataset root (with annotated/ or unannotated/ inside) or that folder itself. Structure
// categories and densities come from dataset.json (the nearest of <dir>, its parent, its parent's parent) when
// present, else from the known SELMA3D types, else from the folder name (isolated_structures/, contiguous_structures/).
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { isPlaneFolder, openVolume } from "../io/index.ts";
import { caseNameOf, channelOf, findDatasetJson, SELMA3D_TYPES, stemOf, structureOfName, VOLUME_EXTENSIONS } from "../dataset/index.ts";
import { type LabelMap, readDatasetLabelMap } from "./labels.ts";
import { stream } from "./rng.ts";

export interface Case {
  /** Unique within a dataset: the file name without extension (annotated), or <structure>/patchvolume_<n>. */
  id: string;
  imagePath: string;
  labelPath?: string;
  structure: string;
  /** "isolated" | "contiguous" | "unknown" */
  category: string;
  /** "dense" | "sparse" | "unknown" */
  density: string;
  /** What the label file's values mean (./labels.ts); absent: every value > 0 is foreground. */
  labelMap?: LabelMap;
}

export { stemOf, structureOfName } from "../dataset/index.ts";

interface StructureInfo { category: string; density: string }

function readStructureInfo(dir: string): Map<string, StructureInfo> {
  const info = new Map<string, StructureInfo>();
  for (const t of SELMA3D_TYPES) info.set(t.name, { category: t.category, density: t.density });
  const json = findDatasetJson(dir, { levels: 1 });
  for (const [name, s] of Object.entries(json?.structures ?? {})) {
    info.set(name, { category: s.category ?? "unknown", density: s.density ?? "unknown" });
  }
  return info;
}

function describe(info: Map<string, StructureInfo>, structure: string, folderHint?: string): StructureInfo {
  const known = info.get(structure);
  if (known) return known;
  const m = folderHint ? /^(isolated|contiguous)_structures$/.exec(folderHint) : null;
  return { category: m ? m[1] : "unknown", density: "unknown" };
}

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

async function shapeOf(path: string): Promise<number[]> {
  const source = await openVolume(path);
  try {
    return [...source.header.shape];
  } finally {
    await source.close();
  }
}

/**
 * The annotated cases of `dir` (the dataset root or its annotated/ folder), sorted by id. Every image must have
 * a label of the same name and shape (`checkShapes`, default true, reads both headers); errors name the files.
 * Each case's label map is `labelMap` when given, else the one dataset.json's `labels` declare (an "ignore"
 * entry: sparse annotation), else none.
 */
export async function annotatedCases(dir: string, opts: { checkShapes?: boolean; labelMap?: LabelMap } = {}): Promise<Case[]> {
  const nnunet = isDir(join(dir, "imagesTr"));
  const root = nnunet ? dir : isDir(join(dir, "annotated", "images")) ? join(dir, "annotated") : dir;
  const imagesDir = join(root, nnunet ? "imagesTr" : "images"), labelsDir = join(root, nnunet ? "labelsTr" : "labels");
  if (!isDir(imagesDir)) throw new Error(`${dir}: no images/ folder (expected ${join(dir, "annotated", "images")} or ${imagesDir}, or nnU-Net's imagesTr/)`);
  if (!isDir(labelsDir)) throw new Error(`${root}: no ${nnunet ? "labelsTr" : "labels"}/ folder beside ${nnunet ? "imagesTr" : "images"}/`);
  const info = readStructureInfo(root);
  const labelMap = opts.labelMap ?? readDatasetLabelMap(root) ?? undefined;
  const labelFiles = new Map<string, string>();
  // a folder of z-plane TIFFs is one volume, its name the stem
  const volumeStem = (dir: string, f: string) => stemOf(f) ?? (isPlaneFolder(join(dir, f)) ? f : null);
  for (const f of readdirSync(labelsDir)) {
    const stem = volumeStem(labelsDir, f);
    if (stem !== null) labelFiles.set(stem, f);
  }
  const cases: Case[] = [];
  for (const f of readdirSync(imagesDir).sort()) {
    if (volumeStem(imagesDir, f) === null) continue;
    const imagePath = join(imagesDir, f);
    // nnU-Net: <case>_0000 is the image of case <case>; lsmseg segments one channel
    const channel = nnunet ? channelOf(stemOf(f)!) : null;
    if (nnunet && channel === null) throw new Error(`${imagePath}: an nnU-Net image needs the channel suffix _0000 (<case>_0000${f.slice(stemOf(f)!.length)})`);
    if (channel !== null && channel > 0) throw new Error(`${imagePath}: channel ${channel} of a multi-channel nnU-Net dataset; lsmseg reads single-channel datasets (only _0000 files)`);
    const stem = caseNameOf(f, nnunet);
    // the same file name, or failing that the same name with another volume extension
    const labelName = !nnunet && existsSync(join(labelsDir, f)) ? f : labelFiles.get(stem);
    if (!labelName) throw new Error(`${imagePath}: no label (expected ${join(labelsDir, nnunet ? `${stem}${f.slice(stemOf(f)!.length)}` : f)})`);
    const labelPath = join(labelsDir, labelName);
    if (opts.checkShapes ?? true) {
      const [si, sl] = await Promise.all([shapeOf(imagePath), shapeOf(labelPath)]);
      if (si.join() !== sl.join()) throw new Error(`${labelPath}: shape ${sl.join("×")} does not match image ${imagePath} ${si.join("×")}`);
    }
    const structure = structureOfName(stem, info.keys());
    cases.push({ id: stem, imagePath, labelPath, structure, ...describe(info, structure), ...(labelMap ? { labelMap } : {}) });
  }
  if (cases.length === 0) throw new Error(`${imagesDir}: no volumes (expected ${VOLUME_EXTENSIONS.join(", ")} files)`);
  const ids = new Set<string>();
  for (const c of cases) {
    if (ids.has(c.id)) throw new Error(`${imagesDir}: two images named ${c.id} (with different extensions)`);
    ids.add(c.id);
  }
  return cases;
}

/**
 * The unannotated cases under `dir` (the dataset root or its unannotated/ folder): every patchvolume_<n> file at
 * any depth, its structure type the name of its folder; sorted by structure, then by n.
 */
export function unannotatedCases(dir: string): Case[] {
  const root = isDir(join(dir, "unannotated")) ? join(dir, "unannotated") : dir;
  if (!isDir(root)) throw new Error(`${dir}: not a folder`);
  const info = readStructureInfo(root);
  const cases: (Case & { n: number })[] = [];
  (function walk(d: string) {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      const planes = statSync(p).isDirectory() && isPlaneFolder(p);
      if (statSync(p).isDirectory() && !planes) { walk(p); continue; }
      const stem = planes ? f : stemOf(f);
      const m = stem === null ? null : /^patchvolume_(\d+)$/.exec(stem);
      if (!m) continue;
      const folder = dirname(p);
      if (folder === root) throw new Error(`${p}: not in a structure folder (expected ${join(root, "<category>_structures", "<structure>", f)})`);
      const structure = basename(folder);
      const parent = basename(dirname(folder));
      cases.push({ id: `${structure}/${stem}`, imagePath: p, structure, ...describe(info, structure, parent), n: Number(m[1]) });
    }
  })(root);
  if (cases.length === 0) throw new Error(`${root}: no patchvolume_<n> files (expected e.g. ${join(root, "isolated_structures", "<structure>", "patchvolume_0.nii.gz")})`);
  cases.sort((a, b) => (a.structure < b.structure ? -1 : a.structure > b.structure ? 1 : a.n - b.n));
  const ids = new Map<string, string>();
  for (const c of cases) {
    const other = ids.get(c.id);
    if (other) throw new Error(`${c.imagePath}: the same case id ${c.id} as ${other}`);
    ids.set(c.id, c.imagePath);
  }
  return cases.map(({ n: _n, ...c }) => c);
}

export interface Fold {
  train: Case[];
  val: Case[];
}

/**
 * nnU-Net-style k-fold cross-validation, deterministic by `seed` and stratified by structure type: each type's
 * cases (sorted by id) are shuffled and dealt round-robin over the folds, continuing where the previous type
 * stopped, so every fold's validation set holds every type that has at least `folds` cases and the fold sizes
 * differ by at most one. Split K is fold K's validation set; its training set is everything else.
 */
export function kFoldSplits(cases: readonly Case[], opts: { folds?: number; seed?: number } = {}): Fold[] {
  const folds = opts.folds ?? 5, seed = opts.seed ?? 12345;
  if (!Number.isInteger(folds) || folds < 2) throw new Error(`folds: expected an integer ≥ 2, got ${folds}`);
  if (cases.length < folds) throw new Error(`${cases.length} cases cannot be split into ${folds} folds`);
  const byStructure = new Map<string, Case[]>();
  for (const c of [...cases].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const list = byStructure.get(c.structure) ?? [];
    list.push(c);
    byStructure.set(c.structure, list);
  }
  const val: Case[][] = Array.from({ length: folds }, () => []);
  let next = 0;
  for (const structure of [...byStructure.keys()].sort()) {
    const list = byStructure.get(structure)!;
    const rng = stream(seed, "kfold", structure);
    for (let i = list.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      [list[i], list[j]] = [list[j], list[i]];
    }
    for (const c of list) { val[next].push(c); next = (next + 1) % folds; }
  }
  return val.map((v) => {
    const inVal = new Set(v.map((c) => c.id));
    return { train: cases.filter((c) => !inVal.has(c.id)), val: cases.filter((c) => inVal.has(c.id)) };
  });
}

/** The training and validation cases of `fold` (0 … folds−1), or of "all": train on everything, validate on nothing. */
export function foldCases(cases: readonly Case[], fold: number | "all", opts: { folds?: number; seed?: number } = {}): Fold {
  if (fold === "all") return { train: [...cases], val: [] };
  const folds = opts.folds ?? 5;
  if (!Number.isInteger(fold) || fold < 0 || fold >= folds) throw new Error(`--fold: expected 0…${folds - 1} or "all", got ${fold}`);
  return kFoldSplits(cases, opts)[fold];
}

