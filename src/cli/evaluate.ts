// lsmseg evaluate --pred DIR --gt DIR: the SELMA3D metrics per case, per category and overall, written to
// metrics.json and printed as a table.
import { join } from "node:path";
import { optInt, parseFlags, UsageError } from "./args.ts";
import { LABEL_FLAGS, labelMapFlag } from "./finetune.ts";
import { evaluateFolder } from "../eval/evaluate.ts";
import { metricsTables } from "../eval/table.ts";

const HELP = `usage: lsmseg evaluate --pred DIR --gt DIR [--out FILE] [--dataset FILE] [--workers N] [--extra] [--json]

Scores every ground-truth volume in --gt against the prediction of the same case name in --pred (.mha,
.nii.gz, .nii, .tif or .zarr, any mix), exactly as the SELMA3D evaluation does: Dice for every case,
clDice for contiguous structures, panoptic quality for isolated ones, chosen by the file-name prefix
(<structure>_<id>). Writes metrics.json with the challenge's aggregates, per case, per category, per
structure type and, when dataset.json marks held-out types, held-out vs seen.
  --out FILE       metrics.json to write (default: DIR/metrics.json of --pred)
  --dataset FILE   dataset.json with extra structure types and roles (default: found beside --gt)
  --workers N      worker threads (default: the idle cores, at most 8, and at least 4 cases each)
  --extra          also compute metrics that are not the challenge's (Betti-0/Betti-1 errors, HD95),
                   written under "extra" in metrics.json and printed as a table (about 2-3 s more per 200³ case)
  --json           print metrics.json to stdout instead of the table
  --label-map MAP  what the ground truth's values mean, VALUE=CLASS items (background, ignore, anything
                   else foreground), e.g. 0=ignore,1=background,2=axon,4=axon (default: dataset.json's "labels")
  --ignore-label V ground-truth value V means 'not labelled'
                   (sparse ground truth: only labelled voxels are scored, and metrics.json says so)`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    pred: { type: "string" }, gt: { type: "string" }, out: { type: "string" }, dataset: { type: "string" },
    workers: { type: "string" }, json: { type: "boolean" }, extra: { type: "boolean" }, ...LABEL_FLAGS,
  }, HELP);
  if (!parsed) return 0;
  const v = parsed.values;
  if (!v.pred || !v.gt) throw new UsageError(`evaluate needs --pred DIR and --gt DIR\n\n${HELP}`);
  const out = v.out ?? join(v.pred, "metrics.json");
  const workers = optInt("workers", v.workers, { min: 1 });
  const m = await evaluateFolder(v.pred, v.gt, { out, dataset: v.dataset, workers, quiet: v.json, extra: v.extra, labelMap: labelMapFlag(v) });
  if (v.json) {
    console.log(JSON.stringify(m, null, 2));
    return 0;
  }
  console.log(metricsTables(m, { extra: v.extra }));
  console.log(`\n${m.results.length} cases in ${m.seconds.toFixed(1)} s (${m.workers} workers)\nmetrics.json: ${out}`);
  return 0;
}
