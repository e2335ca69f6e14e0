// The end-to-end demo as a library function (the CLI and the end-to-end test call it):
// synth → pretrain (masked image modelling) → fine-tune from scratch and from the SSL checkpoint →
// predict the test set → evaluate per category → report. Finished stages are reused on a rerun,
// killed ones resumed.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CATEGORY_NAMES } from "../dataset/index.ts";
import { evaluateFolder, type MetricsJson } from "../eval/evaluate.ts";
import { metricsTables, table } from "../eval/table.ts";
import { finetune } from "../seg/finetune.ts";
import { CHECKPOINT_NAMES, loadModel } from "../seg/model.ts";
import type { PlanOptions } from "../seg/plan.ts";
import { predictPaths } from "../seg/predict.ts";
import { writeReport } from "../report/report.ts";
import { pretrain } from "../ssl/pretrain.ts";
import { synthDataset } from "../synth/index.ts";
import { defaultPrecision } from "../torch/index.ts";
import { Progress } from "../util/progress.ts";

export interface DemoOptions {
  data: string;
  out: string;
  preset: "tiny" | "demo";
  epochs: number;
  stepsPerEpoch: number;
  /** SSL method to pretrain with and compare against training from scratch; null: scratch only. */
  ssl?: string | null;
  pretrainSteps?: number;
  fresh?: boolean;
  quiet?: boolean;
  /** Base channels of the U-Net (default 16: a network a 2-core CPU trains in minutes). */
  features?: number;
  workers?: number;
  mirror?: boolean;
  seed?: number;
  /** Write the HTML report (default true). */
  report?: boolean;
}

export interface DemoRun {
  label: string;
  run: string;
  metrics: MetricsJson;
}

export interface DemoResult {
  runs: DemoRun[];
  /** The first run's metrics (scratch). */
  metrics: MetricsJson;
  report: string | null;
  seconds: Record<string, number>;
}

/** What the demo's stages share: the options, printing, the stage counter and the clock. */
interface DemoContext {
  o: DemoOptions;
  seed: number;
  precision: "bf16" | "fp32";
  plan: PlanOptions;
  say: (s: string) => void;
  log: (line: string) => void;
  /** Prints "k/N what": the next stage's heading. */
  head: (s: string) => void;
  /** Adds the time since the last lap to `seconds[name]`. */
  lap: (name: string) => void;
  seconds: Record<string, number>;
}

function demoContext(o: DemoOptions, stages: number): DemoContext {
  const say = (s: string) => { if (!o.quiet) console.log(s); };
  const log = (line: string) => { if (!o.quiet) process.stderr.write(line + "\n"); };
  const seconds: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string) => { const now = performance.now(); seconds[name] = (seconds[name] ?? 0) + (now - t) / 1000; t = now; };
  let stage = 0;
  const head = (s: string) => say(`${++stage}/${stages} ${s}`);
  return { o, seed: o.seed ?? 0, precision: defaultPrecision(), plan: { baseFeatures: o.features ?? 16 }, say, log, head, lap, seconds };
}

/** The synthetic dataset: reused when its preset and seed are the demo's, else generated. */
async function demoDataset(c: DemoContext): Promise<void> {
  const { o, seed, head } = c;
  const dsJson = join(o.data, "dataset.json");
  const have = existsSync(dsJson) ? (JSON.parse(readFileSync(dsJson, "utf8")) as { preset?: string; seed?: number }) : null;
  if (have && have.preset === o.preset && have.seed === seed) {
    head(`dataset: reusing ${o.data} (preset ${o.preset}, seed ${seed})`);
  } else {
    head(`dataset: generating the synthetic LSM dataset (preset ${o.preset}) in ${o.data}`);
    if (have) rmSync(o.data, { recursive: true, force: true });
    await synthDataset(o.data, { preset: o.preset, seed, quiet: o.quiet });
  }
  c.lap("synth");
}

/** Pretrains with `ssl` on the unannotated patches (or reuses a finished run); returns the final checkpoint. */
async function demoPretrain(c: DemoContext, ssl: string): Promise<string> {
  const { o, head } = c;
  const run = join(o.out, `pretrain-${ssl}`);
  const final = join(run, CHECKPOINT_NAMES.final);
  if (existsSync(final)) {
    head(`pretraining: reusing ${run}`);
  } else {
    const steps = o.pretrainSteps ?? 150;
    const data = join(o.data, "unannotated");
    head(`pretraining (${ssl}) on ${data}: ${steps} steps, ${c.precision}`);
    const resume = existsSync(join(run, CHECKPOINT_NAMES.latest));
    await pretrain({
      data, out: run, method: ssl, steps, resume, plan: c.plan, precision: c.precision, seed: c.seed, workers: o.workers, quiet: o.quiet, log: c.log,
      logEvery: 10,
    });
  }
  c.lap("pretrain");
  return final;
}

