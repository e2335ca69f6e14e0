// lsmseg experiment ssl: pretrain each method, fine-tune on label fractions × seeds, predict and score the test set.
import { runExperiment } from "../ssl/experiment.ts";
import { UsageError, deviceFlag, intFlag, numFlag, optInt, parseFlags, transformerFlags } from "./args.ts";
import { ARCHS, isArch } from "../nn/networks.ts";
import { LABEL_FLAGS, LABEL_HELP, labelMapFlag, parsePatch } from "./finetune.ts";

const HELP = `usage: lsmseg experiment ssl --data DIR --out DIR [options]

  --data DIR              dataset root with unannotated/, annotated/ and test/ (as 'lsmseg synth' writes it)
  --out DIR               experiment folder: pretrain/, finetune/, results.md, results.json (every run),
                          curves.html (Dice against label fraction per group, mean ± sd); rerun to continue
  --methods LIST          default mae,simclr,genesis,none ('none': fine-tune from scratch)
  --pretrain-data LIST    NAME=DIR,…: pretrain every method on each unannotated set (e.g. patches=DATA,
                          curated=CURATED: Task 2's question); rows 'mae (curated)' …; default the data's own
  --label-fractions LIST  default 0.25,1 (stratified by structure type, per seed; at least one case per type)
  --fraction-of cases|voxels  what a fraction counts: annotated cases (default), or the labelled z-planes of
                          every training volume, the others ignored (real volumes with one case per type)
  --seeds N               fine-tuning seeds per cell (default 3)
  --pretrain-steps N      the pretraining budget of each method and source (default 200)
  --epochs N              fine-tuning epochs (default 2); the fine-tuning budget is epochs × steps-per-epoch
  --steps-per-epoch N     default 30
  --warmup-steps N        learning-rate warm-up of every fine-tuning run, scratch and pretrained alike (default 0)
  --arch unet|resenc|unetr|swinunetr  default unet
  --features N            channels of the first stage (default 8)
  --hidden N              UNETR: transformer width (default 768, MLP 4×); --features is feature_size
  --heads N               UNETR: attention heads (default 12)
  --patch ZxYxX           default 32x32x32
  --batch N               default 2 (every method, SimCLR too)
  --precision bf16|fp32   default bf16 where the CPU has it
  --device D              cpu (default), cuda or cuda:N (a CUDA libtorch): pretraining, fine-tuning and prediction
  --workers N             data-loading worker threads
  --mirror                mirror test-time augmentation in prediction (8× slower)
  --predict-step F        sliding-window step of prediction, a fraction of the patch (default 0.5; 1: no overlap)
${LABEL_HELP.replace(/^ {2}(--[\w-]+ [A-Z]+) {6}/gm, "  $1        ").replace(/^ {24}/gm, "                          ")}
  --quiet                 no progress output`;

export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name !== "ssl") {
    if (name === "--help" || name === "-h") { console.log(HELP); return 0; }
    throw new UsageError(`unknown experiment '${name ?? ""}' (available: ssl)\n\n${HELP}`);
  }
  const parsed = parseFlags(rest, {
    data: { type: "string" }, out: { type: "string" }, methods: { type: "string" }, "pretrain-data": { type: "string" }, "label-fractions": { type: "string" }, seeds: { type: "string" },
    "pretrain-steps": { type: "string" }, epochs: { type: "string" }, "steps-per-epoch": { type: "string" }, "warmup-steps": { type: "string" }, arch: { type: "string" }, hidden: { type: "string" }, heads: { type: "string" },
    features: { type: "string" }, patch: { type: "string" }, batch: { type: "string" }, precision: { type: "string" }, workers: { type: "string" }, device: { type: "string" },
    mirror: { type: "boolean" }, quiet: { type: "boolean" }, "fraction-of": { type: "string" }, "predict-step": { type: "string" }, ...LABEL_FLAGS,
  }, HELP);
  if (!parsed) return 0;
  const v = parsed.values;
  if (!v.data || !v.out) throw new UsageError(`--data and --out are required\n\n${HELP}`);
  const fractions = (v["label-fractions"] ?? "0.25,1").split(",").map(Number);
  if (fractions.some((f) => !(f > 0 && f <= 1))) throw new UsageError(`--label-fractions: expected numbers in (0, 1], got '${v["label-fractions"]}'`);
  const pretrainData = v["pretrain-data"]?.split(",").map((item) => {
    const m = /^([\w.-]+)=(.+)$/.exec(item);
    if (!m) throw new UsageError(`--pretrain-data: expected NAME=DIR items separated by commas, got '${item}'`);
    return { name: m[1], data: m[2] };
  });
  const fractionOf = v["fraction-of"] ?? "cases";
  if (fractionOf !== "cases" && fractionOf !== "voxels") throw new UsageError(`--fraction-of: expected cases or voxels, got '${fractionOf}'`);
  const arch = v.arch ?? "unet";
  if (!isArch(arch)) throw new UsageError(`--arch: expected ${ARCHS.join(", ")}, got '${arch}'`);
  if (v.precision && v.precision !== "bf16" && v.precision !== "fp32") throw new UsageError(`--precision: expected bf16 or fp32, got '${v.precision}'`);
  const POSITIVE = { min: 1 };
  const res = await runExperiment({
    data: v.data, out: v.out, methods: (v.methods ?? "mae,simclr,genesis,none").split(","), pretrainData, labelFractions: fractions, fractionOf, labelMap: labelMapFlag(v),
    seeds: intFlag("seeds", v.seeds, 3, POSITIVE), pretrainSteps: intFlag("pretrain-steps", v["pretrain-steps"], 200, POSITIVE),
    finetuneEpochs: intFlag("epochs", v.epochs, 2, POSITIVE), finetuneStepsPerEpoch: intFlag("steps-per-epoch", v["steps-per-epoch"], 30, POSITIVE),
    finetuneWarmupSteps: intFlag("warmup-steps", v["warmup-steps"], 0, { min: 0 }),
    arch, baseFeatures: intFlag("features", v.features, 8, POSITIVE), patchSize: parsePatch(v.patch), transformer: transformerFlags(v), batchSize: intFlag("batch", v.batch, 2, POSITIVE),
    precision: v.precision as "bf16" | "fp32" | undefined, workers: optInt("workers", v.workers, { min: 0 }),
    // only when asked: experiment.json records the options given
    device: v.device === undefined ? undefined : await deviceFlag(v.device),
    mirror: v.mirror, quiet: v.quiet, predictStep: v["predict-step"] === undefined ? undefined : numFlag("predict-step", v["predict-step"], 0.5, { above: 0, max: 1 }),
  });
  console.log(res.markdown);
  console.log(`\n${v.out}/results.md, results.json, curves.html (${(res.seconds / 60).toFixed(1)} min)`);
  return 0;
}
