// lsmseg curate: raw whole volumes → a curated pretraining set in the Task 1 layout.
//   1. scan     one streaming pass per volume: overview (f³ block means), normalisation subsample, tissue mask
//   2. tiles    a grid of patch-sized tiles; tiles outside the tissue are rejected without being read, the others
//               are read in runs by workers, measured, filtered, and written to a staging folder
//   3. decide   in tile order on the main thread: near-duplicate removal, rename into
//               <out>/unannotated/<category>_structures/<type>/patchvolume_<n>.nii.gz, one manifest line
//   4. report   summary.json (counts per reason, histograms, per-volume statistics) and PNG contact sheets
// Resumable after kill -9: the manifest (manifest.jsonl) is appended one complete line per tile, strictly in
// tile order, after the tile's file is in place; a resumed run drops a trailing partial line, skips the tiles
// already recorded, and numbers the next kept tile after the last recorded one, so its manifest and files are
// those of an uninterrupted run.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, truncateSync, writeSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { type Vec3, type VolumeHeader, type VolumeSource, DTYPES, isUrl, makeVolume, openVolume, readVolume, writeVolume } from "../io/index.ts";
import { encodePngGray, mipZ, toGray } from "../io/png.ts";
import { caseNameOf } from "../dataset/names.ts";
import { SELMA3D_TYPES as STRUCTURES } from "../dataset/taxonomy.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import { Progress } from "../util/progress.ts";
import { runPool } from "../util/workers.ts";
import { type Overview, type OverviewPart, type TissueOptions, assembleOverview, overviewFactor, overviewTasks, tissueFraction } from "./overview.ts";
import type { TileStats } from "./stats.ts";
import { nearDuplicate } from "./stats.ts";
import {
  DEFAULT_FILTERS, type Filters, REJECT_REASONS, type RejectReason, type TileResult, type TileTask,
  gridStarts, saturationOf, stagingPath, tileBytes,
} from "./tiles.ts";
import { type CurateTask, runTask } from "./worker.ts";
import { tuneHeap } from "../util/heap.ts";
import { OptionError } from "../util/option_error.ts";

export interface CurateOptions {
  /** Raw volumes: any format openVolume reads. */
  inputs: string[];
  out: string;
  /** Tile size in voxels (one number for a cube, or z, y, x); default 300 as the challenge's patches. */
  patch?: number | Vec3;
  /** Grid step in voxels; default the patch (no overlap). */
  stride?: number | Vec3;
  /** Worker threads; 0 runs everything on the main thread. Default: the machine's cores. */
  workers?: number;
  resume?: boolean;
  filters?: Partial<Filters>;
  tissue?: TissueOptions;
  /** Structure type of every input (else found in each volume's name, e.g. volume01_cfos_neuron). */
  type?: string;
  /** isolated | contiguous, when the type is not a known SELMA3D type. */
  category?: string;
  /** Bytes a worker reads at once (overview boxes, runs of tiles; at least one tile); default 32 MiB. */
  taskBytes?: number;
  /** Example tiles per contact sheet row (default 8). */
  examples?: number;
  quiet?: boolean;
  /** Milliseconds each tile task waits first: for tests that kill a run part-way, whatever the machine's speed. */
  taskDelayMs?: number;
}

export interface VolumeInfo {
  name: string;
  path: string;
  type: string;
  category: string;
  shape: Vec3;
  dtype: string;
  spacingUm: Vec3;
  overview: { factor: number; shape: Vec3; threshold: number; tissueFraction: number };
  normalization: Overview["normalization"];
}

export interface ManifestLine {
  volume: string;
  index: number;
  start: Vec3;
  size: Vec3;
  kept: boolean;
  reason?: RejectReason;
  file?: string;
  stats: Partial<TileStats>;
  signature?: number[];
}

