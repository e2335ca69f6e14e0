// The SELMA3D evaluation over folders: pair predictions with ground-truth labels by case name, score each
// case as the challenge does (metrics.ts), and aggregate: the challenge's keys (iso_dice_mean/std,
// iso_panoptic_quality_mean/std, con_dice_mean/std, con_cldice_mean/std), per category, per structure type,
// overall, and held-out vs seen types when a dataset.json marks roles; the extra metrics (Betti errors,
// HD95) per case and group under `extra` when asked for, apart from the challenge's. Cases run in a pool of worker threads.
import { readdirSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { IGNORE_LABEL, type LabelMap, applyLabelMap, countIgnored, labelMapOfDatasetJson } from "../data/labels.ts";
import { isVolumeEntry, readVolume, type Vec3 } from "../io/index.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import { Progress } from "../util/progress.ts";
import { runPool } from "../util/workers.ts";
import { CATEGORY_NAMES, caseNameOf, categoryName, structureOf, structureTable, type Category, type CategoryName, type Density, type StructureInfo } from "../dataset/index.ts";
import { caseMetrics, type CaseMetrics, type ExtraMetrics } from "./metrics.ts";
import { tuneHeap } from "../util/heap.ts";
import { type DatasetJson, findDatasetJson, readDatasetJson } from "../dataset/index.ts";
import { checkExists } from "../util/fserror.ts";

export interface CaseTask {
  pred: string;
  gt: string;
  table?: Record<string, StructureInfo>;
  extra?: boolean;
  labelMap?: LabelMap;
}

export interface CaseResult extends CaseMetrics {
  case: string;
  structure: string;
  category: Category;
  density: Density;
  /** dataset.json's role of the structure type ("annotated", "heldOut", …), when it has one. */
  role?: string;
  prediction: string;
  groundTruth: string;
  shape: Vec3;
  /** With a sparse annotation (some ground-truth voxels ignored): the voxels scored (labelled) and left out. */
  labelledVoxels?: number;
  ignoredVoxels?: number;
  seconds: number;
}

/**
 * The prediction and ground truth as scored: with a label map, the ground truth's values mapped, and where it
 * ignores voxels both masks set to background there, so every metric sees labelled voxels only (Dice is then
 * exactly the Dice over the labelled voxels). Without a map the volumes are scored as they are.
 */
function scoredMasks(
  pred: ArrayLike<number>, gt: ArrayLike<number>, map: LabelMap | undefined,
): { pred: ArrayLike<number>; gt: ArrayLike<number>; ignored: number } {
  if (!map) return { pred, gt, ignored: 0 };
  const g = applyLabelMap(gt, map);
  const ignored = countIgnored(g);
  if (ignored === 0) return { pred, gt: g, ignored };
  const p = new Uint8Array(g.length);
  for (let i = 0; i < g.length; i++) {
    if (g[i] === IGNORE_LABEL) g[i] = 0;
    else p[i] = pred[i] > 0 ? 1 : 0;
  }
  return { pred: p, gt: g, ignored };
}

/** Scores one prediction against its ground truth; the structure (and so the metrics) comes from the ground truth's file name. */
export async function evaluateCase(
  predPath: string, gtPath: string, opts: { table?: Record<string, StructureInfo>; extra?: boolean; labelMap?: LabelMap } = {},
): Promise<CaseResult> {
  const t0 = performance.now();
  const s = structureOf(gtPath, opts.table);
  const [pred, gt] = await Promise.all([readVolume(predPath), readVolume(gtPath)]);
  if (pred.shape.some((v, i) => v !== gt.shape[i])) {
    throw new Error(`${predPath}: shape ${pred.shape.join("×")} does not match the ground truth ${gtPath}, ${gt.shape.join("×")}`);
  }
  const scored = scoredMasks(pred.data, gt.data, opts.labelMap);
  const m = caseMetrics(scored.pred, scored.gt, gt.shape, s.category, { extra: opts.extra, spacingUm: gt.spacingUm });
  const sparse = scored.ignored > 0 ? { labelledVoxels: scored.gt.length - scored.ignored, ignoredVoxels: scored.ignored } : {};
  return {
    case: s.caseName, structure: s.structure, category: s.category, density: s.density,
    prediction: predPath, groundTruth: gtPath, shape: gt.shape, ...m, ...sparse, seconds: (performance.now() - t0) / 1000,
  };
}

// ---------------------------------------------------------------- aggregation

/** A metric over a group of cases. NaN (null in JSON) propagates into mean and std, as in the challenge. */
export interface MetricStats {
  n: number;
  mean: number;
  /** Sample standard deviation (n − 1); NaN for fewer than two cases. */
  std: number;
  /** Cases whose value is NaN. */
  nan: number;
  /** Mean and sample std of the cases that are not NaN. */
  nanmean: number;
  nanstd: number;
}

function meanStd(xs: number[]): [number, number] {
  const n = xs.length;
  if (n === 0) return [NaN, NaN];
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  if (n < 2) return [mean, NaN];
  return [mean, Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1))];
}

