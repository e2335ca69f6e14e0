// lsmseg pretrain: self-supervised pretraining on unannotated patches (one method per run).
import { sslMethods } from "../ssl/method.ts";
import { PRETRAIN_DEFAULTS as D, pretrain } from "../ssl/pretrain.ts";
import { distOptionsFromEnv } from "../torch/index.ts";
import { removeStaleTempsIn } from "../util/output.ts";
import { DEVICE_HELP, LAUNCH_FLAGS, LAUNCH_HELP, PLAN_FLAGS, UsageError, deviceFlag, intFlag, launchIfAsked, optInt, optNum, parseFlags, transformerFlags, withFlags } from "./args.ts";
import { ARCHS, isArch } from "../nn/networks.ts";
import { parsePatch, shown } from "./finetune.ts";

const CACHE_MB = D.cacheBytes / 2 ** 20;

const HELP = `usage: lsmseg pretrain --data DIR --method NAME --out RUN [options]

  --data DIR            unannotated layout (<category>_structures/<structure>/patchvolume_<n>.*), a dataset
                        root holding unannotated/, or a curated set in the same layout
  --method NAME         SSL method (--list shows them)
  --out RUN             run folder: config.json, log.jsonl, checkpoint_{latest,final}.safetensors
  --steps N             default ${D.steps}
  --resume              continue RUN from checkpoint_latest (after a kill): the same weights as an unbroken run
  --opt KEY=VALUE       a method setting (repeatable), e.g. --opt maskRatio=0.6
  --arch unet|resenc|unetr|swinunetr  network (default unet), planned as 'lsmseg finetune' plans it
  --features N          channels of the first stage (default 32)
  --hidden N            UNETR: transformer width (default 768, MLP 4×); --features is feature_size
  --heads N             UNETR: attention heads (default 12)
  --patch ZxYxX         patch size (default: planned from the data, as fine-tuning)
  --batch N             batch size (default 2; simclr 4)
  --balanced            sample every structure type equally often
  --lr X                AdamW learning rate (default ${shown(D.lr)}; warm-up then cosine)
  --precision bf16|fp32 default bf16 where the CPU has it
${DEVICE_HELP}
  --workers N           data-loading worker threads (default min(4, cores))
  --cache-mb N          memory for decoded volumes, all workers together (default ${CACHE_MB})
  --save-every N        steps between checkpoints (default ${D.saveEvery}; also every ${D.saveEveryMs / 60_000} minutes)
  --index PATH          where the dataset index is cached (default: in the data folder, else in RUN)
  --seed N              default ${D.seed}
  --list                list the methods and exit
  --quiet               no progress output
${LAUNCH_HELP}
                        (data-parallel: the effective batch is N × --batch; resume with another N works)`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    data: { type: "string" }, method: { type: "string" }, out: { type: "string" }, steps: { type: "string" }, resume: { type: "boolean" },
    opt: { type: "string", multiple: true }, arch: { type: "string" }, hidden: { type: "string" }, heads: { type: "string" }, features: { type: "string" }, patch: { type: "string" }, batch: { type: "string" },
    balanced: { type: "boolean" }, lr: { type: "string" }, precision: { type: "string" }, workers: { type: "string" }, "cache-mb": { type: "string" },
    "save-every": { type: "string" }, index: { type: "string" }, seed: { type: "string" }, list: { type: "boolean" }, quiet: { type: "boolean" }, device: { type: "string" },
    ...LAUNCH_FLAGS,
  }, HELP);
  if (!parsed) return 0;
  const v = parsed.values;
  if (v.list) {
    for (const m of (await sslMethods()).values()) console.log(`${m.name.padEnd(10)} ${m.describe}\n${" ".repeat(11)}options: ${Object.entries(m.defaults).map(([k, d]) => `${k}=${d}`).join(" ")}`);
    return 0;
  }
  if (!v.data || !v.out || !v.method) throw new UsageError(`--data, --method and --out are required\n\n${HELP}`);
  // every number is checked before a rank starts or data is read
  const numbers = {
    steps: intFlag("steps", v.steps, D.steps, { min: 1 }), lr: optNum("lr", v.lr, { above: 0 }), workers: optInt("workers", v.workers, { min: 0 }),
    cacheBytes: v["cache-mb"] === undefined ? undefined : intFlag("cache-mb", v["cache-mb"], CACHE_MB, { min: 0 }) * 2 ** 20,
    saveEvery: optInt("save-every", v["save-every"], { min: 1 }), seed: intFlag("seed", v.seed, D.seed, { min: 0 }),
  };
  const planned = { baseFeatures: optInt("features", v.features, { min: 1 }), patchSize: parsePatch(v.patch), batchSize: optInt("batch", v.batch, { min: 1 }) };
  if (!process.env.RANK || process.env.RANK === "0") removeStaleTempsIn(v.out);
  const launched = await launchIfAsked("pretrain", argv, v);
  if (launched !== null) return launched;
  const arch = v.arch ?? "unet";
  if (!isArch(arch)) throw new UsageError(`--arch: expected ${ARCHS.join(", ")}, got '${arch}'`);
  if (v.precision && v.precision !== "bf16" && v.precision !== "fp32") throw new UsageError(`--precision: expected bf16 or fp32, got '${v.precision}'`);
  const methodOptions: Record<string, number> = {};
  for (const kv of v.opt ?? []) {
    const m = /^([A-Za-z]\w*)=(.+)$/.exec(kv);
    if (!m || !Number.isFinite(Number(m[2]))) throw new UsageError(`--opt: expected KEY=NUMBER, got '${kv}'`);
    methodOptions[m[1]] = Number(m[2]);
  }
  const opts: Parameters<typeof pretrain>[0] = {
    data: v.data, out: v.out, device: await deviceFlag(v.device), method: v.method, methodOptions, resume: v.resume, ...numbers,
    plan: { arch, ...planned, transformer: transformerFlags(v) }, sampling: v.balanced ? "balanced" : "uniform",
    precision: v.precision as "bf16" | "fp32" | undefined, indexPath: v.index, quiet: v.quiet,
    // the launcher's environment names this rank's process group (none: one process)
    dist: distOptionsFromEnv(),
  };
  const res = await withFlags(PLAN_FLAGS, () => pretrain(opts));
  if (Number(process.env.RANK ?? 0) !== 0) return 0;
  console.log(`finished ${res.out}: ${res.method}, loss ${res.firstLoss.toFixed(4)} → ${res.lastLoss.toFixed(4)}; fine-tune with: lsmseg finetune --init ${res.checkpoint} ...`);
  return 0;
}
