// lsmseg curate: raw whole volumes → a curated pretraining set in the Task 1 layout (Task 2).
import { curate } from "../curate/index.ts";
import { DEFAULT_FILTERS, type Filters } from "../curate/tiles.ts";
import { UsageError, intFlag, numFlag, optInt, parseFlags, withFlags } from "./args.ts";
import { prepareOutput } from "../util/output.ts";

const F = DEFAULT_FILTERS;
const FRACTION = { min: 0, max: 1 };
const HELP = `usage: lsmseg curate --in VOLUME [--in VOLUME …] --out DIR [options]

Cuts raw whole volumes (TIFF plane folders, multi-page/Big TIFF, OME-Zarr, NIfTI, MetaImage) into tiles, keeps
the tiles with tissue and structure, and writes them as <out>/unannotated/<category>_structures/<type>/
patchvolume_<n>.nii.gz (what 'lsmseg pretrain --data <out>' reads), with manifest.jsonl (one line per tile),
summary.json, contact_kept.png, contact_rejected.png and volumes/<name>/ (overview.ome.zarr, mip.png,
tissue mask, normalisation statistics). Memory does not grow with the volumes' size.

  --in VOLUME        a raw volume; repeat for several (or list them after the flags)
  --out DIR          the curated dataset
  --patch N          tile size in voxels (N or Z,Y,X)                                  [300]
  --stride N         grid step (N or Z,Y,X)                                            [patch]
  --workers N        worker threads (0 = main thread only)                             [cores]
  --resume           finish an interrupted run (same flags); nothing is repeated or lost
  --overwrite        write into an existing folder that is not a curation (nothing in it is deleted)
  --type NAME        structure type of every input (default: found in each volume's name)
  --category C       isolated | contiguous, for a type lsmseg does not know
  --tissue-method M  otsu | triangle threshold for the low-resolution tissue mask     [otsu]
  --task-mb N        MiB a worker reads at once                                        [256]
  --quiet            no progress output
filters (a tile is rejected for the first one it fails):
  --min-tissue F     background: fraction of the tile inside the tissue mask           [${F.minTissue}]
  --no-empty-check   keep tiles whose 99.9th percentile is below the tissue threshold ("empty")
  --max-saturation F saturated: fraction of voxels at the dtype's maximum              [${F.maxSaturation}]
  --min-snr F        low-snr: (p99.9 − median) / noise σ                                [${F.minSnr}]
  --min-structure F  featureless: fraction of voxels with local contrast > 3σ at 2×    [${F.minStructure}]
  --min-focus F      out-of-focus: fine-scale / 2× local-contrast ratio                 [${F.minFocus}]
  --dup-correlation F  duplicate: signature correlation with a kept tile of the volume  [${F.dupCorrelation}]
  --dup-difference F   … and mean |difference| in volume std units at most              [${F.dupDifference}]`;

function vecFlag(name: string, value: string | undefined): number | [number, number, number] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(",").map((s) => intFlag(name, s.trim(), 0, { min: 1 }));
  if (parts.length === 1) return parts[0];
  if (parts.length !== 3) throw new UsageError(`--${name}: expected N or Z,Y,X, got '${value}'`);
  return parts as [number, number, number];
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    in: { type: "string", multiple: true }, out: { type: "string" }, patch: { type: "string" }, stride: { type: "string" },
    workers: { type: "string" }, resume: { type: "boolean" }, overwrite: { type: "boolean" }, type: { type: "string" }, category: { type: "string" },
    "tissue-method": { type: "string" }, "task-mb": { type: "string" }, quiet: { type: "boolean" },
    "min-tissue": { type: "string" }, "no-empty-check": { type: "boolean" }, "max-saturation": { type: "string" }, "min-snr": { type: "string" },
    "min-structure": { type: "string" }, "min-focus": { type: "string" }, "dup-correlation": { type: "string" }, "dup-difference": { type: "string" },
  }, HELP, true);
  if (!parsed) return 0;
  const v = parsed.values;
  const inputs = [...(v.in ?? []), ...parsed.positionals];
  if (!inputs.length || !v.out) throw new UsageError(`--in and --out are required\n\n${HELP}`);
  const method = v["tissue-method"] ?? "otsu";
  if (method !== "otsu" && method !== "triangle") throw new UsageError(`--tissue-method: expected otsu or triangle, got '${method}'`);
  const filters: Partial<Filters> = {
    minTissue: numFlag("min-tissue", v["min-tissue"], F.minTissue, FRACTION), emptyBelowThreshold: !v["no-empty-check"],
    maxSaturation: numFlag("max-saturation", v["max-saturation"], F.maxSaturation, FRACTION), minSnr: numFlag("min-snr", v["min-snr"], F.minSnr, { min: 0 }),
    minStructure: numFlag("min-structure", v["min-structure"], F.minStructure, FRACTION), minFocus: numFlag("min-focus", v["min-focus"], F.minFocus, { min: 0 }),
    dupCorrelation: numFlag("dup-correlation", v["dup-correlation"], F.dupCorrelation, { min: -1, max: 1 }), dupDifference: numFlag("dup-difference", v["dup-difference"], F.dupDifference, { min: 0 }),
  };
  const numbers = {
    patch: vecFlag("patch", v.patch), stride: vecFlag("stride", v.stride), workers: optInt("workers", v.workers, { min: 0 }),
    taskBytes: v["task-mb"] === undefined ? undefined : intFlag("task-mb", v["task-mb"], 256, { min: 1 }) * 2 ** 20,
  };
  prepareOutput(v.out, { kind: "folder", overwrite: v.overwrite || v.resume, flag: "--resume (to finish an interrupted curation) or --overwrite" });
  const out = v.out;
  const s = await withFlags({ inputs: "--in" }, () => curate({
    inputs, out, ...numbers, resume: v.resume, type: v.type, category: v.category, tissue: { method }, filters, quiet: v.quiet,
  }));
  const reasons = Object.entries(s.rejected).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`).join(", ");
  console.log(`curated ${s.volumes.length} volume${s.volumes.length === 1 ? "" : "s"} into ${s.out}: ${s.tiles} tiles, kept ${s.kept}, rejected ${s.tiles - s.kept}${reasons ? ` (${reasons})` : ""}; ${(s.scannedBytes / 2 ** 20).toFixed(0)} MB scanned in ${s.seconds.total.toFixed(1)} s`);
  return 0;
}