export function metricStats(xs: number[]): MetricStats {
  const finite = xs.filter((x) => !Number.isNaN(x));
  const [mean, std] = meanStd(xs);
  const [nanmean, nanstd] = meanStd(finite);
  return { n: xs.length, mean, std, nan: xs.length - finite.length, nanmean, nanstd };
}

/** The extra metrics' names, as in ExtraMetrics and metrics.json. */
export const EXTRA_METRICS = ["betti0_error", "betti1_error", "hd95_voxels", "hd95_um"] as const;
export type ExtraMetricName = (typeof EXTRA_METRICS)[number];

export interface GroupSummary {
  cases: number;
  dice: MetricStats;
  cldice?: MetricStats;
  panoptic_quality?: MetricStats;
  /** The extra metrics over the cases that have them: not the challenge's, not in its aggregates. */
  extra?: Record<ExtraMetricName, MetricStats>;
}

function summarize(cases: CaseResult[]): GroupSummary {
  const out: GroupSummary = { cases: cases.length, dice: metricStats(cases.map((c) => c.dice)) };
  const con = cases.filter((c) => c.cldice !== undefined);
  const iso = cases.filter((c) => c.panoptic_quality !== undefined);
  if (con.length) out.cldice = metricStats(con.map((c) => c.cldice!));
  if (iso.length) out.panoptic_quality = metricStats(iso.map((c) => c.panoptic_quality!));
  const extra = cases.map((c) => c.extra).filter((e): e is ExtraMetrics => e !== undefined);
  if (extra.length) {
    out.extra = Object.fromEntries(EXTRA_METRICS.map((k) => [k, metricStats(extra.map((e) => e[k]))])) as Record<ExtraMetricName, MetricStats>;
  }
  return out;
}

/**
 * The challenge's aggregate keys over `cases` (<iso|con>_<metric>_mean and _std, as its evaluate.py writes
 * them), plus _nanmean, _nanstd and _nan_cases for each.
 */
export function challengeAggregates(cases: CaseResult[]): Record<string, number> {
  const iso = cases.filter((c) => c.category === "isolated"), con = cases.filter((c) => c.category === "contiguous");
  const series: Array<[string, number[]]> = [
    ["iso_dice", iso.map((c) => c.dice)],
    ["iso_panoptic_quality", iso.map((c) => c.panoptic_quality ?? NaN)],
    ["con_dice", con.map((c) => c.dice)],
    ["con_cldice", con.map((c) => c.cldice ?? NaN)],
  ];
  const out: Record<string, number> = {};
  for (const [key, xs] of series) {
    const s = metricStats(xs);
    out[`${key}_mean`] = s.mean;
    out[`${key}_std`] = s.std;
  }
  for (const [key, xs] of series) {
    const s = metricStats(xs);
    out[`${key}_nanmean`] = s.nanmean;
    out[`${key}_nanstd`] = s.nanstd;
    out[`${key}_nan_cases`] = s.nan;
  }
  return out;
}

export const METRICS_NOTE = [
  "null stands for NaN: JSON has no NaN.",
  "aggregates: *_mean and *_std (sample std, n - 1) are over cases exactly as the challenge computes them, so one NaN case makes them NaN; *_nanmean and *_nanstd leave NaN cases out, and *_nan_cases counts them.",
  "clDice is NaN, as in the challenge's code (no guard), when a skeleton is empty (empty prediction or ground truth) or when Tprec = Tsens = 0.",
  "Panoptic quality is NaN when neither prediction nor ground truth has any instance (panoptica's edge case; Dice is 1 then), and 0 when there is no match otherwise.",
  "extra (per case and per group) holds metrics that are not the 2026 challenge's and are in none of its aggregates: betti0_error and betti1_error (|β0(P) − β0(G)|, |β1(P) − β1(G)|, 26-connected foreground, as the 2024–2025 editions scored) and hd95_voxels / hd95_um (MONAI's 95th-percentile Hausdorff distance between the 6-connected surfaces, the larger directed percentile; NaN when either mask is empty).",
  "A std over fewer than two cases is NaN (the challenge's statistics.stdev raises an error there), and so is a std over NaN cases (where Python 3.11's statistics.stdev raises AttributeError: the challenge's own evaluate.py would stop).",
];

/** Added to the notes when some ground truth ignores voxels (sparse annotation): not the challenge's setting. */
export const SPARSE_NOTE = "sparse annotation: the cases with labelledVoxels and ignoredVoxels have ground-truth voxels marked ignore (not labelled) by the label map; only their labelled voxels are scored (prediction and ground truth are set to background at ignored voxels before every metric), so their scores are not the challenge's full-volume scores.";

