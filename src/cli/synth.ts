// lsmseg synth: generate the synthetic LSM dataset (the embedded default) in SELMA3D's layout.
import { intFlag, OVERWRITE_HELP, parseFlags, UsageError } from "./args.ts";
import { SYNTH_OUTPUTS } from "../synth/dataset.ts";
import { prepareOutput } from "../util/output.ts";
import { PRESETS, synthDataset } from "../synth/index.ts";

const HELP = `usage: lsmseg synth --out DIR [--preset tiny|demo|challenge] [--seed N]
                    [--unannotated N] [--annotated N] [--test N] [--raw N] [--overwrite] [--quiet]

Writes a synthetic light-sheet dataset in the challenge's layout (unannotated/, annotated/, test/, raw/,
dataset.json). The same seed gives byte-identical files.
  --preset       tiny (seconds, for tests), demo (about a minute; 64³ patches), challenge (300³ unannotated,
                 200³ annotated/test; counts from the flags below)          [tiny]
  --seed         random seed                                                 [0]
  --unannotated  unannotated patches per structure type                      [preset]
  --annotated    annotated patches per annotated type                        [preset]
  --test         test patches per tested type                                [preset]
  --raw          raw whole volumes                                           [preset]
${OVERWRITE_HELP.replace("  --overwrite           ", "  --overwrite    ")} (unannotated/, annotated/, test/, raw/, dataset.json)`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    out: { type: "string" }, preset: { type: "string" }, seed: { type: "string" },
    unannotated: { type: "string" }, annotated: { type: "string" }, test: { type: "string" }, raw: { type: "string" },
    quiet: { type: "boolean" }, overwrite: { type: "boolean" },
  }, HELP);
  if (!parsed) return 0;
  const v = parsed.values;
  if (!v.out) throw new UsageError(`--out is required\n\n${HELP}`);
  const preset = (v.preset ?? "tiny") as keyof typeof PRESETS;
  if (!(preset in PRESETS)) throw new UsageError(`--preset must be tiny, demo or challenge, got '${v.preset}'`);
  const p = PRESETS[preset];
  const count = (name: string, value: string | undefined, fallback: number) => intFlag(name, value, fallback, { min: 0 });
  const overrides = {
    unannotatedPerType: count("unannotated", v.unannotated, p.unannotatedPerType),
    annotatedPerType: count("annotated", v.annotated, p.annotatedPerType),
    testPerType: count("test", v.test, p.testPerType),
    rawVolumes: count("raw", v.raw, p.rawVolumes),
  };
  const seed = intFlag("seed", v.seed, 0, { min: 0 });
  prepareOutput(v.out, { kind: "folder", overwrite: v.overwrite, owns: (n) => SYNTH_OUTPUTS.includes(n) });
  const t0 = Date.now();
  const json = await synthDataset(v.out, {
    preset,
    seed, quiet: v.quiet, overrides,
  });
  const s = json.splits;
  console.log(`wrote ${v.out}: ${s.unannotated.length} unannotated, ${s.annotated.length} annotated, ${s.test.length} test patches, ${s.raw.length} raw volumes (preset ${preset}, seed ${json.seed}, ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return 0;
}
