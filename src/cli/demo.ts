// lsmseg demo: the whole loop on the embedded synthetic dataset — synth → finetune → predict → evaluate.
import { runDemo } from "../demo/demo.ts";
import { UsageError, intFlag, parseFlags } from "./args.ts";

const HELP = `usage: lsmseg demo [options]

Generates the synthetic LSM dataset (preset demo: every SELMA3D structure type, held-out types in test/),
pretrains a U-Net by masked image modelling on the unannotated patches, fine-tunes it from scratch and from
the SSL checkpoint on the annotated patches, predicts the test patches (sliding windows, mirror averaging),
evaluates both with the challenge's metrics per category and writes an HTML report. Runs again reuse
finished stages and resume killed ones.

  --data DIR            where the dataset goes (default data/demo)
  --out DIR             run folder (default data/demo-run)
  --preset tiny|demo    dataset size (default demo; tiny takes seconds and learns little)
  --epochs N            default 8
  --steps-per-epoch N   default 25
  --ssl METHOD|none     pretraining method to compare with training from scratch (default mae)
  --pretrain-steps N    default 150
  --no-report           skip the HTML report
  --fresh               start every training run again
  --quiet               no progress output`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    data: { type: "string" }, out: { type: "string" }, preset: { type: "string" }, epochs: { type: "string" },
    "steps-per-epoch": { type: "string" }, fresh: { type: "boolean" }, quiet: { type: "boolean" },
    ssl: { type: "string" }, "pretrain-steps": { type: "string" }, "no-report": { type: "boolean" },
  }, HELP);
  if (!parsed) return 0;
  const v = parsed.values;
  const preset = v.preset ?? "demo";
  if (preset !== "tiny" && preset !== "demo") throw new UsageError(`--preset: expected tiny or demo, got '${preset}'`);
  await runDemo({
    data: v.data ?? "data/demo", out: v.out ?? "data/demo-run", preset,
    epochs: intFlag("epochs", v.epochs, 8, { min: 1 }), stepsPerEpoch: intFlag("steps-per-epoch", v["steps-per-epoch"], 25, { min: 1 }),
    fresh: v.fresh ?? false, quiet: v.quiet ?? false, ssl: v.ssl === "none" ? null : (v.ssl ?? "mae"),
    pretrainSteps: intFlag("pretrain-steps", v["pretrain-steps"], 150, { min: 1 }), report: !v["no-report"],
  });
  return 0;
}
