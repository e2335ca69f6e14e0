// The experiment the challenge asks about: does self-supervised pretraining help fine-tuning with few labels,
// and on structure types no label shows? For each method (and "none": from scratch) pretrain once on the
// unannotated set, then for each label fraction and seed fine-tune on a stratified subset of the annotated
// cases, predict the test set and score it with the challenge's metrics; the table gives per method × fraction
// the mean ± sample standard deviation over seeds of the Dice per category, for seen and held-out types.
// Every finished piece is kept on disk (pretraining runs, fine-tuning runs, predictions, summaries), so a
// stopped experiment started again with the same --out continues where it was.
// With several pretraining sources (Task 2's question: does more or better-curated data help?), every method is
// pretrained on each source, and each (method, source) pair is a row of its own: "mae (curated)".
// A label fraction counts annotated cases per structure type (at least one), or, with fractionOf "voxels" (real
// volumes, where a type has one or two cases), the labelled z-planes of every training volume: the others become
// ignored voxels, as a sparse annotation has them. results.json holds every run; curves.html plots them.
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { type Case, annotatedCases } from "../data/dataset.ts";
import { IGNORE_LABEL, type LabelMap, applyLabelMap } from "../data/labels.ts";
import { stream } from "../data/rng.ts";
import { readVolume, writeVolume } from "../io/index.ts";
import { curvesPage } from "../report/curves.ts";
import { evaluateFolder } from "../eval/evaluate.ts";
import { categoryName, CATEGORY_NAMES, findDatasetJson } from "../dataset/index.ts";
import type { Arch } from "../nn/networks.ts";
import { finetune } from "../seg/finetune.ts";
import { CHECKPOINT_NAMES, loadModel } from "../seg/model.ts";
import { predictPaths } from "../seg/predict.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import { formatSeconds } from "../util/progress.ts";
import { pretrain } from "./pretrain.ts";

export interface ExperimentOptions {
  /** A dataset root with unannotated/, annotated/ and test/ (images/ + labels/), as `lsmseg synth` writes it. */
  data: string;
  out: string;
  /** SSL methods, and "none" for fine-tuning from scratch. */
  methods: string[];
  /** Unannotated sets to pretrain on, by name (default: the dataset's own, named "patches"); e.g. a curated set. */
  pretrainData?: Array<{ name: string; data: string }>;
  labelFractions: number[];
  /** What a label fraction counts: annotated cases per structure type (default), or labelled z-planes per volume. */
  fractionOf?: "cases" | "voxels";
  /** What the label files' values mean (default dataset.json's `labels`); used in fine-tuning and evaluation. */
  labelMap?: LabelMap;
  seeds: number;
  pretrainSteps?: number;
  finetuneEpochs?: number;
  finetuneStepsPerEpoch?: number;
  /** Learning-rate warm-up steps of every fine-tuning run, scratch and pretrained alike (default 0), so that
   *  the rows differ in their initialisation only (finetune alone warms up after --init by default). */
  finetuneWarmupSteps?: number;
  arch?: Arch;
  baseFeatures?: number;
  /** UNETR's transformer width and heads (see PlanOptions.transformer). */
  transformer?: { hiddenSize?: number; numHeads?: number };
  patchSize?: [number, number, number];
  batchSize?: number;
  precision?: "bf16" | "fp32";
  /** Where pretraining, fine-tuning and prediction run ("cpu" default, "cuda", "cuda:N"). */
  device?: string;
  workers?: number;
  /** Mirror test-time augmentation in prediction (default off: 8× the time). */
  mirror?: boolean;
  /** Sliding-window step of prediction as a fraction of the patch (default 0.5, nnU-Net's; 1: no overlap). */
  predictStep?: number;
  quiet?: boolean;
  log?: (line: string) => void;
}

/** One row of the table: a method pretrained on one source (or "none"), and its folders' name. */
interface Variant {
  label: string;
  dir: string;
  method: string;
  source: { name: string; data: string } | null;
}