export interface CurateSummary {
  out: string;
  patch: Vec3;
  stride: Vec3;
  filters: Filters;
  tiles: number;
  kept: number;
  rejected: Record<string, number>;
  volumes: Array<VolumeInfo & { tiles: number; kept: number; rejected: Record<string, number> }>;
  histograms: Record<string, { edges: number[]; kept: number[]; rejected: number[] }>;
  scannedBytes: number;
  seconds: { scan: number; tiles: number; total: number };
  contactSheets: { kept: string; rejected: string; rejectedRows: string[] };
}

/** A volume's name: its file or folder name without the volume extension (src/dataset's case name). */
export const volumeName = (path: string): string => caseNameOf(path);

/** The structure type and category of a volume: from the options, else the longest known type in its name. */
export function structureOfVolume(path: string, type?: string, category?: string): { type: string; category: string } {
  const name = volumeName(path);
  const known = type
    ? STRUCTURES.find((s) => s.name === type)
    : [...STRUCTURES].sort((a, b) => b.name.length - a.name.length).find((s) => name.toLowerCase().includes(s.name.toLowerCase()));
  const t = type ?? known?.name;
  const c = category ?? known?.category;
  if (!t) throw new OptionError("type", (n) => `${path}: no known structure type in the name '${name}'; pass ${n("type")} NAME (and ${n("category")} isolated|contiguous)`);
  if (c !== "isolated" && c !== "contiguous") throw new OptionError("category", (n) => `${path}: structure type '${t}' has no known category; pass ${n("category")} isolated|contiguous`);
  return { type: t, category: c };
}

const vec3 = (v: number | Vec3): Vec3 => (typeof v === "number" ? [v, v, v] : [...v]);
const sig = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(6)) : x);

function roundStats(s: Partial<TileStats>): Partial<TileStats> {
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, sig(v as number)])) as Partial<TileStats>;
}

/** Reads the manifest's complete lines; a trailing partial line (a kill mid-write) is cut off the file. */
export function readManifest(path: string): ManifestLine[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, "utf8");
  const end = text.lastIndexOf("\n") + 1;
  if (end < text.length) truncateSync(path, Buffer.byteLength(text.slice(0, end)));
  return text.slice(0, end).split("\n").filter((l) => l.length > 0).map((l, i) => {
    try {
      return JSON.parse(l) as ManifestLine;
    } catch {
      throw new Error(`${path}: line ${i + 1} is not valid JSON`);
    }
  });
}

/** Runs tasks on `workers` threads (0: here, in order), calling `onResult` as each finishes. */
async function runTasks<R>(tasks: CurateTask[], workers: number, onResult: (i: number, r: R) => void): Promise<void> {
  if (workers <= 0) {
    for (const [i, t] of tasks.entries()) onResult(i, (await runTask(t)) as R);
    return;
  }
  await runPool<CurateTask, R>(new URL("./worker.ts", import.meta.url), tasks, workers, onResult);
}

interface VolumeState {
  info: VolumeInfo;
  header: VolumeHeader;
  ov: Pick<Overview, "factor" | "shape" | "tissue">;
}

/** Writes a volume's overview files: overview.ome.zarr, tissue.nii.gz, mip.png, tissue.png, volume.json (last). */
async function writeOverview(dir: string, info: VolumeInfo, ov: Overview): Promise<void> {
  const sp = info.spacingUm.map((s) => s * ov.factor) as Vec3;
  await writeVolume(join(dir, "overview.ome.zarr"), makeVolume("float32", ov.shape, sp, ov.means));
  await writeVolume(join(dir, "tissue.nii.gz"), makeVolume("uint8", ov.shape, sp, ov.tissue));
  const [, ny, nx] = ov.shape;
  writeFileAtomic(join(dir, "mip.png"), encodePngGray(toGray(mipZ(makeVolume("float32", ov.shape, sp, ov.means))), nx, ny));
  const tmip = mipZ(makeVolume("uint8", ov.shape, sp, ov.tissue));
  writeFileAtomic(join(dir, "tissue.png"), encodePngGray(Uint8Array.from(tmip, (v) => (v > 0 ? 255 : 0)), nx, ny));
  writeFileAtomic(join(dir, "volume.json"), Buffer.from(JSON.stringify(info, null, 2) + "\n"));
}

