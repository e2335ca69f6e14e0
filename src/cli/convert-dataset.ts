// lsmseg convert-dataset IN OUT --to nnunet|selma3d: a dataset folder from one layout into the other.
import { parseFlags, UsageError } from "./args.ts";
import { convertDataset } from "../dataset/convert.ts";

const HELP = `usage: lsmseg convert-dataset IN OUT --to nnunet|selma3d [--quiet]

Writes the dataset IN in the other layout, case for case, as .nii.gz volumes:
  SELMA3D  annotated/images/<case>.<ext>, annotated/labels/, test/images/, test/labels/, dataset.json
  nnU-Net  imagesTr/<case>_0000.nii.gz, labelsTr/<case>.nii.gz, imagesTs/, labelsTs/, dataset.json
dataset.json keeps IN's keys (structures, roles, labels) and gets nnU-Net's channel_names, labels,
numTraining and file_ending. SELMA3D's unannotated/ has no nnU-Net counterpart and is not copied.`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, { to: { type: "string" }, quiet: { type: "boolean" } }, HELP, true);
  if (!parsed) return 0;
  const [input, output] = parsed.positionals;
  if (!input || !output || parsed.positionals.length > 2) throw new UsageError(`convert-dataset needs IN and OUT\n\n${HELP}`);
  const to = parsed.values.to;
  if (to !== "nnunet" && to !== "selma3d") throw new UsageError(`--to must be nnunet or selma3d, got ${to === undefined ? "nothing" : `'${to}'`}`);
  const r = await convertDataset(input, output, to, { quiet: parsed.values.quiet });
  console.log(`${output}: ${r.cases} volumes (${r.training} training cases) in ${to === "nnunet" ? "nnU-Net's" : "SELMA3D's"} layout`);
  for (const s of r.skipped) console.log(`not copied: ${s} (no counterpart in nnU-Net's layout)`);
  return 0;
}
