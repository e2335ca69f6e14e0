// The SELMA3D taxonomy: structure types, their categories and densities, and the roles a dataset gives them. The
// challenge's evaluation picks metrics by file-name prefix (`name.startswith((...))`): contiguous types get Dice
// and clDice, isolated types Dice and panoptic quality. Densities (sparse/dense) are the four ranking categories of
// the challenge's data table. synth, data, curate and eval all read the types from here.

import { caseNameOf, isNnunetImageFolder } from "./names.ts";

export type Category = "isolated" | "contiguous";
export type Density = "sparse" | "dense";
/** annotated: in every split; heldOut: only in test/, as the challenge's unseen types; unannotatedOnly: pretraining only. */
export type Role = "annotated" | "heldOut" | "unannotatedOnly";

export interface StructureInfo {
  category: Category;
  density: Density;
}

/** A structure type: its name (the file-name prefix of its cases), category, density and role. */
export interface StructureTaxon extends StructureInfo {
  name: string;
  role: Role;
}

/**
 * Every SELMA3D structure type lsmseg knows (/work/shared/selma3d.md's data table): the challenge's ten test types
 * (annotated: also in the training set; heldOut: only in the test set) and the unannotated-only types of its
 * pretraining data. The synthetic generator draws them in this order.
 */
export const SELMA3D_TYPES: readonly StructureTaxon[] = [
  { name: "cfos_neuron", category: "isolated", density: "dense", role: "annotated" },
  { name: "cell_nuclei", category: "isolated", density: "dense", role: "annotated" },
  { name: "microglia", category: "isolated", density: "dense", role: "heldOut" },
  { name: "AD_plaques", category: "isolated", density: "sparse", role: "annotated" },
  { name: "protein", category: "isolated", density: "sparse", role: "heldOut" },
  { name: "blood_vessel", category: "contiguous", density: "dense", role: "annotated" },
  { name: "lymphatic_vessel", category: "contiguous", density: "dense", role: "heldOut" },
  { name: "peripheral_nerve", category: "contiguous", density: "sparse", role: "annotated" },
  { name: "axonalmarker", category: "contiguous", density: "sparse", role: "annotated" },
  { name: "gutnerve", category: "contiguous", density: "sparse", role: "heldOut" },
  { name: "astrocyte_gfap", category: "isolated", density: "dense", role: "unannotatedOnly" },
  { name: "chondrocyte", category: "isolated", density: "dense", role: "unannotatedOnly" },
  { name: "sox9_chondrogenic", category: "isolated", density: "dense", role: "unannotatedOnly" },
  { name: "th_neuron", category: "isolated", density: "sparse", role: "unannotatedOnly" },
  { name: "artery_sma", category: "contiguous", density: "dense", role: "unannotatedOnly" },
  { name: "sympathetic_nerve_th", category: "contiguous", density: "sparse", role: "unannotatedOnly" },
  { name: "lyve1_lymphatic", category: "contiguous", density: "dense", role: "unannotatedOnly" },
  { name: "cranial_nerve", category: "contiguous", density: "sparse", role: "unannotatedOnly" },
];

/** The SELMA3D type `name`; errors list the known ones. */
export function selma3dType(name: string): StructureTaxon {
  const t = SELMA3D_TYPES.find((s) => s.name === name);
  if (!t) throw new Error(`unknown structure type '${name}' (known: ${SELMA3D_TYPES.map((s) => s.name).join(", ")})`);
  return t;
}

/** The evaluation checks contiguous types first, each group by name. */
const challengeOrder = (a: StructureTaxon, b: StructureTaxon) =>
  a.category !== b.category ? (a.category === "contiguous" ? -1 : 1) : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

/** The challenge's ten test types (every type but the unannotated-only ones), in the order its evaluation checks them. */
export const CHALLENGE_STRUCTURES: Readonly<Record<string, StructureInfo>> = Object.fromEntries(
  SELMA3D_TYPES.filter((t) => t.role !== "unannotatedOnly").sort(challengeOrder).map((t) => [t.name, { category: t.category, density: t.density }]),
);