/** A curation's settings, checked: the run's numbers, its volumes (names unique) and their structure types. */
interface CurateRun {
  patch: Vec3;
  stride: Vec3;
  filters: Filters;
  workers: number;
  taskBytes: number;
  out: string;
  inputs: string[];
  names: string[];
  types: Array<{ type: string; category: string }>;
  staging: string;
  manifestPath: string;
}

/** Checks the options and the output folder (curate.json: a resumed run must use the same settings). */
function prepareRun(o: CurateOptions): CurateRun {
  const patch = vec3(o.patch ?? 300), stride = vec3(o.stride ?? patch);
  if (patch.some((p) => !Number.isInteger(p) || p < 4)) throw new OptionError("patch", (n) => `${n("patch")}: expected integers ≥ 4, got ${patch.join(",")}`);
  if (stride.some((s) => !Number.isInteger(s) || s < 1)) throw new OptionError("stride", (n) => `${n("stride")}: expected positive integers, got ${stride.join(",")}`);
  if (o.inputs.length === 0) throw new OptionError("inputs", (n) => `no input volumes (${n("inputs")})`);
  const filters: Filters = { ...DEFAULT_FILTERS, ...o.filters };
  const workers = o.workers ?? availableParallelism();
  // boxes of 32 MiB: each worker reads into one reused buffer of that size (fresh memory costs page faults)
  const taskBytes = o.taskBytes ?? 32 << 20;
  const out = o.out;
  mkdirSync(out, { recursive: true });

  // the volumes, their names (unique) and structure types
  const inputs = o.inputs.map((p) => (isUrl(p) ? p : resolve(p))); // an OME-Zarr URL stays a URL
  const names = inputs.map(volumeName);
  names.forEach((n, i) => {
    const j = names.indexOf(n);
    if (j !== i) throw new Error(`${inputs[i]}: the same volume name '${n}' as ${inputs[j]}`);
  });
  const types = inputs.map((p) => structureOfVolume(p, o.type, o.category));

  // the settings decide the output: a resumed run must use the same ones
  const settings = JSON.stringify({ inputs, patch, stride, filters, tissue: o.tissue ?? {}, types }, null, 2) + "\n";
  const settingsPath = join(out, "curate.json");
  const manifestPath = join(out, "manifest.jsonl");
  if (existsSync(settingsPath)) {
    if (!o.resume) throw new Error(`${out} already holds a curation (curate.json); pass --resume to finish it, or choose another --out`);
    if (readFileSync(settingsPath, "utf8") !== settings) {
      throw new Error(`${settingsPath}: the inputs, patch, stride, filters or types differ from this run's; resume with the same flags or choose another --out`);
    }
  } else {
    if (existsSync(manifestPath)) throw new Error(`${manifestPath} exists without curate.json; choose another --out`);
    writeFileAtomic(settingsPath, Buffer.from(settings));
  }
  const staging = join(out, ".staging");
  mkdirSync(staging, { recursive: true });
  return { patch, stride, filters, workers, taskBytes, out, inputs, names, types, staging, manifestPath };
}