/** One fine-tuning run's scores: mean Dice over the test cases of each group. */
export interface RunSummary {
  method: string;
  fraction: number;
  seed: number;
  trainCases: string[];
  /** Labelled (not ignored) voxels in the training labels. */
  labelledVoxels?: number;
  /** The budget of this run: pretraining steps of its checkpoint (0 from scratch) and fine-tuning steps. */
  pretrainSteps?: number;
  finetuneSteps?: number;
  dice: Record<string, number>;
  cldice: Record<string, number>;
  pq: Record<string, number>;
  seconds: number;
}

export interface ExperimentResult {
  runs: RunSummary[];
  pretraining: Record<string, { firstLoss: number; lastLoss: number; seconds: number }>;
  table: TableRow[];
  markdown: string;
  seconds: number;
}

export interface TableRow {
  method: string;
  fraction: number;
  seeds: number;
  /** group → [mean, sample std] over seeds of the run's mean Dice in that group */
  dice: Record<string, [number, number]>;
}

export const GROUPS = [...CATEGORY_NAMES, "seen types", "held-out types", "all"] as const;

/**
 * A stratified subset: of every structure type's cases (sorted by id), shuffled by (seed, type),
 * the first max(1, round(fraction · n)). The same seed gives the same subset on every run.
 */
export function labelSubset(cases: readonly Case[], fraction: number, seed: number): Case[] {
  if (!(fraction > 0 && fraction <= 1)) throw new Error(`label fraction must be in (0, 1], got ${fraction}`);
  const byType = new Map<string, Case[]>();
  for (const c of [...cases].sort((a, b) => (a.id < b.id ? -1 : 1))) byType.set(c.structure, [...(byType.get(c.structure) ?? []), c]);
  const out: Case[] = [];
  for (const type of [...byType.keys()].sort()) {
    const list = byType.get(type)!;
    const rng = stream(seed, "label-fraction", fraction, type);
    for (let i = list.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      [list[i], list[j]] = [list[j], list[i]];
    }
    out.push(...list.slice(0, Math.max(1, Math.round(fraction * list.length))));
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** A dataset folder holding only `cases` (symbolic links to the images and labels) and the dataset.json. */
function subsetFolder(dir: string, cases: Case[], datasetJson: string | null): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "annotated", "images"), { recursive: true });
  mkdirSync(join(dir, "annotated", "labels"), { recursive: true });
  for (const c of cases) {
    symlinkSync(resolve(c.imagePath), join(dir, "annotated", "images", basename(c.imagePath)));
    symlinkSync(resolve(c.labelPath!), join(dir, "annotated", "labels", basename(c.labelPath!)));
  }
  if (datasetJson) copyFileSync(datasetJson, join(dir, "dataset.json"));
  return dir;
}

/** The value of an ignored voxel in the label files a "voxels" subset writes (declared in its dataset.json). */
const SUBSET_IGNORE = 2;

/**
 * A dataset folder holding every case of `cases`, each label keeping max(1, round(fraction · n)) of its n labelled
 * z-planes (drawn by seed and case) and ignoring the rest: labels rewritten as 0 background, 1 foreground,
 * 2 ignore, which the folder's dataset.json declares. Returns the folder and the labelled voxels kept.
 */
export async function planeSubsetFolder(
  dir: string, cases: Case[], fraction: number, seed: number, datasetJson: string | null,
): Promise<{ dir: string; labelledVoxels: number }> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "annotated", "images"), { recursive: true });
  mkdirSync(join(dir, "annotated", "labels"), { recursive: true });
  let labelledVoxels = 0;
  for (const c of cases) {
    symlinkSync(resolve(c.imagePath), join(dir, "annotated", "images", basename(c.imagePath)));
    const lab = await readVolume(c.labelPath!);
    const mapped = applyLabelMap(lab.data, c.labelMap);
    const [nz, ny, nx] = lab.shape, plane = ny * nx;
    const planes: number[] = [];
    for (let z = 0; z < nz; z++) if (mapped.subarray(z * plane, (z + 1) * plane).some((v) => v !== IGNORE_LABEL)) planes.push(z);
    const rng = stream(seed, "label-planes", fraction, c.id);
    for (let i = planes.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      [planes[i], planes[j]] = [planes[j], planes[i]];
    }
    const keep = new Set(planes.slice(0, Math.max(1, Math.round(fraction * planes.length))));
    const out = new Uint8Array(mapped.length).fill(SUBSET_IGNORE);
    for (const z of keep) for (let i = z * plane; i < (z + 1) * plane; i++) {
      if (mapped[i] === IGNORE_LABEL) continue;
      out[i] = mapped[i];
      labelledVoxels++;
    }
    await writeVolume(join(dir, "annotated", "labels", `${c.id}.nii.gz`), { ...lab, dtype: "uint8", data: out, shape: [nz, ny, nx] });
  }
  const json = datasetJson ? JSON.parse(readFileSync(datasetJson, "utf8")) as Record<string, unknown> : {};
  writeFileSync(join(dir, "dataset.json"), JSON.stringify({ ...json, labels: { background: 0, foreground: 1, ignore: SUBSET_IGNORE } }, null, 2) + "\n");
  return { dir, labelledVoxels };
}

