// What a label file's values mean. lsmseg segments foreground from background; a file may use other values (a
// mask of {0, 255}, TRAILMAP's {0 = not labelled, 1 = background, 2 = axon, 4 = axon edge}) and may leave voxels
// unlabelled, as sparse annotation does. A label map sends each file value to background, foreground or ignore;
// values it does not list are background when 0 and foreground otherwise (the rule without a map). Ignored voxels
// count nowhere: not in the loss, not as oversampling centres, not in validation or evaluation (nnU-Net's ignore
// label, https://github.com/MIC-DKFZ/nnUNet/blob/master/documentation/ignore_label.md).
// Inside lsmseg a label array holds 0 (background), 1 (foreground) and IGNORE_LABEL.
import { findDatasetJson } from "../dataset/index.ts";

/** The value of an ignored voxel in lsmseg's label arrays (and of the loss's target tensors). */
export const IGNORE_LABEL = 255;

export type LabelClass = "background" | "foreground" | "ignore";

/** File value (as a decimal string) → class. */
export type LabelMap = Record<string, LabelClass>;

const CODE: Record<LabelClass, number> = { background: 0, foreground: 1, ignore: IGNORE_LABEL };

/**
 * A --label-map flag: `VALUE=CLASS` items separated by commas, CLASS being `background` (or `bg`, `0`), `ignore`,
 * or anything else for foreground (`foreground`, `1`, or a structure name): TRAILMAP's labels are
 * `0=ignore,1=background,2=axon,4=axon`.
 */
export function parseLabelMap(text: string, what = "--label-map"): LabelMap {
  const map: LabelMap = {};
  for (const item of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(-?\d+(?:\.\d+)?)\s*[=:]\s*([\w.-]+)$/.exec(item);
    if (!m) throw new Error(`${what}: expected VALUE=CLASS items separated by commas (e.g. 0=ignore,1=background,2=axon), got '${item}'`);
    const cls = m[2].toLowerCase();
    const value = String(Number(m[1]));
    if (value in map) throw new Error(`${what}: value ${value} is mapped twice`);
    map[value] = cls === "ignore" ? "ignore" : cls === "background" || cls === "bg" || cls === "0" ? "background" : "foreground";
  }
  if (Object.keys(map).length === 0) throw new Error(`${what}: empty (expected e.g. 0=ignore,1=background,2=axon)`);
  return map;
}

/** A --ignore-label V flag as a label map: V ignored, everything else by the default rule. */
export function ignoreLabelMap(value: number): LabelMap {
  if (!Number.isFinite(value)) throw new Error(`--ignore-label: expected a number, got ${value}`);
  return { [String(value)]: "ignore" };
}

/**
 * The label map of an nnU-Net dataset.json's `labels` ({"background": 0, "axon": 1, "ignore": 2}; a value may be
 * a list, as nnU-Net's regions are): "background" → background, "ignore" → ignore, every other name →
 * foreground. Null when there is no `labels` object.
 */
export function labelMapOfDatasetJson(json: unknown, path = "dataset.json"): LabelMap | null {
  const labels = (json as { labels?: unknown } | null)?.labels;
  if (labels === undefined) return null;
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) throw new Error(`${path}: "labels" must be an object of name → value`);
  const map: LabelMap = {};
  for (const [name, v] of Object.entries(labels)) {
    const values = Array.isArray(v) ? v : [v];
    for (const x of values) {
      if (typeof x !== "number" || !Number.isFinite(x)) throw new Error(`${path}: labels.${name} must be a number (or a list of numbers), got ${JSON.stringify(v)}`);
      map[String(x)] = name === "ignore" ? "ignore" : name === "background" ? "background" : "foreground";
    }
  }
  return map;
}

/** The label map declared by the dataset.json in `dir` or its parent (the first one found), or null. */
export function readDatasetLabelMap(dir: string): LabelMap | null {
  // the nearest dataset.json of dir and its parent (src/dataset's rule)
  const d = findDatasetJson(dir, { levels: 1 });
  return d ? labelMapOfDatasetJson(d.raw, d.path) : null;
}

/** Whether a label map sends any value to ignore. */
export function hasIgnore(map: LabelMap | null | undefined): boolean {
  return !!map && Object.values(map).includes("ignore");
}

/**
 * A label file's values as lsmseg's labels: 0 background, 1 foreground, IGNORE_LABEL ignored. Without a map
 * every value > 0 is foreground.
 */
export function applyLabelMap(data: ArrayLike<number>, map?: LabelMap | null): Uint8Array {
  const out = new Uint8Array(data.length);
  if (!map) {
    for (let i = 0; i < out.length; i++) out[i] = data[i] > 0 ? 1 : 0;
    return out;
  }
  const codes = new Map(Object.entries(map).map(([v, c]) => [Number(v), CODE[c]]));
  for (let i = 0; i < out.length; i++) {
    const v = data[i];
    const c = codes.get(v);
    out[i] = c === undefined ? (v > 0 ? 1 : 0) : c;
  }
  return out;
}

/** Number of ignored voxels in an lsmseg label array. */
export function countIgnored(label: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < label.length; i++) if (label[i] === IGNORE_LABEL) n++;
  return n;
}