/** Fine-tunes one variant (from scratch or from a checkpoint), predicts the test images and evaluates them. */
async function demoFinetune(c: DemoContext, v: { label: string; init: string | null }): Promise<DemoRun> {
  const { o, head, precision, lap } = c;
  const run = join(o.out, v.label === "scratch" ? "finetune" : `finetune-${v.label}`);
  if (existsSync(join(run, CHECKPOINT_NAMES.final))) {
    head(`fine-tuning (${v.label}): reusing the finished run ${run}`);
  } else {
    const resume = existsSync(join(run, CHECKPOINT_NAMES.latest));
    const from = v.init ? `from the ${v.label} checkpoint` : "from scratch";
    head(`fine-tuning a U-Net ${from} on ${join(o.data, "annotated")} (${o.epochs} epochs × ${o.stepsPerEpoch} steps, ${precision}${resume ? ", resuming" : ""})`);
    await finetune({
      data: o.data, out: run, resume, init: v.init ?? undefined, fold: 0, epochs: o.epochs, stepsPerEpoch: o.stepsPerEpoch, seed: c.seed, precision,
      // no warm-up after --init (finetune's default is 10 % of the run): in 200 steps it cost the MAE run
      // 0.13 Dice (0.523 with it, 0.650 without; scratch 0.622)
      warmupSteps: 0,
      quiet: o.quiet, workers: o.workers, plan: c.plan, log: c.log,
    });
  }
  lap(`finetune ${v.label}`);
  const pred = join(run, "pred");
  const model = loadModel(run);
  const bar = new Progress(`predict ${v.label}`, 0, { unit: "cases", silent: o.quiet });
  const onFile = (i: number, n: number) => { bar.total = n; bar.set(i); };
  await predictPaths(model, join(o.data, "test", "images"), pred + "/", { mirror: o.mirror ?? true, precision, onFile });
  bar.set(bar.total);
  bar.finish();
  model.net.dispose();
  lap(`predict ${v.label}`);
  const metrics = await evaluateFolder(pred, join(o.data, "test", "labels"), { out: join(run, "metrics.json"), quiet: true });
  lap(`evaluate ${v.label}`);
  return { label: v.label, run, metrics };
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const ssl = o.ssl === undefined ? "mae" : o.ssl;
  const c = demoContext(o, ssl ? 6 : 4);
  const { say, seconds } = c;
  if (o.fresh) rmSync(o.out, { recursive: true, force: true });
  await demoDataset(c);
  const sslCheckpoint = ssl ? await demoPretrain(c, ssl) : null;

  const variants: { label: string; init: string | null }[] = [{ label: "scratch", init: null }];
  if (sslCheckpoint) variants.push({ label: ssl!, init: sslCheckpoint });
  const runs: DemoRun[] = [];
  for (const v of variants) runs.push(await demoFinetune(c, v));

  let report: string | null = null;
  if (o.report !== false) {
    c.head("report");
    report = await writeDemoReport(runs, join(o.out, "report.html"));
    c.lap("report");
  }

  say("\n" + metricsTables(runs[0].metrics));
  if (runs.length > 1) say("\n" + comparisonTable(runs));
  say(`\ntimes: ${Object.entries(seconds).map(([k, s]) => `${k} ${s.toFixed(0)} s`).join(", ")}`);
  say(`runs in ${o.out}${report ? `; report: ${report}` : ""}`);
  return { runs, metrics: runs[0].metrics, report, seconds };
}

/** Dice (and clDice/PQ) per category, one column per run: scratch vs SSL. */
function comparisonTable(runs: DemoRun[]): string {
  const f = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "–" : x.toFixed(3));
  const head = ["Dice per category", ...runs.map((r) => r.label)];
  const rows = [...CATEGORY_NAMES].map((c) => [c, ...runs.map((r) => f(r.metrics.categories[c]?.dice.mean))]);
  rows.push(["overall", ...runs.map((r) => f(r.metrics.overall.dice.mean))]);
  if (runs[0].metrics.roles) {
    rows.push(["seen types", ...runs.map((r) => f(meanOf(r.metrics, false)))]);
    rows.push(["held-out types", ...runs.map((r) => f(meanOf(r.metrics, true)))]);
  }
  return table([head, ...rows]);
}

function meanOf(m: MetricsJson, heldOut: boolean): number {
  const names = new Set(heldOut ? m.roles?.heldOut.structures : m.roles?.seen.structures);
  const xs = m.results.filter((r) => names.has(r.structure)).map((r) => r.dice);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** The HTML report of the demo's runs (scratch vs SSL side by side). */
async function writeDemoReport(runs: DemoRun[], out: string): Promise<string> {
  return writeReport({ run: runs[0].run, out, compare: runs[1]?.run, labels: runs.map((r) => r.label) });
}