/** Labelled (not ignored) voxels of the cases' labels. */
async function labelledVoxelsOf(cases: Case[]): Promise<number> {
  let n = 0;
  for (const c of cases) {
    const mapped = applyLabelMap((await readVolume(c.labelPath!)).data, c.labelMap);
    for (let i = 0; i < mapped.length; i++) if (mapped[i] !== IGNORE_LABEL) n++;
  }
  return n;
}

const meanOf = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

function meanStd(xs: number[]): [number, number] {
  const f = xs.filter((x) => !Number.isNaN(x));
  const m = meanOf(f);
  return [m, f.length < 2 ? NaN : Math.sqrt(f.reduce((s, x) => s + (x - m) ** 2, 0) / (f.length - 1))];
}

function fmt([m, s]: [number, number]): string {
  if (Number.isNaN(m)) return "—";
  return Number.isNaN(s) ? m.toFixed(3) : `${m.toFixed(3)} ± ${s.toFixed(3)}`;
}

/** The rows of the table: per method and fraction, mean ± sample std over seeds of each group's mean Dice. */
export function tabulate(runs: RunSummary[], methods: string[], fractions: number[]): TableRow[] {
  const rows: TableRow[] = [];
  for (const method of methods) for (const fraction of fractions) {
    const these = runs.filter((r) => r.method === method && r.fraction === fraction);
    if (these.length === 0) continue;
    const dice: TableRow["dice"] = {};
    for (const g of GROUPS) dice[g] = meanStd(these.map((r) => r.dice[g] ?? NaN));
    rows.push({ method, fraction, seeds: these.length, dice });
  }
  return rows;
}

export function markdownTable(rows: TableRow[]): string {
  const head = `| method | labels | seeds | ${GROUPS.join(" | ")} |`;
  const sep = `|---|---|---|${GROUPS.map(() => "---").join("|")}|`;
  const lines = rows.map((r) => `| ${r.method} | ${Math.round(r.fraction * 100)} % | ${r.seeds} | ${GROUPS.map((g) => fmt(r.dice[g])).join(" | ")} |`);
  return [head, sep, ...lines].join("\n");
}

/** A summary this experiment wrote earlier (atomically), or null when there is none; an unreadable one is an error. */
function readJson<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch (e) {
    throw new Error(`${path}: not a summary this experiment wrote (${(e as Error).message}); delete it to run that step again`);
  }
}

/** What the stages of an experiment share: the test set, the annotated cases, the rows, the budget. */
interface Setup {
  testImages: string;
  testLabels: string;
  datasetJson: string | null;
  annotated: Case[];
  byVoxels: boolean;
  pretrainSteps: number;
  finetuneEpochs: number;
  finetuneStepsPerEpoch: number;
  sources: Array<{ name: string; data: string }>;
  variants: Variant[];
  planOptions: { arch?: Arch; baseFeatures: number; transformer?: ExperimentOptions["transformer"]; patchSize: [number, number, number]; batchSize: number };
}

