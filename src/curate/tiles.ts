// Tiles: the grid, the filters and the worker's job. A worker reads one box holding a run of neighbouring
// tiles (one read, however the format stores its planes), computes every tile's statistics and signature, and
// writes each tile that passes the filters to a staging file; the main thread then removes near-duplicates in
// tile order and renames the survivors into the Task 1 layout.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { DTYPES, type Vec3, type VolumeHeader, cropVoxels, dtypeOf, makeVolume, openVolume, voxelCount, writeVolume } from "../io/index.ts";
import { type TileStats, signatureOf, tileStats } from "./stats.ts";
import { readBuffer } from "./overview.ts";

/** Filter thresholds; each rejects a tile for one named reason (checked in this order). */
export interface Filters {
  /** background: less than this fraction of the tile is inside the low-resolution tissue mask. */
  minTissue: number;
  /** empty: the tile's 99.9th percentile lies below the volume's tissue threshold (nothing bright in it). */
  emptyBelowThreshold: boolean;
  /** saturated: more than this fraction of voxels at the saturation value. */
  maxSaturation: number;
  /** featureless: fewer than this fraction of voxels stand out from their neighbourhood at 2× (flat, haze). */
  minStructure: number;
  /** out-of-focus: fine-scale over 2× local-contrast ratio below this (the finest detail is blurred away). */
  minFocus: number;
  /** low-snr: (p99.9 − p50) / noise σ below this (structure there, but faint against the noise). */
  minSnr: number;
  /** duplicate: signature correlation at least this with an already kept tile of the same volume … */
  dupCorrelation: number;
  /** … and mean absolute signature difference at most this (volume std units). */
  dupDifference: number;
}

export const DEFAULT_FILTERS: Filters = {
  minTissue: 0.5, emptyBelowThreshold: true, maxSaturation: 0.01, minSnr: 5, minStructure: 0.005, minFocus: 0.03,
  dupCorrelation: 0.995, dupDifference: 0.05,
};

export type RejectReason = "background" | "empty" | "saturated" | "low-snr" | "featureless" | "out-of-focus" | "duplicate";
export const REJECT_REASONS: RejectReason[] = ["background", "empty", "saturated", "featureless", "out-of-focus", "low-snr", "duplicate"];

/** The first filter `s` fails (duplicates aside), or null when the tile passes. */
export function rejectReason(s: TileStats, f: Filters, tissueThreshold: number): RejectReason | null {
  if (s.tissue < f.minTissue) return "background";
  if (f.emptyBelowThreshold && s.p999 <= tissueThreshold) return "empty";
  if (s.saturation > f.maxSaturation) return "saturated";
  if (s.structure < f.minStructure) return "featureless";
  if (s.focus < f.minFocus) return "out-of-focus";
  if (s.snr < f.minSnr) return "low-snr";
  return null;
}

/** Tile starts along an axis of `n` voxels: 0, stride, 2·stride, … while the tile fits. */
export function gridStarts(n: number, patch: number, stride: number): number[] {
  const out: number[] = [];
  for (let s = 0; s + patch <= n; s += stride) out.push(s);
  return out;
}

export interface TileTask {
  kind: "tiles";
  path: string;
  header: VolumeHeader;
  /** The tiles of this task: their index within the volume, start (z, y, x) and tissue fraction. */
  tiles: Array<{ index: number; start: Vec3; tissue: number }>;
  patch: Vec3;
  lo: number; hi: number; mean: number; std: number;
  tissueThreshold: number;
  saturationValue: number;
  filters: Filters;
  /** Where tiles that pass the filters are written: <stagingDir>/<stagingPrefix><index>.nii.gz. */
  stagingDir: string;
  stagingPrefix: string;
  /** Milliseconds to wait before the task (a test slows a run so that a kill lands part-way); default none. */
  delayMs?: number;
}

export interface TileResult {
  index: number;
  stats: TileStats;
  reason: RejectReason | null;
  signature?: number[];
}

export function stagingPath(t: Pick<TileTask, "stagingDir" | "stagingPrefix">, index: number): string {
  return join(t.stagingDir, `${t.stagingPrefix}${index}.nii.gz`);
}

/** The saturation value of a dtype: its maximum for integers, +∞ for floats (never saturated). */
export function saturationOf(header: VolumeHeader): number {
  const max: Record<string, number> = { uint8: 255, int8: 127, uint16: 65535, int16: 32767, uint32: 4294967295, int32: 2147483647 };
  return max[header.dtype] ?? Infinity;
}

/** The box covering every tile of a task. */
function taskBox(t: Pick<TileTask, "tiles" | "patch">): { start: Vec3; size: Vec3 } {
  const start = [0, 1, 2].map((a) => Math.min(...t.tiles.map((x) => x.start[a]))) as Vec3;
  const size = [0, 1, 2].map((a) => Math.max(...t.tiles.map((x) => x.start[a] + t.patch[a])) - start[a]) as Vec3;
  return { start, size };
}

/** Runs one tile task (in a worker). Tiles already staged (a resumed run) are rewritten: same bytes. */
export async function processTiles(t: TileTask): Promise<TileResult[]> {
  if (t.delayMs) await new Promise((r) => setTimeout(r, t.delayMs));
  const source = await openVolume(t.path);
  let region;
  const box = taskBox(t);
  try {
    region = await source.readRegion(box, readBuffer(voxelCount(box.size) * DTYPES[source.header.dtype].bytes));
  } finally {
    await source.close();
  }
  const out: TileResult[] = [];
  for (const tile of t.tiles) {
    const local = tile.start.map((s, a) => s - box.start[a]) as Vec3;
    const data = cropVoxels(region.data, box.size, { start: local, size: t.patch });
    const stats = tileStats(data, t.patch, { tissue: tile.tissue, lo: t.lo, hi: t.hi, saturationValue: t.saturationValue });
    const reason = rejectReason(stats, t.filters, t.tissueThreshold);
    const result: TileResult = { index: tile.index, stats, reason };
    if (!reason) {
      result.signature = signatureOf(data, t.patch, t.mean, t.std);
      const file = stagingPath(t, tile.index);
      if (!existsSync(file)) {
        await writeVolume(file, makeVolume(dtypeOf(data), [...t.patch], t.header.spacingUm, data), { level: 1 });
      }
    }
    out.push(result);
  }
  return out;
}

/** Bytes of one tile of `header`'s dtype. */
export function tileBytes(header: VolumeHeader, patch: Vec3): number {
  return patch[0] * patch[1] * patch[2] * DTYPES[header.dtype].bytes;
}