/** 1. scan: overview, tissue mask and normalisation per volume (cached in volumes/<name>/volume.json). */
async function scanVolumes(run: CurateRun, o: CurateOptions): Promise<{ volumes: VolumeState[]; scannedBytes: number }> {
  const { out, inputs, names, types, taskBytes, workers } = run;
  const volumes: VolumeState[] = [];
  const toScan: Array<{ i: number; header: VolumeHeader; tasks: ReturnType<typeof overviewTasks> }> = [];
  for (const [i, path] of inputs.entries()) {
    const source = await openVolume(path);
    const header = source.header;
    await source.close();
    const dir = join(out, "volumes", names[i]);
    if (existsSync(join(dir, "volume.json"))) {
      const info = JSON.parse(readFileSync(join(dir, "volume.json"), "utf8")) as VolumeInfo;
      const mask = await readVolume(join(dir, "tissue.nii.gz"));
      volumes[i] = { info, header, ov: { factor: info.overview.factor, shape: info.overview.shape, tissue: mask.data as Uint8Array } };
    } else {
      toScan.push({ i, header, tasks: overviewTasks(path, header, overviewFactor(header.shape), taskBytes) });
    }
  }
  const scanTasks = toScan.flatMap((s) => s.tasks);
  const scanBytes = (t: (typeof scanTasks)[number], h: VolumeHeader) => t.dz * t.dy * h.shape[2] * DTYPES[h.dtype].bytes;
  const headerOfTask = new Map(toScan.flatMap((s) => s.tasks.map((t) => [t, s.header] as const)));
  const scannedBytes = scanTasks.reduce((a, t) => a + scanBytes(t, headerOfTask.get(t)!), 0);
  const scanBar = new Progress("curate: scan", Math.ceil(scannedBytes / 2 ** 20), { unit: "MB", silent: o.quiet });
  const parts: OverviewPart[] = new Array(scanTasks.length);
  await runTasks<OverviewPart>(scanTasks, Math.min(workers, scanTasks.length), (k, r) => {
    parts[k] = r;
    scanBar.tick(Math.round(scanBytes(scanTasks[k], headerOfTask.get(scanTasks[k])!) / 2 ** 20));
  });
  scanBar.finish();
  let k0 = 0;
  for (const s of toScan) {
    const ov = assembleOverview(s.header, s.tasks, parts.slice(k0, k0 + s.tasks.length), o.tissue);
    k0 += s.tasks.length;
    let tissueVoxels = 0;
    for (const v of ov.tissue) tissueVoxels += v;
    const info: VolumeInfo = {
      name: names[s.i], path: inputs[s.i], ...types[s.i], shape: [...s.header.shape], dtype: s.header.dtype, spacingUm: [...s.header.spacingUm],
      overview: { factor: ov.factor, shape: ov.shape, threshold: ov.threshold, tissueFraction: tissueVoxels / ov.tissue.length },
      normalization: ov.normalization,
    };
    await writeOverview(join(out, "volumes", names[s.i]), info, ov);
    volumes[s.i] = { info, header: s.header, ov };
  }
  return { volumes, scannedBytes };
}

/** One tile of the grid that is not in the manifest yet; `task` is the tile task that reads it (none: background). */
type TileItem = { v: number; index: number; start: Vec3; tissue: number; task?: number };

/**
 * 2. tiles: every tile in order (volume, z, y, x) that the manifest does not hold yet, and the tasks that read
 * the tiles inside the tissue, in runs of at most `taskBytes`.
 */
function planTiles(c: CurateRun, volumes: VolumeState[], doneKeys: Set<string>, taskDelayMs?: number): { items: TileItem[]; tasks: TileTask[] } {
  const { patch, stride, filters, names, inputs, staging } = c;
  const items: TileItem[] = [];
  const tasks: TileTask[] = [];
  const perTask = (h: VolumeHeader) => Math.max(1, Math.floor(c.taskBytes / tileBytes(h, patch)));
  for (const [v, vs] of volumes.entries()) {
    const [zs, ys, xs] = [0, 1, 2].map((a) => gridStarts(vs.header.shape[a], patch[a], stride[a]));
    const n = perTask(vs.header);
    let index = 0;
    for (const z of zs) for (const y of ys) {
      let run: TileTask | null = null; // the task the next tiles of this row join
      for (const x of xs) {
        const start: Vec3 = [z, y, x];
        const item: TileItem = { v, index: index++, start, tissue: tissueFraction(vs.ov, start, patch) };
        if (doneKeys.has(`${names[v]}#${item.index}`)) continue;
        items.push(item);
        if (item.tissue < filters.minTissue) { run = null; continue; }
        if (!run || run.tiles.length >= n) {
          const norm = vs.info.normalization;
          run = {
            kind: "tiles", path: inputs[v], header: vs.header, tiles: [], patch, lo: norm.lo, hi: norm.hi, mean: norm.mean, std: norm.std,
            tissueThreshold: vs.info.overview.threshold, saturationValue: saturationOf(vs.header), filters,
            stagingDir: staging, stagingPrefix: `${names[v]}_`, ...(taskDelayMs ? { delayMs: taskDelayMs } : {}),
          };
          tasks.push(run);
        }
        run.tiles.push({ index: item.index, start, tissue: item.tissue });
        item.task = tasks.length - 1;
      }
    }
  }
  return { items, tasks };
}

