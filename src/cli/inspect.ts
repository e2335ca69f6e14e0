// lsmseg inspect DIR: the dataset's fingerprint (counts, shapes, spacings, intensities, foreground, components,
// skeleton lengths), as a table or as JSON.
import { existsSync } from "node:fs";
import { parseFlags, UsageError } from "./args.ts";
import { fingerprint } from "../eval/fingerprint.ts";

const HELP = `usage: lsmseg inspect DIR [--json]

Prints the fingerprint of a dataset folder in the challenge's layout (unannotated/, annotated/, test/):
counts per structure type and category, shapes, spacings, intensity percentiles (0.5, 50, 99.5) of
foreground and background, foreground fraction, and per labelled case its 26-connected components and
skeleton length.
  --json   print one JSON object`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, { json: { type: "boolean" } }, HELP, true);
  if (!parsed) return 0;
  const [dir] = parsed.positionals;
  if (!dir || parsed.positionals.length > 1) throw new UsageError(`inspect needs one DIR\n\n${HELP}`);
  if (!existsSync(dir)) throw new Error(`${dir}: no such folder`);
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
