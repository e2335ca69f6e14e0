// lsmseg import-weights: nnU-Net / nnssl / PyTorch weights → an lsmseg model folder (src/weights/).
import { FORMATS } from "../weights/formats.ts";
import { importWeights } from "../weights/weights.ts";
import { UsageError, parseFlags } from "./args.ts";

const HELP = `usage: lsmseg import-weights IN --format nnunet|nnssl|pytorch --out RUN [options]

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
  --key-map FILE.json   pytorch: {"network": {...}, "plan": {...}, "stateDictKey": "...", "keys": {"src": "lsmseg"},
                        "rules": [["^regex", "replacement"]]}; see docs/weights.md`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    format: { type: "string" }, out: { type: "string" }, fold: { type: "string" }, configuration: { type: "string" }, checkpoint: { type: "string" },
    plans: { type: "string" }, "dataset-json": { type: "string" }, arch: { type: "string" }, "key-map": { type: "string" },
  }, HELP, true);
  if (!parsed) return 0;
  const v = parsed.values;
  const [input, ...extra] = parsed.positionals;
  if (!input || extra.length) throw new UsageError(`expected one input file or folder\n\n${HELP}`);
  if (!v.format || !(v.format in FORMATS)) throw new UsageError(`--format: expected ${Object.keys(FORMATS).join(", ")}, got '${v.format ?? ""}'\n\n${HELP}`);
  if (!v.out) throw new UsageError(`--out is required\n\n${HELP}`);
  if (v.arch && v.arch !== "unet" && v.arch !== "resenc") throw new UsageError(`--arch: expected unet or resenc, got '${v.arch}'`);
  const r = importWeights(input, v.format, v.out, {
    fold: v.fold, configuration: v.configuration, checkpointName: v.checkpoint, plansFile: v.plans, datasetFile: v["dataset-json"],
    arch: v.arch as "unet" | "resenc" | undefined, keyMapFile: v["key-map"],
  });
  const n = r.network;
  console.log(`imported ${r.source} (${r.format}): ${n.arch}${"features" in n ? `, features ${n.features.join("/")}` : ""}, ${n.numClasses} classes`);
  for (const note of r.notes) console.log(`  ${note}`);
  console.log(`  ${r.loaded} tensors loaded, ${r.aliasesChecked} alias keys checked equal, ${r.untouched.length} left at initialisation, ${r.unmapped.length} source keys unmapped${r.converted.length ? `, ${r.converted.length} converted to float32` : ""}`);
  for (const k of r.unmapped.slice(0, 20)) console.log(`  unmapped: ${k}`);
  if (r.unmapped.length > 20) console.log(`  … (all ${r.unmapped.length} in ${v.out}/import_report.json)`);
  console.log(`wrote ${v.out}/ (checkpoint_final.safetensors${r.format === "nnssl" ? "; use it as finetune --init" : ", plan.json"}, import_report.json)`);
  return 0;
}