/**
 * 3. decide, in tile order on the main thread as the task results come in: near-duplicate removal, the rename
 * into <out>/unannotated/…/patchvolume_<n>.nii.gz and one manifest line per tile.
 */
async function decideTiles(
  run: CurateRun, volumes: VolumeState[], done: ManifestLine[], items: TileItem[], tasks: TileTask[], o: CurateOptions,
): Promise<void> {
  const { out, names, patch, filters, staging, manifestPath } = run;
  let keptCount = done.filter((l) => l.kept).length;
  const keptSignatures = new Map<string, number[][]>(names.map((n) => [n, []]));
  for (const l of done) if (l.kept && l.signature) keptSignatures.get(l.volume)?.push(l.signature);
  const total = done.length + items.length;
  const bar = new Progress("curate: tiles", total, { unit: "tiles", silent: o.quiet });
  bar.set(done.length);

  const fd = openSync(manifestPath, "a");
  const results = new Map<number, Map<number, TileResult>>();
  let next = 0;
  const record = (line: ManifestLine) => {
    const text = JSON.stringify(line) + "\n";
    writeSync(fd, text); // one write of one complete line; a kill leaves at most a partial last line
  };
  const decide = (item: TileItem, r: TileResult | null) => {
    const name = names[item.v];
    const base = { volume: name, index: item.index, start: item.start, size: patch };
    if (!r) { record({ ...base, kept: false, reason: "background", stats: { tissue: sig(item.tissue) } }); return; }
    const stats = roundStats(r.stats);
    let reason = r.reason;
    const staged = stagingPath({ stagingDir: staging, stagingPrefix: `${name}_` }, item.index);
    if (!reason && keptSignatures.get(name)!.some((s) => nearDuplicate(s, r.signature!, filters.dupCorrelation, filters.dupDifference))) reason = "duplicate";
    if (reason) {
      rmSync(staged, { force: true });
      record({ ...base, kept: false, reason, stats });
      return;
    }
    const { type, category } = volumes[item.v].info;
    const file = join("unannotated", `${category}_structures`, type, `patchvolume_${keptCount}.nii.gz`);
    mkdirSync(join(out, "unannotated", `${category}_structures`, type), { recursive: true });
    // a crash between this rename and the manifest line leaves the file in place; the resumed run rewrites it
    if (existsSync(staged)) renameSync(staged, join(out, file));
    else if (!existsSync(join(out, file))) throw new Error(`${staged}: the staged tile is missing`);
    keptSignatures.get(name)!.push(r.signature!);
    keptCount++;
    record({ ...base, kept: true, file, stats, signature: r.signature });
  };
  const drain = () => {
    while (next < items.length) {
      const item = items[next];
      if (item.task === undefined) decide(item, null);
      else {
        const r = results.get(item.task)?.get(item.index);
        if (!r) return;
        decide(item, r);
        if (tasks[item.task].tiles.at(-1)!.index === item.index) results.delete(item.task);
      }
      next++;
      bar.tick(1, `kept ${keptCount}`);
    }
  };
  try {
    drain();
    await runTasks<TileResult[]>(tasks, Math.min(run.workers, tasks.length), (k, rs) => {
      results.set(k, new Map(rs.map((r) => [r.index, r])));
      drain();
    });
    drain();
  } finally {
    closeSync(fd);
  }
  bar.finish(`kept ${keptCount}`);
}