/** Checks the data and the pretraining sources, names the rows and writes experiment.json. */
async function setUp(o: ExperimentOptions): Promise<Setup> {
  mkdirSync(o.out, { recursive: true });
  const testImages = join(o.data, "test", "images"), testLabels = join(o.data, "test", "labels");
  if (!existsSync(testImages) || !existsSync(testLabels)) throw new Error(`${o.data}: no test/images and test/labels (the experiment scores the test set)`);
  const datasetJson = findDatasetJson(o.data, { levels: 0 })?.path ?? null;
  const annotated = await annotatedCases(o.data, { checkShapes: false, labelMap: o.labelMap });
  const sources = o.pretrainData?.length ? o.pretrainData : [{ name: "patches", data: o.data }];
  for (const src of sources) {
    if (!/^[\w.-]+$/.test(src.name)) throw new Error(`pretraining source name '${src.name}': use letters, digits, '.', '-' or '_'`);
    if (!existsSync(src.data)) throw new Error(`${src.data}: no such folder (pretraining source '${src.name}')`);
  }
  const several = sources.length > 1 || sources[0].name !== "patches";
  // the rows: "none", and each method on each source ("mae", or "mae (curated)" with several sources)
  const variants = o.methods.flatMap((method): Variant[] => method === "none"
    ? [{ label: "none", dir: "none", method, source: null }]
    : sources.map((src) => ({ label: several ? `${method} (${src.name})` : method, dir: several ? `${method}@${src.name}` : method, method, source: src })));
  const planOptions = {
    arch: o.arch, baseFeatures: o.baseFeatures ?? 8, transformer: o.transformer, patchSize: o.patchSize ?? [32, 32, 32] as [number, number, number],
    batchSize: o.batchSize ?? 2,
  };
  writeFileAtomic(join(o.out, "experiment.json"), Buffer.from(JSON.stringify({ ...o, log: undefined }, null, 2) + "\n"));
  return {
    testImages, testLabels, datasetJson, annotated, byVoxels: o.fractionOf === "voxels", pretrainSteps: o.pretrainSteps ?? 200,
    finetuneEpochs: o.finetuneEpochs ?? 2, finetuneStepsPerEpoch: o.finetuneStepsPerEpoch ?? 30, sources, variants, planOptions,
  };
}

/** Pretraining, once per method and source (seed 0; a finished one is read back): the checkpoint of every row. */
async function pretrainVariants(o: ExperimentOptions, s: Setup, log: (line: string) => void) {
  const pretraining: ExperimentResult["pretraining"] = {};
  const checkpoints = new Map<string, string | undefined>();
  for (const { label, dir, method, source } of s.variants) {
    if (!source) { checkpoints.set(label, undefined); continue; }
    const out = join(o.out, "pretrain", dir);
    const final = join(out, CHECKPOINT_NAMES.final);
    const tp = performance.now();
    if (!existsSync(final)) {
      log(`pretraining ${label} (${s.pretrainSteps} steps on ${source.data})`);
      const res = await pretrain({
        data: source.data, out, method, steps: s.pretrainSteps, resume: existsSync(join(out, CHECKPOINT_NAMES.latest)),
        plan: s.planOptions, precision: o.precision, device: o.device, workers: o.workers, quiet: o.quiet, log: () => {},
      });
      pretraining[label] = { firstLoss: res.firstLoss, lastLoss: res.lastLoss, seconds: (performance.now() - tp) / 1000 };
      writeFileAtomic(join(out, "summary.json"), Buffer.from(JSON.stringify(pretraining[label]) + "\n"));
    } else {
      pretraining[label] = readJson(join(out, "summary.json")) ?? { firstLoss: NaN, lastLoss: NaN, seconds: NaN };
    }
    const p = pretraining[label];
    log(`  ${label}: loss ${p.firstLoss.toFixed(4)} → ${p.lastLoss.toFixed(4)} (${formatSeconds(p.seconds)})`);
    checkpoints.set(label, final);
  }
  return { pretraining, checkpoints };
}

