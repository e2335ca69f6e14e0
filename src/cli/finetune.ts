// lsmseg finetune: supervised fine-tuning on the annotated patches (from scratch or from an SSL checkpoint).
import { type LabelMap, ignoreLabelMap, parseLabelMap } from "../data/labels.ts";
import { FINETUNE_DEFAULTS as D, finetune } from "../seg/finetune.ts";
import { distOptionsFromEnv } from "../torch/index.ts";
import { removeStaleTempsIn } from "../util/output.ts";
import { DEVICE_HELP, LAUNCH_FLAGS, LAUNCH_HELP, PLAN_FLAGS, UsageError, deviceFlag, intFlag, launchIfAsked, numFlag, optInt, optNum, parseFlags, transformerFlags, withFlags } from "./args.ts";
import { ARCHS, isArch } from "../nn/networks.ts";

/** The label flags of finetune, evaluate and experiment (what a label file's values mean; see docs/experiments.md). */
export const LABEL_FLAGS = { "label-map": { type: "string" }, "ignore-label": { type: "string" } } as const;
export const LABEL_HELP = `  --label-map MAP       what label values mean, VALUE=CLASS items (background, ignore, anything else is
                        foreground), e.g. TRAILMAP's 0=ignore,1=background,2=axon,4=axon; values not listed:
                        > 0 foreground (default: dataset.json's "labels", whose "ignore" entry marks sparse labels)
  --ignore-label V      label value V means 'not labelled' (left out of loss, sampling centres and scores)`;

