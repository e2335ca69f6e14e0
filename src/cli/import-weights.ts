// lsmseg import-weights: nnU-Net / nnssl / MONAI / PyTorch weights → an lsmseg model folder (src/weights/).
import { FORMATS } from "../weights/formats.ts";
import { importWeights } from "../weights/weights.ts";
import { type MonaiOptions } from "../weights/formats.ts";
import { UsageError, optInt, parseFlags } from "./args.ts";

const HELP = `usage: lsmseg import-weights IN --format nnunet|nnssl|monai|pytorch --out RUN [options]

Reads another framework's weights (nothing in the file is executed: only state-dict classes are unpickled)
and writes RUN/checkpoint_final.safetensors, RUN/plan.json and RUN/import_report.json: a model folder for
predict, serve and export-container, or (nnssl, an encoder) for finetune --init.
  IN                    a .pth/.pt (torch.save) or .safetensors file; for nnunet also a trained-model folder
                        (plans.json, dataset.json, fold_K/checkpoint_final.pth)
${Object.entries(FORMATS).map(([k, f]) => `  --format ${k.padEnd(13)}${f.describe}`).join("\n")}
  --out RUN             the model folder to write (must not hold a checkpoint yet)
  --fold K              nnunet folder: the fold to take (default the first fold_K)
  --configuration C     nnunet: the plans' configuration (default the checkpoint's, else 3d_fullres)
  --checkpoint NAME     nnunet folder: the file in fold_K (default checkpoint_final.pth, else checkpoint_best.pth)
  --plans FILE --dataset-json FILE
                        nnunet: plans and dataset.json for a bare checkpoint without init_args
  --arch unet|resenc    pytorch: the lsmseg network
  --arch unetr|swinunetr
                        monai: the network (default: told by the keys). The shapes give the rest where they can;
                        these flags give what they cannot, or override (a mismatch is refused, naming the key):
  --img-size Z,Y,X      monai: UNETR's img_size (the patch; needed unless the position embeddings are a cube);
                        SwinUNETR: the patch for predict (default 96,96,96; multiples of 32)
  --heads N             monai: UNETR's num_heads (default 12); SwinUNETR: N,N,N,N (default from the bias tables)
  --feature-size N --hidden N --mlp-dim N --in-channels N --out-channels N
  --window-size Z,Y,X   monai SwinUNETR: the window (needed unless the bias tables are of a cube)
  --key-map FILE.json   pytorch: {"network": {...}, "plan": {...}, "stateDictKey": "...", "keys": {"src": "lsmseg"},
                        "rules": [["^regex", "replacement"]]}; see docs/weights.md`;

/** A list of positive integers ("96,96,96" or "96x96x96"), `n` long when given. */
function ints(name: string, value: string | undefined, n?: number): number[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(/[x×,]/).map(Number);
  if ((n !== undefined && parts.length !== n) || parts.some((p) => !Number.isInteger(p) || p < 1)) throw new UsageError(`--${name}: expected ${n ?? "one or more"} positive integers separated by commas, got '${value}'`);
  return parts;
}

function monaiFlags(v: Record<string, string | boolean | undefined>): MonaiOptions {
  const s = (k: string) => v[k] as string | undefined;
  const pos = { min: 1 };
  return {
    imgSize: ints("img-size", s("img-size"), 3) as [number, number, number] | undefined, numHeads: ints("heads", s("heads")), windowSize: ints("window-size", s("window-size"), 3) as [number, number, number] | undefined,
    featureSize: optInt("feature-size", s("feature-size"), pos), hiddenSize: optInt("hidden", s("hidden"), pos), mlpDim: optInt("mlp-dim", s("mlp-dim"), pos),
    inChannels: optInt("in-channels", s("in-channels"), pos), outChannels: optInt("out-channels", s("out-channels"), pos),
  };
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    format: { type: "string" }, out: { type: "string" }, fold: { type: "string" }, configuration: { type: "string" }, checkpoint: { type: "string" },
    plans: { type: "string" }, "dataset-json": { type: "string" }, arch: { type: "string" }, "key-map": { type: "string" },
    "img-size": { type: "string" }, heads: { type: "string" }, "feature-size": { type: "string" }, hidden: { type: "string" }, "mlp-dim": { type: "string" },
    "in-channels": { type: "string" }, "out-channels": { type: "string" }, "window-size": { type: "string" },
  }, HELP, true);
  if (!parsed) return 0;
  const v = parsed.values;
  const [input, ...extra] = parsed.positionals;
  if (!input || extra.length) throw new UsageError(`expected one input file or folder\n\n${HELP}`);
  if (!v.format || !(v.format in FORMATS)) throw new UsageError(`--format: expected ${Object.keys(FORMATS).join(", ")}, got '${v.format ?? ""}'\n\n${HELP}`);
  if (!v.out) throw new UsageError(`--out is required\n\n${HELP}`);
  const archs = v.format === "monai" ? ["unetr", "swinunetr"] : ["unet", "resenc"];
  if (v.arch && !archs.includes(v.arch)) throw new UsageError(`--arch: expected ${archs.join(" or ")} for --format ${v.format}, got '${v.arch}'`);
  const r = importWeights(input, v.format, v.out, {
    fold: v.fold, configuration: v.configuration, checkpointName: v.checkpoint, plansFile: v.plans, datasetFile: v["dataset-json"],
    arch: v.arch as "unet" | "resenc" | "unetr" | "swinunetr" | undefined, keyMapFile: v["key-map"], monai: v.format === "monai" ? monaiFlags(v) : undefined,
  });
  const n = r.network;
  console.log(`imported ${r.source} (${r.format}): ${n.arch}${"features" in n ? `, features ${n.features.join("/")}` : ""}, ${n.numClasses} classes`);
  for (const note of r.notes) console.log(`  ${note}`);
  console.log(`  ${r.loaded} tensors loaded, ${r.aliasesChecked} alias keys checked equal, ${r.untouched.length} left at initialisation, ${r.unmapped.length} source keys unmapped${r.converted.length ? `, ${r.converted.length} converted to float32` : ""}`);
  for (const k of r.unmapped.slice(0, 20)) console.log(`  unmapped: ${k}`);
  if (r.unmapped.length > 20) console.log(`  … (all ${r.unmapped.length} in ${v.out}/import_report.json)`);
  console.log(`wrote ${v.out}/ (checkpoint_final.safetensors${r.untouched.length && !r.notes.some((n) => n.includes("cross-attention")) ? "; use it as finetune --init" : ", plan.json"}, import_report.json)`);
  return 0;
}