/** Writes results.json, results.md and curves.html for the runs done so far; the result. */
function resultsWriter(o: ExperimentOptions, s: Setup, pretraining: ExperimentResult["pretraining"], t0: number) {
  const total = s.variants.length * o.labelFractions.length * o.seeds;
  const fractionOf = s.byVoxels ? "labelled z-planes of each training volume" : "annotated cases per structure type, at least one";
  const { batchSize, patchSize } = s.planOptions;
  const finetuneSteps = s.finetuneEpochs * s.finetuneStepsPerEpoch;
  const budget = `Budget: ${s.pretrainSteps} pretraining steps per pretrained row (batch ${batchSize}, patch ${patchSize.join("×")}), ` +
    `${finetuneSteps} fine-tuning steps per run (${s.finetuneEpochs} epochs × ${s.finetuneStepsPerEpoch}), every row alike.`;
  return (done: RunSummary[], partial: boolean): ExperimentResult => {
    const table = tabulate(done, s.variants.map((v) => v.label), o.labelFractions);
    const markdown = markdownTable(table);
    const seconds = (performance.now() - t0) / 1000;
    const result: ExperimentResult = { runs: done, pretraining, table, markdown, seconds };
    const status = partial ? ` Partial: ${done.length} of ${total} runs finished.` : "";
    writeFileAtomic(join(o.out, "results.json"), Buffer.from(JSON.stringify({ ...result, partial }, null, 2) + "\n"));
    const about = `Labels: the fraction of ${fractionOf}. Mean Dice over the test cases of each group, then mean ± sample standard deviation over ` +
      `the fine-tuning seeds (column seeds). Held-out types appear in no annotated case. ${budget}${status}`;
    writeFileAtomic(join(o.out, "results.md"), Buffer.from(`${markdown}\n\n${about}\n`));
    const sourcesText = s.sources.map((src) => `${src.name} = ${resolve(src.data)}`).join(", ");
    writeFileAtomic(join(o.out, "curves.html"), Buffer.from(curvesPage(table, {
      title: "lsmseg experiment ssl: label efficiency", groups: GROUPS, fractionOf,
      notes: [budget + status, `Data: ${resolve(o.data)}; pretraining: ${sourcesText}; ${done.length} runs, ${formatSeconds(seconds)} (this invocation).`],
    })));
    return result;
  };
}

/** Mean Dice, clDice and PQ per group (category, seen/held-out, all) of an evaluation's per-case results. */
function groupScores(results: Awaited<ReturnType<typeof evaluateFolder>>["results"]): Pick<RunSummary, "dice" | "cldice" | "pq"> {
  const groups = new Map<string, typeof results>();
  const add = (g: string, r: (typeof results)[number]) => groups.set(g, [...(groups.get(g) ?? []), r]);
  for (const r of results) {
    add(categoryName(r), r);
    add(r.role === "heldOut" ? "held-out types" : "seen types", r);
    add("all", r);
  }
  const out: Pick<RunSummary, "dice" | "cldice" | "pq"> = { dice: {}, cldice: {}, pq: {} };
  for (const [g, rs] of groups) {
    out.dice[g] = meanOf(rs.map((r) => r.dice));
    const cl = rs.filter((r) => r.cldice !== undefined && !Number.isNaN(r.cldice)).map((r) => r.cldice!);
    const pq = rs.filter((r) => r.panoptic_quality !== undefined && !Number.isNaN(r.panoptic_quality)).map((r) => r.panoptic_quality!);
    if (cl.length) out.cldice[g] = meanOf(cl);
    if (pq.length) out.pq[g] = meanOf(pq);
  }
  return out;
}

/** One cell's subset of the annotated cases: a dataset folder and its labelled voxels. */
interface Subset {
  cases: Case[];
  dir: string;
  labelledVoxels: number;
  fraction: number;
  seed: number;
}