/** The four ranking categories, as "<category> <density>". */
export const CATEGORY_NAMES = ["isolated sparse", "isolated dense", "contiguous sparse", "contiguous dense"] as const;
export type CategoryName = (typeof CATEGORY_NAMES)[number];

export interface CaseStructure extends StructureInfo {
  /** The structure type (the matched prefix). */
  structure: string;
  /** The case name: the file name without its volume extension. */
  caseName: string;
  /** What follows `<structure>_` in the case name ("" when nothing does). */
  id: string;
}

export { caseNameOf } from "./names.ts";

function isStructureInfo(v: unknown): v is StructureInfo {
  const o = v as Partial<StructureInfo> | null;
  return !!o && (o.category === "isolated" || o.category === "contiguous") && (o.density === "sparse" || o.density === "dense");
}

/**
 * The structure table: the challenge's types plus `extra` ones (e.g. dataset.json's `structures`).
 * An extra type that is a challenge type must agree with the challenge's category and density;
 * `source` names where the extras came from, for errors.
 */
export function structureTable(extra: Record<string, unknown> = {}, source = "dataset.json"): Record<string, StructureInfo> {
  const table: Record<string, StructureInfo> = { ...CHALLENGE_STRUCTURES };
  for (const [name, v] of Object.entries(extra)) {
    if (!isStructureInfo(v)) {
      throw new Error(`${source}: structures.${name} needs category "isolated"|"contiguous" and density "sparse"|"dense", got ${JSON.stringify(v)}`);
    }
    const known = CHALLENGE_STRUCTURES[name];
    if (known && (known.category !== v.category || known.density !== v.density)) {
      throw new Error(`${source}: structures.${name} is ${v.category} ${v.density}, but the challenge scores it as ${known.category} ${known.density}`);
    }
    table[name] = { category: v.category, density: v.density };
  }
  return table;
}

/**
 * The structure of a case file `<structure>_<id>.<ext>` (nnU-Net's `<structure>_<id>_0000.<ext>` in
 * imagesTr/ and imagesTs/), chosen as the challenge does: the name starts with the type's name. When several
 * types match (only possible with extra types), the longest wins.
 */
export function structureOf(fileName: string, table: Record<string, StructureInfo> = CHALLENGE_STRUCTURES): CaseStructure {
  const dir = fileName.replace(/\/+$/, "").split(/[\\/]/).slice(0, -1).join("/");
  const caseName = caseNameOf(fileName, isNnunetImageFolder(dir));
  let best: string | null = null;
  for (const name of Object.keys(table)) {
    if (caseName.startsWith(name) && (best === null || name.length > best.length)) best = name;
  }
  if (best === null) {
    throw new Error(`${fileName}: unknown structure type; the name must start with one of ${Object.keys(table).join(", ")} (as <structure>_<id>)`);
  }
  const rest = caseName.slice(best.length);
  return { structure: best, caseName, id: rest.startsWith("_") ? rest.slice(1) : rest, ...table[best] };
}

/**
 * The structure type of a training case from its name, as the challenge names files: <structure>_<id>. A known
 * type that the name starts with, followed by `_`, wins (the longest, as structureOf); else the name less its
 * trailing _<digits>. Lenient where structureOf is strict: training data and fingerprints may hold other types.
 */
export function structureOfName(stem: string, known: Iterable<string> = []): string {
  let best = "";
  for (const k of known) if (stem.startsWith(`${k}_`) && k.length > best.length) best = k;
  if (best) return best;
  const m = /^(.*?)_\d+$/.exec(stem);
  return m ? m[1] : stem;
}

/** "<category> <density>", one of CATEGORY_NAMES. */
export function categoryName(s: StructureInfo): CategoryName {
  return `${s.category} ${s.density}` as CategoryName;
}
