// The experiment the challenge asks about: does self-supervised pretraining help fine-tuning with few labels,
// and on structure types no label shows? For each method (and "none": from scratch) pretrain once on the
// unannotated set, then for each label fraction and seed fine-tune on a stratified subset of the annotated
// cases, predict the test set and score it with the challenge's metrics; the table gives per method × fraction
// the mean ± sample standard deviation over seeds of the Dice per category, for seen and held-out types.
// Every finished piece is kept on disk (pretraining runs, fine-tuning runs, predictions, summaries), so a
// stopped experiment started again with the same --out continues where it was.
// With several pretraining sources (Task 2's question: does more or better-curated data help?), every method is
// pretrained on each source, and each (method, source) pair is a row of its own: "mae (curated)".
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, copyFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { type Case, annotatedCases } from "../data/dataset.ts";
import { stream } from "../data/rng.ts";
import { evaluateFolder } from "../eval/evaluate.ts";
import { categoryName, CATEGORY_NAMES } from "../eval/categories.ts";
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
  workers?: number;
  /** Mirror test-time augmentation in prediction (default off: 8× the time). */
  mirror?: boolean;
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

function readJson<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return null;
  }
}

export async function runExperiment(o: ExperimentOptions): Promise<ExperimentResult> {
  const log = o.log ?? ((line: string) => { if (!o.quiet) process.stderr.write(line + "\n"); });
  const t0 = performance.now();
  mkdirSync(o.out, { recursive: true });
  const testImages = join(o.data, "test", "images"), testLabels = join(o.data, "test", "labels");
  if (!existsSync(testImages) || !existsSync(testLabels)) throw new Error(`${o.data}: no test/images and test/labels (the experiment scores the test set)`);
  const datasetJson = existsSync(join(o.data, "dataset.json")) ? join(o.data, "dataset.json") : null;
  const annotated = await annotatedCases(o.data, { checkShapes: false });
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
  const planOptions = { arch: o.arch, baseFeatures: o.baseFeatures ?? 8, transformer: o.transformer, patchSize: o.patchSize ?? [32, 32, 32] as [number, number, number], batchSize: o.batchSize ?? 2 };
  writeFileAtomic(join(o.out, "experiment.json"), Buffer.from(JSON.stringify({ ...o, log: undefined }, null, 2) + "\n"));

  // 1. pretraining, once per method and source (seed 0): the seeds below measure the spread of fine-tuning
  const pretraining: ExperimentResult["pretraining"] = {};
  const checkpoints = new Map<string, string | undefined>();
  for (const { label, dir, method, source } of variants) {
    if (!source) { checkpoints.set(label, undefined); continue; }
    const out = join(o.out, "pretrain", dir);
    const final = join(out, CHECKPOINT_NAMES.final);
    const tp = performance.now();
    if (!existsSync(final)) {
      log(`pretraining ${label} (${o.pretrainSteps ?? 200} steps on ${source.data})`);
      const res = await pretrain({
        data: source.data, out, method, steps: o.pretrainSteps ?? 200, resume: existsSync(join(out, CHECKPOINT_NAMES.latest)),
        plan: planOptions, precision: o.precision, workers: o.workers, quiet: o.quiet, log: () => {},
      });
      pretraining[label] = { firstLoss: res.firstLoss, lastLoss: res.lastLoss, seconds: (performance.now() - tp) / 1000 };
      writeFileAtomic(join(out, "summary.json"), Buffer.from(JSON.stringify(pretraining[label]) + "\n"));
    } else {
      pretraining[label] = readJson(join(out, "summary.json")) ?? { firstLoss: NaN, lastLoss: NaN, seconds: NaN };
    }
    log(`  ${label}: loss ${pretraining[label].firstLoss.toFixed(4)} → ${pretraining[label].lastLoss.toFixed(4)} (${formatSeconds(pretraining[label].seconds)})`);
    checkpoints.set(label, final);
  }

  // 2. fine-tuning, prediction and evaluation per method × fraction × seed
  const runs: RunSummary[] = [];
  const total = variants.length * o.labelFractions.length * o.seeds;
  for (const fraction of o.labelFractions) for (let seed = 0; seed < o.seeds; seed++) {
    const subset = labelSubset(annotated, fraction, seed);
    const subsetDir = subsetFolder(join(o.out, "data", `labels${fraction}_seed${seed}`), subset, datasetJson);
    for (const { label: method, dir } of variants) {
      const runDir = join(o.out, "finetune", dir, `labels${fraction}`, `seed${seed}`);
      const summaryPath = join(runDir, "summary.json");
      const done = readJson<RunSummary>(summaryPath);
      if (done) { runs.push(done); continue; }
      const tr = performance.now();
      log(`[${runs.length + 1}/${total}] ${method}, ${Math.round(fraction * 100)} % labels (${subset.length} cases), seed ${seed}`);
      rmSync(runDir, { recursive: true, force: true });
      await finetune({
        data: subsetDir, out: runDir, init: checkpoints.get(method), fold: "all", seed,
        epochs: o.finetuneEpochs ?? 2, stepsPerEpoch: o.finetuneStepsPerEpoch ?? 30, warmupSteps: o.finetuneWarmupSteps ?? 0,
        precision: o.precision, workers: o.workers, plan: planOptions, quiet: true, log: () => {},
      });
      const model = loadModel(runDir);
      try {
        await predictPaths(model, testImages, join(runDir, "pred") + "/", { mirror: o.mirror ?? false, precision: o.precision });
      } finally {
        model.net.dispose();
      }
      const metrics = await evaluateFolder(join(runDir, "pred"), testLabels, { out: join(runDir, "metrics.json"), dataset: datasetJson ?? undefined, quiet: true, workers: 1 });
      const groups = new Map<string, typeof metrics.results>();
      const add = (g: string, r: (typeof metrics.results)[number]) => groups.set(g, [...(groups.get(g) ?? []), r]);
      for (const r of metrics.results) {
        add(categoryName(r), r);
        add(r.role === "heldOut" ? "held-out types" : "seen types", r);
        add("all", r);
      }
      const summary: RunSummary = { method, fraction, seed, trainCases: subset.map((c) => c.id), dice: {}, cldice: {}, pq: {}, seconds: (performance.now() - tr) / 1000 };
      for (const [g, rs] of groups) {
        summary.dice[g] = meanOf(rs.map((r) => r.dice));
        const cl = rs.filter((r) => r.cldice !== undefined && !Number.isNaN(r.cldice)).map((r) => r.cldice!);
        const pq = rs.filter((r) => r.panoptic_quality !== undefined && !Number.isNaN(r.panoptic_quality)).map((r) => r.panoptic_quality!);
        if (cl.length) summary.cldice[g] = meanOf(cl);
        if (pq.length) summary.pq[g] = meanOf(pq);
      }
      writeFileAtomic(summaryPath, Buffer.from(JSON.stringify(summary, null, 2) + "\n"));
      log(`  Dice: ${GROUPS.map((g) => `${g} ${(summary.dice[g] ?? NaN).toFixed(3)}`).join(", ")} (${formatSeconds(summary.seconds)})`);
      runs.push(summary);
    }
  }

  const table = tabulate(runs, variants.map((v) => v.label), o.labelFractions);
  const markdown = markdownTable(table);
  const seconds = (performance.now() - t0) / 1000;
  const result: ExperimentResult = { runs, pretraining, table, markdown, seconds };
  writeFileAtomic(join(o.out, "results.json"), Buffer.from(JSON.stringify(result, null, 2) + "\n"));
  writeFileAtomic(join(o.out, "results.md"), Buffer.from(`${markdown}\n\nMean Dice over the test cases of each group, then mean ± sample standard deviation over ${o.seeds} fine-tuning seeds. Held-out types appear in no annotated case.\n`));
  return result;
}
