// The two dataset layouts lsmseg reads, and the rule that finds their dataset.json.
//   SELMA3D (lsmseg's own):  <root>/annotated/{images,labels}/<structure>_<id>.<ext>, <root>/test/{images,labels}/,
//                            <root>/unannotated/**/patchvolume_<n>.<ext>, <root>/dataset.json (structures, roles)
//   nnU-Net raw:             <root>/imagesTr/<case>_0000.<ext>, <root>/labelsTr/<case>.<ext>, <root>/imagesTs/,
//                            <root>/dataset.json (channel_names, labels, numTraining, file_ending)
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

export type Layout = "selma3d" | "nnunet";

export interface StructureEntry { category?: string; density?: string; role?: string }

/** dataset.json, typed: SELMA3D's `structures` and nnU-Net's keys (the labels are parsed, not interpreted). */
export interface DatasetJson {
  path: string;
  structures: Record<string, StructureEntry>;
  /** nnU-Net's `labels`: name → value, or → values for a region; null when absent. */
  labels: Record<string, number | number[]> | null;
  channelNames: Record<string, string> | null;
  fileEnding: string | null;
  numTraining: number | null;
  raw: Record<string, unknown>;
}

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

/** The layout of a dataset folder: nnU-Net when it has imagesTr/, else SELMA3D. */
export function layoutOf(dir: string): Layout {
  return isDir(join(dir, "imagesTr")) ? "nnunet" : "selma3d";
}

/**
 * Where dataset.json may be for a folder of a dataset, nearest first: the folder, its parent and its parent's
 * parent (a dataset root holds it; its split folders and their images/ or labels/ folders find it).
 */
export function datasetJsonCandidates(dir: string, levels = 2): string[] {
  const out: string[] = [];
  let d = resolve(dir);
  for (let k = 0; k <= levels; k++) {
    out.push(join(d, "dataset.json"));
    d = dirname(d);
  }
  return out;
}

/** Reads and checks a dataset.json; errors name the file and the field. */
export function readDatasetJson(path: string): DatasetJson {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error(`${path}: expected a JSON object`);
  const obj = (k: string) => {
    const v = raw[k];
    if (v === undefined) return null;
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${path}: "${k}" must be an object, got ${JSON.stringify(v)}`);
    return v as Record<string, unknown>;
  };
  const labels = obj("labels");
  if (labels) {
    for (const [name, v] of Object.entries(labels)) {
      const ok = Number.isInteger(v) || (Array.isArray(v) && v.every((n) => Number.isInteger(n)));
      if (!ok) throw new Error(`${path}: labels.${name} must be an integer (or a list of integers for a region), got ${JSON.stringify(v)}`);
    }
  }
  const fileEnding = raw.file_ending;
  if (fileEnding !== undefined && typeof fileEnding !== "string") throw new Error(`${path}: "file_ending" must be a string`);
  const numTraining = raw.numTraining;
  if (numTraining !== undefined && !Number.isInteger(numTraining)) throw new Error(`${path}: "numTraining" must be an integer`);
  return {
    path: resolve(path),
    structures: (obj("structures") ?? {}) as Record<string, StructureEntry>,
    labels: labels as DatasetJson["labels"],
    channelNames: obj("channel_names") as DatasetJson["channelNames"],
    fileEnding: (fileEnding as string | undefined) ?? null,
    numTraining: (numTraining as number | undefined) ?? null,
    raw,
  };
}

/** The nearest dataset.json of `dir` (see datasetJsonCandidates) that `accept` takes, or null. */
export function findDatasetJson(dir: string, o: { levels?: number; accept?: (d: DatasetJson) => boolean } = {}): DatasetJson | null {
  for (const p of datasetJsonCandidates(dir, o.levels)) {
    if (!existsSync(p)) continue;
    const d = readDatasetJson(p);
    if (!o.accept || o.accept(d)) return d;
  }
  return null;
}
