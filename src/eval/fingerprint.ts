// A dataset's fingerprint, as nnU-Net computes one before planning: counts per structure type and category,
// shapes, spacings, intensity percentiles (0.5, 50, 99.5) of foreground and background, foreground fraction,
// and per labelled case the number of 26-connected components and the skeleton length (Lee 1994).
// Works on lsmseg synth output (types from dataset.json) and on the challenge's own folders (types from names).
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { caseNameOf, categoryName, CHALLENGE_STRUCTURES, findDatasetJson, structureOfName } from "../dataset/index.ts";
import { isVolumeEntry, openVolume } from "../io/index.ts";
import { readAll } from "../io/stream.ts";
import { labelComponents } from "./components.ts";
import { skeletonize3d, skeletonLength } from "./skeleton.ts";

export interface CaseFingerprint {
  image: string;
  split: string;
  type: string;
  category: string;
  shape: number[];
  foregroundFraction: number;
  components: number;
  skeletonVoxels: number;
}

export interface Percentiles { p0_5: number; p50: number; p99_5: number }

export interface Fingerprint {
  dir: string;
  counts: Record<string, Record<string, number>>;
  categories: Record<string, Record<string, number>>;
  shapes: Record<string, number>;
  spacingsUm: Record<string, number>;
  intensity: { foreground: Percentiles | null; background: Percentiles | null; unannotated: Percentiles | null };
  foregroundFraction: { mean: number; min: number; max: number } | null;
  cases: CaseFingerprint[];
}

function listVolumes(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  (function walk(d: string) {
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      const isDir = statSync(p).isDirectory();
      if (isVolumeEntry(p, isDir)) out.push(p); // a plane folder or a Zarr is one volume
      else if (isDir) walk(p);
    }
  })(dir);
  return out;
}

/** Keeps every voxel's value when there are few, a regular subsample when many (at most `cap` per call). */
function sampleInto(values: number[], data: ArrayLike<number>, keep: (i: number) => boolean, cap = 200_000): void {
  const step = Math.max(1, Math.floor(data.length / cap));
  for (let i = 0; i < data.length; i += step) if (keep(i)) values.push(data[i]);
}

function percentiles(values: number[]): Percentiles | null {
  if (values.length === 0) return null;
  const s = Float64Array.from(values).sort();
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.round((q / 100) * (s.length - 1))))];
  return { p0_5: at(0.5), p50: at(50), p99_5: at(99.5) };
}

export async function fingerprint(dir: string, opts: { onCase?: (name: string) => void } = {}): Promise<Fingerprint> {
  const structures = findDatasetJson(dir, { levels: 0 })?.structures; // a dataset root's own dataset.json
  const typeOf = (path: string): string => {
    const rel = relative(dir, path);
    const m = /_structures\/([^/]+)\//.exec(rel);
    if (m) return m[1];
    return structureOfName(caseNameOf(rel.split("/").pop() ?? ""));
  };
  const categoryOf = (type: string, path: string): string => {
    const s = structures?.[type];
    if (s) return `${s.category} ${s.density}`;
    if (CHALLENGE_STRUCTURES[type]) return categoryName(CHALLENGE_STRUCTURES[type]);
    const m = /(isolated|contiguous)_structures/.exec(path);
    return m ? m[1] : "unknown";
  };
  const fp: Fingerprint = {
    dir, counts: {}, categories: {}, shapes: {}, spacingsUm: {},
    intensity: { foreground: null, background: null, unannotated: null }, foregroundFraction: null, cases: [],
  };
  const fgValues: number[] = [], bgValues: number[] = [], unValues: number[] = [];
  const count = (split: string, type: string, category: string, shape: number[], spacing: number[]) => {
    ((fp.counts[split] ??= {})[type] ??= 0);
    fp.counts[split][type]++;
    ((fp.categories[category] ??= {})[split] ??= 0);
    fp.categories[category][split]++;
    const sk = shape.join("×"), sp = spacing.map((s) => +s.toFixed(4)).join("×");
    fp.shapes[sk] = (fp.shapes[sk] ?? 0) + 1;
    fp.spacingsUm[sp] = (fp.spacingsUm[sp] ?? 0) + 1;
  };
  for (const path of listVolumes(join(dir, "unannotated"))) {
    const src = await openVolume(path);
    const type = typeOf(path);
    count("unannotated", type, categoryOf(type, path), src.header.shape, src.header.spacingUm);
    // the intensities of unannotated patches from their central z-slab only: cheap and representative
    const [nz, ny, nx] = src.header.shape;
    const slab = await src.readRegion({ start: [Math.floor(nz / 2), 0, 0], size: [1, ny, nx] });
    await src.close();
    sampleInto(unValues, slab.data, () => true, 20_000);
    opts.onCase?.(path);
  }
  for (const split of ["annotated", "test"]) {
    for (const image of listVolumes(join(dir, split, "images"))) {
      const name = relative(join(dir, split, "images"), image);
      const labelPath = join(dir, split, "labels", name);
      const img = await readAll(await openVolume(image));
      const type = typeOf(image);
      const category = categoryOf(type, image);
      count(split, type, category, img.shape, img.spacingUm);
      if (!existsSync(labelPath)) continue;
      const lab = await readAll(await openVolume(labelPath));
      if (lab.shape.join() !== img.shape.join()) throw new Error(`${labelPath}: shape ${lab.shape.join("×")} does not match image ${img.shape.join("×")}`);
      let fg = 0;
      for (let i = 0; i < lab.data.length; i++) if (lab.data[i] > 0) fg++;
      sampleInto(fgValues, img.data, (i) => lab.data[i] > 0);
      sampleInto(bgValues, img.data, (i) => !(lab.data[i] > 0), 50_000);
      fp.cases.push({
        image: relative(dir, image), split, type, category, shape: img.shape,
        foregroundFraction: fg / lab.data.length,
        components: labelComponents(lab.data, lab.shape).count,
        skeletonVoxels: skeletonLength(skeletonize3d(lab.data, lab.shape)),
      });
      opts.onCase?.(image);
    }
  }
  fp.intensity = { foreground: percentiles(fgValues), background: percentiles(bgValues), unannotated: percentiles(unValues) };
  if (fp.cases.length) {
    const f = fp.cases.map((c) => c.foregroundFraction);
    fp.foregroundFraction = { mean: f.reduce((a, b) => a + b, 0) / f.length, min: Math.min(...f), max: Math.max(...f) };
  }
  return fp;
}
