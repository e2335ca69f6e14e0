// lsmseg demo: the whole loop on the embedded synthetic dataset — synth → finetune → predict → evaluate.
import { runDemo } from "../demo/demo.ts";
import { UsageError, intFlag, parseFlags } from "./args.ts";

const HELP = `usage: lsmseg demo [options]

Generates the synthetic LSM dataset (preset demo: every SELMA3D structure type, held-out types in test/),
fine-tunes a U-Net on its annotated patches, predicts the test patches with sliding windows and mirror
averaging, and evaluates them with the challenge's metrics per category. A few minutes on 2 cores.
Runs again reuse what is there: the dataset, and a finished (or killed: it resumes) training run.

  --data DIR            where the dataset goes (default data/demo)
  --out DIR             run folder (default data/demo-run)
  --preset tiny|demo    dataset size (default demo; tiny takes seconds and learns little)
  --epochs N            default 8
  --steps-per-epoch N   default 25
  --fresh               start the training run again from scratch
  --quiet               no progress output`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    data: { type: "string" }, out: { type: "string" }, preset: { type: "string" }, epochs: { type: "string" },
    "steps-per-epoch": { type: "string" }, fresh: { type: "boolean" }, quiet: { type: "boolean" },
  }, HELP);
  if (!parsed) return 0;
  const v = parsed.values;
  const preset = v.preset ?? "demo";
  if (preset !== "tiny" && preset !== "demo") throw new UsageError(`--preset: expected tiny or demo, got '${preset}'`);
  await runDemo({
    data: v.data ?? "data/demo", out: v.out ?? "data/demo-run", preset,
    epochs: intFlag("epochs", v.epochs, 8), stepsPerEpoch: intFlag("steps-per-epoch", v["steps-per-epoch"], 25),
    fresh: v.fresh ?? false, quiet: v.quiet ?? false,
  });
  return 0;
}