/** One fine-tuning run: fine-tune on the subset, predict the test set, score it; its summary. */
async function finetuneRun(
  o: ExperimentOptions, s: Setup, sub: Subset, method: string, init: string | undefined, runDir: string,
): Promise<RunSummary> {
  const tr = performance.now();
  rmSync(runDir, { recursive: true, force: true });
  await finetune({
    data: sub.dir, out: runDir, init, fold: "all", seed: sub.seed,
    epochs: s.finetuneEpochs, stepsPerEpoch: s.finetuneStepsPerEpoch, warmupSteps: o.finetuneWarmupSteps ?? 0,
    precision: o.precision, device: o.device, workers: o.workers, plan: s.planOptions, quiet: true, log: () => {},
    // a "voxels" subset's labels are already mapped, as its dataset.json says
    labelMap: s.byVoxels ? undefined : o.labelMap,
  });
  const model = loadModel(runDir);
  try {
    if (o.device) model.net.to(o.device);
    const predictOptions = { mirror: o.mirror ?? false, precision: o.precision, step: o.predictStep, device: o.device };
    await predictPaths(model, s.testImages, join(runDir, "pred") + "/", predictOptions);
  } finally {
    model.net.dispose();
  }
  const evalOptions = { out: join(runDir, "metrics.json"), dataset: s.datasetJson ?? undefined, quiet: true, workers: 1, labelMap: o.labelMap };
  const metrics = await evaluateFolder(join(runDir, "pred"), s.testLabels, evalOptions);
  return {
    method, fraction: sub.fraction, seed: sub.seed, trainCases: sub.cases.map((c) => c.id), labelledVoxels: sub.labelledVoxels,
    pretrainSteps: init ? s.pretrainSteps : 0, finetuneSteps: s.finetuneEpochs * s.finetuneStepsPerEpoch,
    ...groupScores(metrics.results), seconds: (performance.now() - tr) / 1000,
  };
}

/** The cell's dataset folder: a stratified subset of the cases, or every case with a fraction of its z-planes labelled. */
async function subsetFor(o: ExperimentOptions, s: Setup, fraction: number, seed: number): Promise<Subset> {
  const cases = s.byVoxels ? s.annotated : labelSubset(s.annotated, fraction, seed);
  const folder = join(o.out, "data", `labels${fraction}_seed${seed}`);
  const { dir, labelledVoxels } = s.byVoxels
    ? await planeSubsetFolder(folder, cases, fraction, seed, s.datasetJson)
    : { dir: subsetFolder(folder, cases, s.datasetJson), labelledVoxels: await labelledVoxelsOf(cases) };
  return { cases, dir, labelledVoxels, fraction, seed };
}

export async function runExperiment(o: ExperimentOptions): Promise<ExperimentResult> {
  const log = o.log ?? ((line: string) => { if (!o.quiet) process.stderr.write(line + "\n"); });
  const t0 = performance.now();
  const s = await setUp(o);
  // 1. pretraining, once per method and source (seed 0): the seeds below measure the spread of fine-tuning
  const { pretraining, checkpoints } = await pretrainVariants(o, s, log);
  // 2. fine-tuning, prediction and evaluation per seed × fraction × method (seed outermost: a stopped run has
  // whole curves for its first seeds); results.json, results.md and curves.html are rewritten after every run
  const runs: RunSummary[] = [];
  const writeResults = resultsWriter(o, s, pretraining, t0);
  const total = s.variants.length * o.labelFractions.length * o.seeds;
  for (let seed = 0; seed < o.seeds; seed++) for (const fraction of o.labelFractions) {
    const sub = await subsetFor(o, s, fraction, seed);
    for (const { label: method, dir } of s.variants) {
      const runDir = join(o.out, "finetune", dir, `labels${fraction}`, `seed${seed}`);
      const summaryPath = join(runDir, "summary.json");
      const done = readJson<RunSummary>(summaryPath);
      if (done) { runs.push(done); continue; }
      const cell = `${Math.round(fraction * 100)} % labels (${sub.cases.length} cases, ${sub.labelledVoxels} labelled voxels), seed ${seed}`;
      log(`[${runs.length + 1}/${total}] ${method}, ${cell}`);
      const summary = await finetuneRun(o, s, sub, method, checkpoints.get(method), runDir);
      writeFileAtomic(summaryPath, Buffer.from(JSON.stringify(summary, null, 2) + "\n"));
      log(`  Dice: ${GROUPS.map((g) => `${g} ${(summary.dice[g] ?? NaN).toFixed(3)}`).join(", ")} (${formatSeconds(summary.seconds)})`);
      runs.push(summary);
      writeResults(runs, true);
    }
  }
  return writeResults(runs, false);
}