/** The cases of held-out (or seen) structure types, in MetricsJson.roles. */
export interface RoleGroup { cases: number; structures: string[]; aggregates: Record<string, number> }

export interface MetricsJson {
  tool: "lsmseg evaluate";
  note: string[];
  pred: string;
  gt: string;
  dataset: string | null;
  aggregates: Record<string, number>;
  categories: Record<CategoryName, GroupSummary & { structures: string[] }>;
  structures: Record<string, GroupSummary & { category: Category; density: Density; role?: string }>;
  overall: GroupSummary;
  /** Held-out structure types (role "heldOut" in dataset.json) vs the others, when roles are known. */
  roles?: { heldOut: RoleGroup; seen: RoleGroup };
  results: CaseResult[];
  /** Predictions with no ground truth of the same case name (not scored). */
  unmatchedPredictions: string[];
  workers: number;
  seconds: number;
}

export function summarizeCases(cases: CaseResult[]): Pick<MetricsJson, "aggregates" | "categories" | "structures" | "overall" | "roles"> {
  const categories = {} as MetricsJson["categories"];
  for (const name of CATEGORY_NAMES) {
    const inCat = cases.filter((c) => categoryName(c) === name);
    categories[name] = { ...summarize(inCat), structures: [...new Set(inCat.map((c) => c.structure))].sort() };
  }
  const structures: MetricsJson["structures"] = {};
  for (const name of [...new Set(cases.map((c) => c.structure))].sort()) {
    const inType = cases.filter((c) => c.structure === name);
    const { category, density, role } = inType[0];
    structures[name] = { category, density, ...(role !== undefined ? { role } : {}), ...summarize(inType) };
  }
  const out: ReturnType<typeof summarizeCases> = { aggregates: challengeAggregates(cases), categories, structures, overall: summarize(cases) };
  if (cases.some((c) => c.role !== undefined)) {
    const group = (held: boolean) => {
      const inGroup = cases.filter((c) => (c.role === "heldOut") === held);
      return { cases: inGroup.length, structures: [...new Set(inGroup.map((c) => c.structure))].sort(), aggregates: challengeAggregates(inGroup) };
    };
    out.roles = { heldOut: group(true), seen: group(false) };
  }
  return out;
}

// ---------------------------------------------------------------- folders

/** The volumes in a folder by case name (io's isVolumeEntry: volume files, Zarr folders, plane folders). */
function listVolumes(dir: string, what: string): Map<string, string> {
  checkExists(dir, `${what} folder does not exist`);
  const out = new Map<string, string>();
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name.startsWith(".") || e.name.includes(".tmp-")) continue;
    if (!isVolumeEntry(join(dir, e.name), e.isDirectory())) continue;
    const name = caseNameOf(e.name);
    const prev = out.get(name);
    if (prev) throw new Error(`${dir}: two ${what} volumes for case ${name}: ${prev.split("/").pop()} and ${e.name}`);
    out.set(name, join(dir, e.name));
  }
  return out;
}

interface DatasetInfo {
  path: string;
  structures: Record<string, { category?: string; density?: string; role?: string }>;
  /** From its nnU-Net `labels` (an "ignore" entry: sparse annotation), when it has them. */
  labelMap: LabelMap | null;
}

/** dataset.json: the path given, or the nearest one with "structures" beside the labels (src/dataset's rule), or none. */
function findDataset(gtDir: string, given?: string): DatasetInfo | null {
  if (given) {
    checkExists(given, "dataset.json not found");
    const d = readDatasetJson(given);
    if (!d.raw.structures || typeof d.raw.structures !== "object") throw new Error(`${d.path}: no "structures" object`);
    return withLabelMap(d);
  }
  const d = findDatasetJson(gtDir, { accept: (j) => !!j.raw.structures && typeof j.raw.structures === "object" });
  return d ? withLabelMap(d) : null;
}

/** A dataset.json with the label map its nnU-Net `labels` declare (an "ignore" entry: sparse annotation). */
function withLabelMap(d: DatasetJson): DatasetInfo {
  return { path: d.path, structures: d.structures, labelMap: labelMapOfDatasetJson(d.raw, d.path) };
}

/**
 * Pairs nnU-Net-named predictions with their truths: a prediction `<case>_0000` (named after its image in
 * imagesTs/) stands for case `<case>` when there is a truth of that name and no prediction named so already.
 */
function pairChannelSuffixes(preds: Map<string, string>, gts: Map<string, string>): void {
  for (const [name, path] of [...preds]) {
    const c = caseNameOf(name, true);
    if (c !== name && !gts.has(name) && gts.has(c) && !preds.has(c)) {
      preds.delete(name);
      preds.set(c, path);
    }
  }
}

