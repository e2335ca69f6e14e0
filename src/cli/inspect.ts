// lsmseg inspect DIR: the dataset's fingerprint (counts, shapes, spacings, intensities, foreground, components,
// skeleton lengths), as a table or as JSON. lsmseg inspect FILE|URL: one volume's format, geometry, layout and
// intensity percentiles from a bounded sample.
import { readdirSync, statSync } from "node:fs";
import { parseFlags, UsageError } from "./args.ts";
import { OPEN_FLAGS, OPEN_HELP, openOptions } from "./open-flags.ts";
import { fingerprint } from "../eval/fingerprint.ts";
import { describeVolume, SAMPLE_BYTES } from "../io/describe.ts";
import { formatOf, isUrl } from "../io/index.ts";
import { checkExists } from "../util/fserror.ts";

const HELP = `usage: lsmseg inspect DIR [--json]
       lsmseg inspect FILE|URL [--json] [--series N] [--level L] [--channel C] [--time T]

Prints the fingerprint of a dataset folder in the challenge's layout (unannotated/, annotated/, test/):
counts per structure type and category, shapes, spacings, intensity percentiles (0.5, 50, 99.5) of
foreground and background, foreground fraction, and per labelled case its 26-connected components and
skeleton length.
A single volume (a file, an OME-Zarr folder or http(s) URL, a folder of TIFF planes) prints its format,
shape, dtype, spacing, origin, channels, chunks and codec, pyramid levels and intensity percentiles from a
sample of at most ${SAMPLE_BYTES / 2 ** 20} MB of planes.
  --json   print one JSON object
${OPEN_HELP}`;

/** A folder that is one volume (an OME-Zarr store or a folder of TIFF planes), not a dataset. */
function isVolumeFolder(dir: string): boolean {
  if (formatOf(dir) === "zarr") return true;
  const entries = readdirSync(dir, { withFileTypes: true });
  return entries.some((e) => /\.tiff?$/i.test(e.name)) && !entries.some((e) => e.isDirectory());
}

async function inspectVolume(path: string, json: boolean, v: Parameters<typeof openOptions>[0]): Promise<number> {
  const d = await describeVolume(path, openOptions(v));
  if (json) {
    console.log(JSON.stringify(d, null, 2));
    return 0;
  }
  const x = (a: readonly number[]) => a.join(" × ");
  const r = (n: number) => +n.toPrecision(6);
  const i = Object.fromEntries(Object.entries(d.intensity).map(([k, n]) => [k, r(n)])) as typeof d.intensity;
  console.log([
    path,
    `format:          ${d.format}`,
    `shape (z,y,x):   ${x(d.shape)}${d.fullShape && d.fullShape.length !== 3 ? `   (stored ${x(d.fullShape)}, axes ${d.axes?.join(",")})` : ""}`,
    `dtype:           ${d.dtype}`,
    `spacing (µm):    ${x(d.spacingUm)}`,
    `origin (µm):     ${d.originUm ? x(d.originUm) : "–"}`,
    `channels:        ${d.channels}${d.timePoints > 1 ? `, time points: ${d.timePoints}` : ""}`,
    `chunks:          ${d.chunks ? x(d.chunks) : "–"}`,
    `codec:           ${d.codec ?? "–"}`,
    `pyramid levels:  ${d.pyramidLevels}`,
    `intensity:       min ${i.min}, p0.5 ${i.p0_5}, p50 ${i.p50}, p99.5 ${i.p99_5}, max ${i.max}, mean ${i.mean}  (${i.sampledVoxels} voxels of ${i.sampledPlanes} planes)`,
  ].join("\n"));
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, { json: { type: "boolean" }, ...OPEN_FLAGS }, HELP, true);
  if (!parsed) return 0;
  const [dir] = parsed.positionals;
  if (!dir || parsed.positionals.length > 1) throw new UsageError(`inspect needs one DIR, FILE or URL\n\n${HELP}`);
  if (isUrl(dir)) return inspectVolume(dir, !!parsed.values.json, parsed.values);
  checkExists(dir, "no such file or folder");
  if (!statSync(dir).isDirectory() || isVolumeFolder(dir)) return inspectVolume(dir, !!parsed.values.json, parsed.values);
  const fp = await fingerprint(dir);
  if (parsed.values.json) {
    console.log(JSON.stringify(fp, null, 2));
    return 0;
  }
  const table = (rows: string[][]) => {
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    return rows.map((r) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join("  ")).join("\n");
  };
  const splits = Object.keys(fp.counts);
  const types = [...new Set(splits.flatMap((s) => Object.keys(fp.counts[s])))].sort();
  console.log(`${dir}\n`);
  console.log(table([["type", ...splits], ...types.map((t) => [t, ...splits.map((s) => String(fp.counts[s][t] ?? 0))])]));
  console.log("\n" + table([["category", ...splits], ...Object.entries(fp.categories).sort().map(([c, n]) => [c, ...splits.map((s) => String(n[s] ?? 0))])]));
  console.log(`\nshapes: ${Object.entries(fp.shapes).map(([s, n]) => `${s} (${n})`).join(", ")}`);
  console.log(`spacings (µm, z×y×x): ${Object.entries(fp.spacingsUm).map(([s, n]) => `${s} (${n})`).join(", ")}`);
  const p = (x: { p0_5: number; p50: number; p99_5: number } | null) => (x ? `${x.p0_5} / ${x.p50} / ${x.p99_5}` : "–");
  console.log(`intensity p0.5 / p50 / p99.5: foreground ${p(fp.intensity.foreground)}; background ${p(fp.intensity.background)}; unannotated ${p(fp.intensity.unannotated)}`);
  if (fp.foregroundFraction) {
    const f = fp.foregroundFraction;
    console.log(`foreground fraction: mean ${(f.mean * 100).toFixed(2)}%, min ${(f.min * 100).toFixed(2)}%, max ${(f.max * 100).toFixed(2)}%`);
  }
  if (fp.cases.length) {
    console.log("\n" + table([["case", "category", "fg %", "components", "skeleton"], ...fp.cases.map((c) => [
      c.image, c.category, (c.foregroundFraction * 100).toFixed(2), String(c.components), String(c.skeletonVoxels),
    ])]));
  }
  return 0;
}
