// lsmseg evaluate --pred DIR --gt DIR: the SELMA3D metrics per case, per category and overall, written to
// metrics.json and printed as a table.
import { join } from "node:path";
import { intFlag, parseFlags, UsageError } from "./args.ts";
import { CATEGORY_NAMES } from "../eval/categories.ts";
import { evaluateFolder, type GroupSummary, type MetricStats } from "../eval/evaluate.ts";

const HELP = `usage: lsmseg evaluate --pred DIR --gt DIR [--out FILE] [--dataset FILE] [--workers N] [--json]

Scores every ground-truth volume in --gt against the prediction of the same case name in --pred (.mha,
.nii.gz, .nii, .tif or .zarr, any mix), exactly as the SELMA3D evaluation does: Dice for every case,
clDice for contiguous structures, panoptic quality for isolated ones, chosen by the file-name prefix
(<structure>_<id>). Writes metrics.json with the challenge's aggregates, per case, per category, per
structure type and, when dataset.json marks held-out types, held-out vs seen.
  --out FILE       metrics.json to write (default: DIR/metrics.json of --pred)
  --dataset FILE   dataset.json with extra structure types and roles (default: found beside --gt)
  --workers N      worker threads (default: the cores, at most 8)
  --json           print metrics.json to stdout instead of the table`;

/** "0.8123 ± 0.0456", with NaN counts; "–" for no cases. */
function meanStd(s: MetricStats | undefined): string {
  if (!s || s.n === 0) return "–";
  const f = (x: number) => (Number.isNaN(x) ? "NaN" : x.toFixed(4));
  const main = s.n < 2 ? f(s.mean) : `${f(s.mean)} ± ${f(s.std)}`;
  return s.nan ? `${main} (${s.nan} NaN; without: ${f(s.nanmean)} ± ${f(s.nanstd)})` : main;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((v, c) => v.padEnd(widths[c])).join("  ").trimEnd()).join("\n");
}

function row(name: string, g: GroupSummary): string[] {
  return [name, String(g.cases), meanStd(g.dice), meanStd(g.cldice), meanStd(g.panoptic_quality)];
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    pred: { type: "string" }, gt: { type: "string" }, out: { type: "string" }, dataset: { type: "string" },
    workers: { type: "string" }, json: { type: "boolean" },
  }, HELP);
  if (!parsed) return 0;
  const v = parsed.values;
  if (!v.pred || !v.gt) throw new UsageError(`evaluate needs --pred DIR and --gt DIR\n\n${HELP}`);
  const out = v.out ?? join(v.pred, "metrics.json");
  const workers = v.workers === undefined ? undefined : intFlag("workers", v.workers, 1);
  if (workers !== undefined && workers < 1) throw new UsageError("--workers must be at least 1");
  const m = await evaluateFolder(v.pred, v.gt, { out, dataset: v.dataset, workers, quiet: v.json });
  if (v.json) {
    console.log(JSON.stringify(m, null, 2));
    return 0;
  }
  const head = ["", "cases", "Dice", "clDice", "PQ"];
  console.log(table([head, ...CATEGORY_NAMES.map((c) => row(c, m.categories[c])), row("overall", m.overall)]));
  console.log("\n" + table([head, ...Object.entries(m.structures).map(([name, s]) => row(`${name}${s.role === "heldOut" ? " (held out)" : ""}`, s))]));
  if (m.roles) console.log(`\nheld-out types: ${m.roles.heldOut.cases} cases; seen types: ${m.roles.seen.cases} cases (aggregates of each in metrics.json)`);
  const a = m.aggregates;
  const f = (x: number) => (Number.isNaN(x) ? "NaN" : x.toFixed(4));
  console.log(`\nchallenge aggregates: iso_dice ${f(a.iso_dice_mean)} ± ${f(a.iso_dice_std)}, iso_panoptic_quality ${f(a.iso_panoptic_quality_mean)} ± ${f(a.iso_panoptic_quality_std)}, con_dice ${f(a.con_dice_mean)} ± ${f(a.con_dice_std)}, con_cldice ${f(a.con_cldice_mean)} ± ${f(a.con_cldice_std)}`);
  const nan = a.iso_panoptic_quality_nan_cases + a.con_cldice_nan_cases;
  if (nan) console.log(`${nan} NaN case value(s): the challenge's mean is NaN then; *_nanmean in metrics.json leaves them out`);
  if (m.unmatchedPredictions.length) console.log(`${m.unmatchedPredictions.length} prediction(s) without ground truth, not scored`);
  console.log(`\n${m.results.length} cases in ${m.seconds.toFixed(1)} s (${m.workers} workers)\nmetrics.json: ${out}`);
  return 0;
}