export interface EvaluateOptions {
  /** Where to write metrics.json (atomically); nothing is written without it. */
  out?: string;
  /** dataset.json with extra structure types and roles; found beside the labels when not given. */
  dataset?: string;
  /** Worker threads; 1 evaluates in this thread. Default: the idle cores, at most 8, and at least 4 cases each. */
  workers?: number;
  quiet?: boolean;
  /** Compute the extra metrics (Betti errors, HD95) as well; default false (they cost more than the challenge's). */
  extra?: boolean;
  /** What the ground truth's values mean (default: dataset.json's `labels`, else every value > 0 is foreground). */
  labelMap?: LabelMap;
}

/**
 * Worker threads for `cases` cases when none are asked for: one per idle core, at most 8, and at least 4 cases
 * per worker. The first figures (6 cases of 200³: 2.05 s in one thread, 2.35 s with 2 workers; 24 cases 9.4 s
 * and 7.5 s) were taken when a worker took about 0.35 s to start under tsx. Compiled workers start in tens of
 * ms, but on a busy machine a second thread only competes for the same cores: with the load average at 23 on
 * 2 cores, 48 cases of 64³ took 2.4–4.1 s in one thread and 3.8–5.1 s with 2 workers (whole processes, dist/).
 */
export function defaultEvalWorkers(cases: number, cores = availableParallelism(), idle = cores): number {
  return Math.max(1, Math.min(cores, idle, 8, Math.floor(cases / 4)));
}

/** The cores not busy with other work, by the 1-minute load average (at least 1). */
export function idleCores(cores = availableParallelism(), load1 = loadavg()[0]): number {
  return Math.max(1, Math.round(cores - load1));
}

/** Evaluates every ground-truth case in `gtDir` against the prediction of the same case name in `predDir`. */
export async function evaluateFolder(predDir: string, gtDir: string, opts: EvaluateOptions = {}): Promise<MetricsJson> {
  tuneHeap();
  const t0 = performance.now();
  const gts = listVolumes(gtDir, "ground-truth");
  const preds = listVolumes(predDir, "prediction");
  pairChannelSuffixes(preds, gts);
  if (gts.size === 0) throw new Error(`${gtDir}: no ground-truth volumes (.mha, .nii.gz, .nii, .tif, .zarr)`);
  const dataset = findDataset(gtDir, opts.dataset);
  const extra: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(dataset?.structures ?? {})) if (s.category && s.density) extra[name] = s;
  const table = structureTable(extra, dataset?.path ?? "dataset.json");
  const cases = [...gts.keys()];
  for (const name of cases) structureOf(gts.get(name)!, table); // unknown prefixes fail before any work
  const missing = cases.filter((c) => !preds.has(c));
  if (missing.length) {
    throw new Error(`${predDir}: no prediction for ${missing.length} of ${cases.length} cases: ${missing.join(", ")}`);
  }
  const unmatchedPredictions = [...preds.keys()].filter((p) => !gts.has(p)).map((p) => preds.get(p)!);
  const extraMetrics = opts.extra ?? false;
  const labelMap = opts.labelMap ?? dataset?.labelMap ?? undefined;
  const tasks: CaseTask[] = cases.map((c) => ({
    pred: preds.get(c)!, gt: gts.get(c)!, table, extra: extraMetrics, ...(labelMap ? { labelMap } : {}),
  }));
  const workers = Math.max(1, Math.min(opts.workers ?? defaultEvalWorkers(tasks.length, availableParallelism(), idleCores()), tasks.length));
  const progress = new Progress("evaluate", tasks.length, { unit: "cases", silent: opts.quiet });
  let results: CaseResult[];
  if (workers === 1) {
    results = [];
    for (const t of tasks) {
      results.push(await evaluateCase(t.pred, t.gt, { table, extra: extraMetrics, labelMap }));
      progress.tick(1, results[results.length - 1].case);
    }
  } else {
    results = await runPool<CaseTask, CaseResult>(new URL("./worker.ts", import.meta.url), tasks, workers, (_i, r) => progress.tick(1, r.case));
  }
  progress.finish();
  for (const r of results) {
    const role = dataset?.structures[r.structure]?.role;
    if (role !== undefined) r.role = role;
  }
  const metrics: MetricsJson = {
    tool: "lsmseg evaluate",
    note: results.some((r) => r.ignoredVoxels) ? [...METRICS_NOTE, SPARSE_NOTE] : METRICS_NOTE,
    pred: resolve(predDir),
    gt: resolve(gtDir),
    dataset: dataset?.path ?? null,
    ...summarizeCases(results),
    results,
    unmatchedPredictions,
    workers,
    seconds: (performance.now() - t0) / 1000,
  };
  if (opts.out) writeFileAtomic(opts.out, Buffer.from(JSON.stringify(metrics, null, 2) + "\n"));
  return metrics;
}
