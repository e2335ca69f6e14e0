// lsmseg report: the HTML report of a run (or two side by side) with a 3D viewer.
import { writeReport } from "../report/report.ts";
import { UsageError, parseFlags } from "./args.ts";

const HELP = `usage: lsmseg report --run DIR [--out report.html] [--compare DIR2 --labels A,B] [options]

Writes one HTML page that works offline: the SELMA3D metrics per category and per structure type (held-out
types marked), training curves, maximum-intensity projections of every test case with the prediction over
the truth, a 3D viewer (NiiVue) of one case, and the run's plan, configuration and versions. The viewer's
volumes and script go in <name>_files/ beside the page; keep the two together.
  --run DIR        a run folder: metrics.json (lsmseg evaluate) and finetune/ with plan.json, config.json,
                   log.jsonl (the demo's layout), or a fine-tuning folder with metrics.json in it
  --out FILE       the page to write (default: DIR/report.html; a folder gets report.html inside)
  --compare DIR2   a second run beside the first, e.g. fine-tuned from an SSL checkpoint
  --labels A,B     the runs' names in the report (default: the folder names)
  --case NAME      the test case the 3D viewer shows (default: the first)
  --images DIR     the test images (default: images/ beside the ground truth's folder)
  --title TEXT     the page's title`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    run: { type: "string" }, out: { type: "string" }, compare: { type: "string" }, labels: { type: "string" },
    case: { type: "string" }, images: { type: "string" }, title: { type: "string" },
  }, HELP);
  if (!parsed) return 0;
  const v = parsed.values;
  if (!v.run) throw new UsageError(`--run DIR is required\n\n${HELP}`);
  const labels = v.labels?.split(",").map((s) => s.trim());
  if (labels && labels.length !== (v.compare ? 2 : 1)) throw new UsageError(`--labels: expected ${v.compare ? "two names (A,B) with --compare" : "one name without --compare"}, got '${v.labels}'`);
  const path = await writeReport({ run: v.run, out: v.out ?? `${v.run.replace(/\/+$/, "")}/report.html`, compare: v.compare, labels, viewerCase: v.case, images: v.images, title: v.title });
  console.log(`report: ${path}`);
  return 0;
}