/** The label map the flags ask for, or undefined (then dataset.json's, or none). */
export function labelMapFlag(v: { "label-map"?: string; "ignore-label"?: string }): LabelMap | undefined {
  try {
    const map = v["label-map"] === undefined ? undefined : parseLabelMap(v["label-map"]);
    if (v["ignore-label"] === undefined) return map;
    const ignored = ignoreLabelMap(Number(v["ignore-label"]));
    const [value] = Object.keys(ignored);
    if (map && value in map && map[value] !== "ignore") throw new Error(`--ignore-label ${value}: --label-map maps ${value} to ${map[value]}`);
    return { ...map, ...ignored };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A default as the help prints it: 0.01, 3e-5, 1e-3 (small numbers in exponent form). */
export function shown(x: number): string {
  return x !== 0 && Math.abs(x) < 0.01 ? x.toExponential() : String(x);
}

const HELP = `usage: lsmseg finetune --data DIR --out RUN [options]

  --data DIR            annotated layout (images/ + labels/), or a dataset root holding annotated/
  --out RUN             run folder: plan.json, log.jsonl, checkpoint_{latest,best,final}.safetensors
  --init CKPT           start from a pretraining checkpoint (encoder, and decoder where shapes match)
  --init-parts P        ${D.initParts} (default) or all: also the decoder where shapes match
  --freeze-encoder N    train only the decoder and heads for the first N steps (after --init)
  --resume              continue RUN from checkpoint_latest (after a kill); --epochs may be raised
  --fold K|all          cross-validation fold (default ${D.fold} of ${D.folds}); 'all' trains on every case
  --epochs N            default ${D.epochs}
  --steps-per-epoch N   default ${D.stepsPerEpoch}
  --optimizer sgd|adamw default ${D.optimizer} (lr ${shown(D.sgd.lr)}, Nesterov ${D.sgd.momentum}, wd ${shown(D.sgd.weightDecay)}, poly decay)
  --lr X                base learning rate (default ${shown(D.sgd.lr)} with sgd, ${shown(D.adamw.lr)} with adamw)
  --warmup-steps N      linear learning-rate warm-up (default 0 from scratch, ${D.initWarmupFraction * 100} % of the run after --init)
  --arch unet|resenc|unetr|swinunetr  network (default unet; from the checkpoint with --init)
  --features N          channels of the first stage (default 32)
  --hidden N            UNETR: transformer width (default 768, MLP 4×); --features is feature_size
  --heads N             UNETR: attention heads (default 12)
  --patch ZxYxX         patch size (default: planned from the data)
  --batch N             batch size (default 2)
  --cldice W            add a soft-clDice term with weight W
${LABEL_HELP}
  --precision bf16|fp32 default bf16 where the CPU has it
${DEVICE_HELP}
  --workers N           data-loading worker threads (default cores − 1, at least 1, at most ${D.maxWorkers})
  --no-augment          train without augmentation
  --seed N              default ${D.seed}
  --quiet               no progress output
${LAUNCH_HELP}
                        (data-parallel: each rank a shard of the batches; resume with another N works)`;

export function parsePatch(v: string | undefined): [number, number, number] | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(/[x×,]/).map(Number);
  if (parts.length === 1) parts.push(parts[0], parts[0]);
  if (parts.length !== 3 || parts.some((n) => !Number.isInteger(n) || n < 4)) throw new UsageError(`--patch: expected ZxYxX (e.g. 64x64x64), got '${v}'`);
  return parts as [number, number, number];
}

function parseParts(v: string | undefined): "encoder" | "all" | undefined {
  if (v === undefined || v === "encoder" || v === "all") return v;
  throw new UsageError(`--init-parts: expected encoder or all, got '${v}'`);
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    data: { type: "string" }, out: { type: "string" }, init: { type: "string" }, "init-parts": { type: "string" }, resume: { type: "boolean" },
    fold: { type: "string" }, epochs: { type: "string" }, "steps-per-epoch": { type: "string" }, optimizer: { type: "string" },
    lr: { type: "string" }, arch: { type: "string" }, hidden: { type: "string" }, heads: { type: "string" }, features: { type: "string" }, patch: { type: "string" }, batch: { type: "string" },
    cldice: { type: "string" }, precision: { type: "string" }, workers: { type: "string" }, "no-augment": { type: "boolean" },
    seed: { type: "string" }, quiet: { type: "boolean" }, device: { type: "string" }, "freeze-encoder": { type: "string" }, "warmup-steps": { type: "string" },
    ...LAUNCH_FLAGS, ...LABEL_FLAGS,
  }, HELP);
  if (!parsed) return 0;
  const v = parsed.values;
  if (!v.data || !v.out) throw new UsageError(`--data and --out are required\n\n${HELP}`);
  // every number is checked before a rank starts or data is read
  const fold = v.fold === undefined ? D.fold : v.fold === "all" ? "all" : intFlag("fold", v.fold, D.fold, { min: 0, max: D.folds - 1 });
  const numbers = {
    epochs: intFlag("epochs", v.epochs, D.epochs, { min: 1 }), stepsPerEpoch: intFlag("steps-per-epoch", v["steps-per-epoch"], D.stepsPerEpoch, { min: 1 }),
    lr: optNum("lr", v.lr, { above: 0 }), seed: intFlag("seed", v.seed, D.seed, { min: 0 }), workers: optInt("workers", v.workers, { min: 0 }),
    warmupSteps: optInt("warmup-steps", v["warmup-steps"], { min: 0 }), freezeEncoderSteps: optInt("freeze-encoder", v["freeze-encoder"], { min: 0 }),
    clDiceWeight: numFlag("cldice", v.cldice, 0, { min: 0 }),
  };
  const planned = { baseFeatures: optInt("features", v.features, { min: 1 }), patchSize: parsePatch(v.patch), batchSize: optInt("batch", v.batch, { min: 1 }) };
  if (!process.env.RANK || process.env.RANK === "0") removeStaleTempsIn(v.out);
  const launched = await launchIfAsked("finetune", argv, v);
  if (launched !== null) return launched;
  const optimizer = v.optimizer ?? D.optimizer;
  if (optimizer !== "sgd" && optimizer !== "adamw") throw new UsageError(`--optimizer: expected sgd or adamw, got '${optimizer}'`);
  const arch = v.arch ?? "unet";
  if (!isArch(arch)) throw new UsageError(`--arch: expected ${ARCHS.join(", ")}, got '${arch}'`);
  if (v.precision && v.precision !== "bf16" && v.precision !== "fp32") throw new UsageError(`--precision: expected bf16 or fp32, got '${v.precision}'`);
  const opts: Parameters<typeof finetune>[0] = {
    data: v.data, out: v.out, device: await deviceFlag(v.device), init: v.init, initParts: parseParts(v["init-parts"]), resume: v.resume, fold,
    ...numbers, optimizer, precision: v.precision as "bf16" | "fp32" | undefined,
    augment: !v["no-augment"], quiet: v.quiet, labelMap: labelMapFlag(v), plan: { arch, ...planned, transformer: transformerFlags(v) },
    // the launcher's environment names this rank's process group (none: one process)
    dist: distOptionsFromEnv(),
  };
  const res = await withFlags(PLAN_FLAGS, () => finetune(opts));
  if (Number(process.env.RANK ?? 0) !== 0) return 0;
  const last = res.epochs[res.epochs.length - 1];
  console.log(`finished ${res.out}: ${res.epochs.length} epochs, best EMA pseudo-Dice ${res.bestEma.toFixed(3)}${last ? `, last ${Object.entries(last.pseudoDice).map(([k, d]) => `${k} ${d.toFixed(3)}`).join(", ")}` : ""}`);
  return 0;
}
