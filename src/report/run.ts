// What a report reads from a run folder, without loading libtorch: metrics.json (lsmseg evaluate), and the
// fine-tuning run's plan.json, config.json and log.jsonl. A run folder is the demo's layout
// (<run>/metrics.json, <run>/finetune/, <run>/pred/) or a fine-tuning folder with metrics.json beside its log.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { caseNameOf } from "../dataset/index.ts";
import type { CaseResult, MetricsJson } from "../eval/evaluate.ts";
import type { EpochRecord } from "../seg/finetune.ts";
import { readJsonl } from "../util/jsonl.ts";

export interface RunFiles {
  dir: string;
  label: string;
  metricsPath: string;
  metrics: MetricsJson;
  /** The fine-tuning folder (plan.json, config.json, log.jsonl), when there is one. */
  train: string | null;
  plan: Record<string, unknown> | null;
  config: Record<string, unknown> | null;
  log: EpochRecord[];
}

/** The volumes of one test case: the image (when found beside the labels), ground truth and prediction. */
export interface CaseFiles {
  image: string | null;
  truth: string;
  prediction: string;
}

function readJson(path: string): unknown {
  try {
    // metrics.json writes NaN as null; the report shows it as NaN again.
    return JSON.parse(readFileSync(path, "utf8"), (_k, v: unknown) => (v === null ? NaN : v));
  } catch (err) {
    throw new Error(`${path}: not readable JSON (${(err as Error).message})`);
  }
}

function firstExisting(paths: string[]): string | null {
  return paths.find((p) => existsSync(p)) ?? null;
}

/** Reads a run folder; `label` names it in the report ("scratch", "ssl", …). */
export function readRun(dir: string, label: string): RunFiles {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: no such run folder`);
  const metricsPath = firstExisting([join(dir, "metrics.json"), join(dir, "pred", "metrics.json")]);
  if (!metricsPath) {
    throw new Error(`${dir}: no metrics.json (looked in ${dir}/ and ${dir}/pred/); score the predictions first: lsmseg evaluate --pred PRED --gt LABELS --out ${join(dir, "metrics.json")}`);
  }
  const metrics = readJson(metricsPath) as MetricsJson;
  if (metrics.tool !== "lsmseg evaluate" || !Array.isArray(metrics.results)) {
    throw new Error(`${metricsPath}: not a metrics.json of lsmseg evaluate (no "tool": "lsmseg evaluate" or no results)`);
  }
  const trainDir = [join(dir, "finetune"), dir].find((d) => existsSync(join(d, "log.jsonl")) || existsSync(join(d, "plan.json"))) ?? null;
  const optional = (name: string) => {
    return trainDir && existsSync(join(trainDir, name)) ? (readJson(join(trainDir, name)) as Record<string, unknown>) : null;
  };
  const log = trainDir ? readJsonl<EpochRecord>(join(trainDir, "log.jsonl")) : [];
  return { dir: resolve(dir), label, metricsPath, metrics, train: trainDir, plan: optional("plan.json"), config: optional("config.json"), log };
}

/**
 * Finds a case's volumes. metrics.json names them as evaluated; when the run folder has moved since, the
 * prediction is looked for in <run>/pred/ and the ground truth in the folder metrics.json names. The image
 * is the file of the same name in the labels' sibling folder images/ (the dataset layout).
 */
export function caseFiles(run: RunFiles, r: CaseResult, imagesDir?: string): CaseFiles {
  const prediction = firstExisting([r.prediction, join(run.metrics.pred, basename(r.prediction)), join(run.dir, "pred", basename(r.prediction))]);
  if (!prediction) throw new Error(`${run.metricsPath}: the prediction of ${r.case} is gone (${r.prediction})`);
  const truth = firstExisting([r.groundTruth, join(run.metrics.gt, basename(r.groundTruth))]);
  if (!truth) throw new Error(`${run.metricsPath}: the ground truth of ${r.case} is gone (${r.groundTruth})`);
  const images = imagesDir ?? join(dirname(dirname(truth)), "images");
  let image = firstExisting([join(images, basename(truth))]);
  if (!image && existsSync(images)) {
    const match = readdirSync(images).find((f) => caseNameOf(f) === r.case);
    image = match ? join(images, match) : null;
  }
  return { image, truth, prediction };
}
