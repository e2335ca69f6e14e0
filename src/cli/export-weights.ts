// lsmseg export-weights: an lsmseg model → nnU-Net's / MONAI's / PyTorch's key names as .pth or .safetensors (src/weights/).
import { FORMATS } from "../weights/formats.ts";
import { exportWeights } from "../weights/weights.ts";
import { UsageError, parseFlags } from "./args.ts";

const EXPORTABLE = Object.keys(FORMATS).filter((k) => FORMATS[k].exportable);

const HELP = `usage: lsmseg export-weights RUN|CKPT --format ${EXPORTABLE.join("|")} --out OUT.pth|OUT.safetensors

  RUN|CKPT              a model folder (final → best → latest checkpoint) or a checkpoint file
  --format nnunet       {"network_weights": state_dict, "trainer_name", "init_args": {"configuration"},
                        "inference_allowed_mirroring_axes"} with dynamic_network_architectures' key names, as nnU-Net's
                        checkpoints hold it: load_state_dict(strict=True) into the matching PlainConvUNet /
                        ResidualEncoderUNet (.safetensors: the state dict alone, the plan in its metadata)
  --format monai        a UNETR / SwinUNETR model as MONAI's plain state dict (its keys and order;
                        load_state_dict(strict=True) into monai.networks.nets.UNETR / SwinUNETR built alike)
  --format pytorch      the plain state dict under lsmseg's key names (the plan beside it as OUT.plan.json, or
                        in the .safetensors metadata)
  --out FILE            .pth/.pt (torch.save's zip layout, pickle protocol 2; torch.load(weights_only=True) reads it)
                        or .safetensors`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, { format: { type: "string" }, out: { type: "string" } }, HELP, true);
  if (!parsed) return 0;
  const v = parsed.values;
  const [input, ...extra] = parsed.positionals;
  if (!input || extra.length) throw new UsageError(`expected one model folder or checkpoint\n\n${HELP}`);
  if (!v.format || !EXPORTABLE.includes(v.format)) throw new UsageError(`--format: expected ${EXPORTABLE.join(" or ")}, got '${v.format ?? ""}'\n\n${HELP}`);
  if (!v.out) throw new UsageError(`--out is required\n\n${HELP}`);
  const r = exportWeights(input, v.format, v.out);
  console.log(`wrote ${r.out}: ${r.tensors} tensors${r.zeroFilled.length ? ` (${r.zeroFilled.length} deep-supervision seg_layers tensors as zeros: the model was built without them)` : ""}`);
  return 0;
}
