// lsmseg export-container: the Docker build folder and model tarball of the SELMA3D Grand Challenge container.
import { exportContainer } from "../serve/container.ts";
import { UsageError, parseFlags } from "./args.ts";

const HELP = `usage: lsmseg export-container --model RUN|CKPT --out DIR [--tag NAME]

Writes DIR/Dockerfile (Debian with node 20 and Debian's libtorch-dev; builds lsmseg and starts
'lsmseg serve --model /opt/ml/model'), DIR/lsmseg/ (the sources it builds), DIR/model.tar.gz (the
checkpoint as checkpoint_final.safetensors, plan.json, config.json and a manifest with its sha256, at the
archive's root, as Grand Challenge unpacks it into /opt/ml/model) and DIR/README.md with the commands to
build, test locally and upload.
  --model RUN|CKPT  a fine-tuning run folder (final → best → latest checkpoint) or a checkpoint file
  --out DIR         the folder to write (its earlier export is replaced)
  --tag NAME        the image name in the README's commands (default lsmseg-selma3d)`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, { model: { type: "string" }, out: { type: "string" }, tag: { type: "string" } }, HELP);
  if (!parsed) return 0;
  const v = parsed.values;
  if (!v.model || !v.out) throw new UsageError(`--model and --out are required\n\n${HELP}`);
  const r = await exportContainer({ model: v.model, out: v.out, tag: v.tag });
  console.log(`model:      ${r.modelTarball} (${r.modelFiles.join(", ")}; checkpoint sha256 ${r.sha256.slice(0, 16)}…)`);
  console.log(`Dockerfile: ${r.dockerfile}`);
  console.log(`next:       docker build -t ${v.tag ?? "lsmseg-selma3d"} ${r.out}   (then see ${r.out}/README.md)`);
  return 0;
}