/** Curates `o.inputs` into `o.out`; see the file's header. */
export async function curate(o: CurateOptions): Promise<CurateSummary> {
  tuneHeap();
  const t0 = Date.now();
  const run = prepareRun(o);
  const { volumes, scannedBytes } = await scanVolumes(run, o);
  const tScan = Date.now();

  const done = readManifest(run.manifestPath);
  const doneKeys = new Set(done.map((l) => `${l.volume}#${l.index}`));
  if (doneKeys.size !== done.length) throw new Error(`${run.manifestPath}: a tile is recorded twice`);
  const { items, tasks } = planTiles(run, volumes, doneKeys, o.taskDelayMs);
  await decideTiles(run, volumes, done, items, tasks, o);
  rmSync(run.staging, { recursive: true, force: true });
  const tTiles = Date.now();

  // 4. report
  const lines = readManifest(run.manifestPath);
  const summary = await summarize(run.out, lines, volumes, { patch: run.patch, stride: run.stride, filters: run.filters, examples: o.examples ?? 8 });
  summary.scannedBytes = scannedBytes;
  summary.seconds = { scan: (tScan - t0) / 1000, tiles: (tTiles - tScan) / 1000, total: (Date.now() - t0) / 1000 };
  writeFileAtomic(join(run.out, "summary.json"), Buffer.from(JSON.stringify(summary, null, 2) + "\n"));
  return summary;
}

const HIST_STATS: Array<keyof TileStats> = ["tissue", "snr", "structure", "focus", "entropy", "saturation"];

function histogram(values: number[][], bins = 20): { edges: number[]; counts: number[][] } {
  const all = values.flat().filter(Number.isFinite);
  const lo = all.length ? Math.min(...all) : 0, hi = all.length ? Math.max(...all) : 1;
  const w = (hi - lo) / bins || 1;
  const edges = Array.from({ length: bins + 1 }, (_, i) => sig(lo + i * w));
  const counts = values.map((vs) => {
    const c = new Array<number>(bins).fill(0);
    for (const v of vs) if (Number.isFinite(v)) c[Math.min(bins - 1, Math.floor((v - lo) / w))]++;
    return c;
  });
  return { edges, counts };
}

/** `k` elements of `xs` spread evenly (all of them when there are fewer). */
function spread<T>(xs: T[], k: number): T[] {
  if (xs.length <= k) return xs;
  return Array.from({ length: k }, (_, i) => xs[Math.floor((i * xs.length) / k)]);
}

/** A 64×64 gray thumbnail: the tile's z-MIP, max-pooled, scaled by the volume's normalisation range. */
async function thumbnail(source: VolumeSource, line: ManifestLine, lo: number, hi: number, size = 64): Promise<Uint8Array> {
  const vol = await source.readRegion({ start: line.start, size: line.size });
  const mip = mipZ(vol);
  const [, ny, nx] = vol.shape;
  const out = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    let m = -Infinity;
    const y0 = Math.floor((y * ny) / size), y1 = Math.max(y0 + 1, Math.floor(((y + 1) * ny) / size));
    const x0 = Math.floor((x * nx) / size), x1 = Math.max(x0 + 1, Math.floor(((x + 1) * nx) / size));
    for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) m = Math.max(m, mip[yy * nx + xx]);
    out[y * size + x] = Math.max(0, Math.min(255, Math.round(((m - lo) / Math.max(hi - lo, 1e-9)) * 255)));
  }
  return out;
}

/** Lays out rows of thumbnails (size×size) with a 2-pixel gap as one gray image. */
function sheet(rows: Uint8Array[][], cols: number, size = 64): { pixels: Uint8Array; width: number; height: number } {
  const gap = 2, width = Math.max(1, cols * (size + gap) + gap), height = Math.max(1, rows.length * (size + gap) + gap);
  const pixels = new Uint8Array(width * height).fill(40);
  rows.forEach((row, r) => row.forEach((img, c) => {
    for (let y = 0; y < size; y++) pixels.set(img.subarray(y * size, (y + 1) * size), (gap + r * (size + gap) + y) * width + gap + c * (size + gap));
  }));
  return { pixels, width, height };
}

