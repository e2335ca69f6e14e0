// The end-to-end demo as a library function (the CLI and the end-to-end test call it).
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { evaluateFolder, type MetricsJson } from "../eval/evaluate.ts";
import { metricsTables } from "../eval/table.ts";
import { finetune } from "../seg/finetune.ts";
import { CHECKPOINT_NAMES, loadModel } from "../seg/model.ts";
import { predictPaths } from "../seg/predict.ts";
import { synthDataset } from "../synth/index.ts";
import { defaultPrecision } from "../torch/index.ts";
import { Progress } from "../util/progress.ts";

export interface DemoOptions {
  data: string;
  out: string;
  preset: "tiny" | "demo";
  epochs: number;
  stepsPerEpoch: number;
  fresh?: boolean;
  quiet?: boolean;
  /** Base channels of the U-Net (default 16: a network a 2-core CPU trains in minutes). */
  features?: number;
  workers?: number;
  mirror?: boolean;
  seed?: number;
}

export interface DemoResult {
  metrics: MetricsJson;
  seconds: { synth: number; finetune: number; predict: number; evaluate: number };
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const say = (s: string) => { if (!o.quiet) console.log(s); };
  const seed = o.seed ?? 0;
  const seconds = { synth: 0, finetune: 0, predict: 0, evaluate: 0 };
  let t = performance.now();
  const lap = () => { const now = performance.now(); const s = (now - t) / 1000; t = now; return s; };

  const dsJson = join(o.data, "dataset.json");
  const have = existsSync(dsJson) ? (JSON.parse(readFileSync(dsJson, "utf8")) as { preset?: string; seed?: number }) : null;
  if (have && have.preset === o.preset && have.seed === seed) {
    say(`1/4 dataset: reusing ${o.data} (preset ${o.preset}, seed ${seed})`);
  } else {
    say(`1/4 dataset: generating the synthetic LSM dataset (preset ${o.preset}) in ${o.data}`);
    if (have) rmSync(o.data, { recursive: true, force: true });
    await synthDataset(o.data, { preset: o.preset, seed, quiet: o.quiet });
  }
  seconds.synth = lap();

  const run = join(o.out, "finetune");
  if (o.fresh) rmSync(run, { recursive: true, force: true });
  const precision = defaultPrecision();
  if (existsSync(join(run, CHECKPOINT_NAMES.final))) {
    say(`2/4 fine-tuning: reusing the finished run ${run} (--fresh to train again)`);
  } else {
    const resume = existsSync(join(run, CHECKPOINT_NAMES.latest));
    say(`2/4 fine-tuning a U-Net on ${join(o.data, "annotated")} (${o.epochs} epochs × ${o.stepsPerEpoch} steps, ${precision}${resume ? ", resuming" : ""})`);
    await finetune({
      data: o.data, out: run, resume, fold: 0, epochs: o.epochs, stepsPerEpoch: o.stepsPerEpoch, seed, precision, quiet: o.quiet, workers: o.workers,
      plan: { baseFeatures: o.features ?? 16 },
      log: (line) => { if (!o.quiet) process.stderr.write(line + "\n"); },
    });
  }
  seconds.finetune = lap();

  const pred = join(o.out, "pred");
  say(`3/4 predicting ${join(o.data, "test", "images")} → ${pred} (sliding window${o.mirror === false ? "" : ", mirror averaging"})`);
  const model = loadModel(run);
  const bar = new Progress("predict", 0, { unit: "cases", silent: o.quiet });
  await predictPaths(model, join(o.data, "test", "images"), pred + "/", {
    mirror: o.mirror ?? true, precision,
    onFile: (i, n) => { bar.total = n; bar.set(i); },
  });
  bar.set(bar.total);
  bar.finish();
  model.net.dispose();
  seconds.predict = lap();

  say("4/4 evaluating with the SELMA3D metrics");
  const metrics = await evaluateFolder(pred, join(o.data, "test", "labels"), { out: join(o.out, "metrics.json"), quiet: true });
  seconds.evaluate = lap();
  say("\n" + metricsTables(metrics));
  say(`\ntimes: synth ${seconds.synth.toFixed(0)} s, fine-tune ${seconds.finetune.toFixed(0)} s, predict ${seconds.predict.toFixed(0)} s, evaluate ${seconds.evaluate.toFixed(0)} s`);
  say(`run folder: ${o.out} (finetune/ with checkpoints and log.jsonl, pred/ with the masks, metrics.json)`);
  return { metrics, seconds };
}
