// The index of a pretraining dataset: for every patchvolume file its structure type, shape, spacing, voxel
// type and intensity statistics, cached as JSON and rebuilt per file when the file changes (size or mtime),
// so that 35,000 files are read once, not at every run. The statistics come from a central box of at most
// 64³ voxels (reading a whole 300³ gzipped patch only to index it would cost as much as training on it).
import { accessSync, constants, existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { type Case, unannotatedCases } from "../data/dataset.ts";
import { percentileSorted } from "../data/normalize.ts";
import { type Vec3, openVolume } from "../io/index.ts";
import { writeFileAtomic } from "../util/atomic.ts";

export interface IntensityStats {
  min: number;
  max: number;
  mean: number;
  std: number;
  p0_5: number;
  p99_5: number;
  /** How many voxels the statistics were computed from (a central box). */
  voxels: number;
}

export interface IndexEntry extends Case {
  bytes: number;
  mtimeMs: number;
  shape: Vec3;
  spacingUm: Vec3;
  dtype: string;
  stats: IntensityStats;
}

export interface DataIndex {
  version: 1;
  root: string;
  entries: IndexEntry[];
}

export interface IndexResult {
  index: DataIndex;
  path: string;
  /** Entries read from the files this time (new or changed). */
  rebuilt: number;
  /** Entries taken from the cache unchanged. */
  reused: number;
}

const STATS_EDGE = 64;

/** Statistics of the central box (edges ≤ 64) of a volume. */
async function entryOf(c: Case): Promise<IndexEntry> {
  const st = statSync(c.imagePath);
  const src = await openVolume(c.imagePath);
  try {
    const { shape, spacingUm, dtype } = src.header;
    const size = shape.map((n) => Math.min(n, STATS_EDGE)) as Vec3;
    const start = shape.map((n, a) => (n - size[a]) >> 1) as Vec3;
    const { data } = await src.readRegion({ start, size });
    const sorted = Float64Array.from(data).sort();
    let sum = 0;
    for (let i = 0; i < sorted.length; i++) sum += sorted[i];
    const mean = sorted.length ? sum / sorted.length : 0;
    let ss = 0;
    for (let i = 0; i < sorted.length; i++) ss += (sorted[i] - mean) ** 2;
    const stats: IntensityStats = {
      min: sorted[0] ?? 0, max: sorted[sorted.length - 1] ?? 0, mean, std: Math.sqrt(sorted.length ? ss / sorted.length : 0),
      p0_5: percentileSorted(sorted, 0.5), p99_5: percentileSorted(sorted, 99.5), voxels: sorted.length,
    };
    return { ...c, bytes: st.size, mtimeMs: st.mtimeMs, shape: [...shape], spacingUm: [...spacingUm], dtype, stats };
  } finally {
    await src.close();
  }
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where the index of `dir` is kept: in the data folder when it is writable, else in `fallbackDir` (the run). */
export function defaultIndexPath(dir: string, fallbackDir: string): string {
  const root = existsSync(join(dir, "unannotated")) ? join(dir, "unannotated") : dir;
  return writable(root) ? join(root, "lsmseg_index.json") : join(fallbackDir, "data_index.json");
}

/**
 * The index of the unannotated (or curated) dataset in `dir`, from the cache at `path` where the files are
 * unchanged (same size and mtime), read afresh where not; the cache is rewritten when anything changed.
 */
export async function buildIndex(
  dir: string, path: string, opts: { concurrency?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<IndexResult> {
  const cases = unannotatedCases(dir);
  let cached = new Map<string, IndexEntry>();
  if (existsSync(path)) {
    try {
      const old = JSON.parse(readFileSync(path, "utf8")) as DataIndex;
      if (old.version === 1) cached = new Map(old.entries.map((e) => [e.imagePath, e]));
    } catch {
      // a damaged cache is rebuilt
    }
  }
  const entries: IndexEntry[] = new Array(cases.length);
  const todo: number[] = [];
  cases.forEach((c, i) => {
    const old = cached.get(c.imagePath);
    const st = statSync(c.imagePath);
    if (old && old.bytes === st.size && old.mtimeMs === st.mtimeMs) entries[i] = { ...old, ...c };
    else todo.push(i);
  });
  let next = 0, done = cases.length - todo.length;
  const worker = async () => {
    while (next < todo.length) {
      const i = todo[next++];
      entries[i] = await entryOf(cases[i]);
      opts.onProgress?.(++done, cases.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker));
  const index: DataIndex = { version: 1, root: dir, entries };
  if (todo.length > 0 || cached.size !== entries.length) writeFileAtomic(path, Buffer.from(JSON.stringify(index) + "\n"));
  return { index, path, rebuilt: todo.length, reused: cases.length - todo.length };
}

/** Counts per structure type, for the log. */
export function describeIndex(index: DataIndex): string {
  const per = new Map<string, number>();
  let voxels = 0;
  for (const e of index.entries) {
    per.set(e.structure, (per.get(e.structure) ?? 0) + 1);
    voxels += e.shape[0] * e.shape[1] * e.shape[2];
  }
  return `${index.entries.length} volumes, ${per.size} structure types, ${(voxels / 1e9).toFixed(2)} G voxels (${[...per].map(([s, n]) => `${s} ${n}`).join(", ")})`;
}