async function summarize(
  out: string, lines: ManifestLine[], volumes: VolumeState[], o: { patch: Vec3; stride: Vec3; filters: Filters; examples: number },
): Promise<CurateSummary> {
  const count = (ls: ManifestLine[]) => {
    const rejected: Record<string, number> = {};
    for (const r of REJECT_REASONS) rejected[r] = 0;
    for (const l of ls) if (!l.kept) rejected[l.reason!]++;
    return { tiles: ls.length, kept: ls.filter((l) => l.kept).length, rejected };
  };
  const measured = lines.filter((l) => l.reason !== "background");
  const histograms: CurateSummary["histograms"] = {};
  for (const key of HIST_STATS) {
    const src = key === "tissue" ? lines : measured;
    const values = (kept: boolean) => src.filter((l) => l.kept === kept).map((l) => l.stats[key] as number);
    const h = histogram([values(true), values(false)]);
    histograms[key] = { edges: h.edges, kept: h.counts[0], rejected: h.counts[1] };
  }
  // contact sheets: one row of kept examples per row of `examples`; one row per rejection reason
  const byName = new Map(volumes.map((v) => [v.info.name, v.info]));
  const sources = new Map<string, VolumeSource>();
  const thumb = async (l: ManifestLine) => {
    const info = byName.get(l.volume)!;
    if (!sources.has(l.volume)) sources.set(l.volume, await openVolume(info.path));
    return thumbnail(sources.get(l.volume)!, l, info.normalization.lo, info.normalization.hi);
  };
  const keptEx = spread(lines.filter((l) => l.kept), o.examples * 3);
  const keptRows: Uint8Array[][] = [];
  const rejectedRows: Uint8Array[][] = [];
  const rowReasons: string[] = [];
  try {
    for (let i = 0; i < keptEx.length; i += o.examples) {
      const row: Uint8Array[] = [];
      for (const l of keptEx.slice(i, i + o.examples)) row.push(await thumb(l));
      keptRows.push(row);
    }
    for (const reason of REJECT_REASONS) {
      const ex = spread(lines.filter((l) => l.reason === reason), o.examples);
      if (!ex.length) continue;
      rowReasons.push(reason);
      const row: Uint8Array[] = [];
      for (const l of ex) row.push(await thumb(l));
      rejectedRows.push(row);
    }
  } finally {
    for (const src of sources.values()) await src.close();
  }
  for (const [file, rows] of [["contact_kept.png", keptRows], ["contact_rejected.png", rejectedRows]] as const) {
    const s = sheet(rows, o.examples);
    writeFileAtomic(join(out, file), encodePngGray(s.pixels, s.width, s.height));
  }
  return {
    out, patch: o.patch, stride: o.stride, filters: o.filters, ...count(lines),
    volumes: volumes.map((v) => ({ ...v.info, ...count(lines.filter((l) => l.volume === v.info.name)) })),
    histograms, scannedBytes: 0, seconds: { scan: 0, tiles: 0, total: 0 },
    contactSheets: { kept: "contact_kept.png", rejected: "contact_rejected.png", rejectedRows: rowReasons },
  };
}

/** The kept tile files under `out` (for checks): unannotated/**\/patchvolume_<n>.nii.gz, relative paths. */
export function keptFiles(out: string): string[] {
  const found: string[] = [];
  const walk = (d: string, rel: string) => {
    if (!existsSync(d)) return;
    for (const f of readdirSync(d).sort()) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p, join(rel, f));
      else if (/^patchvolume_\d+\.nii\.gz$/.test(f)) found.push(join(rel, f));
    }
  };
  walk(join(out, "unannotated"), "unannotated");
  return found;
}
