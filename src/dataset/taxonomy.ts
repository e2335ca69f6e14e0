// The SELMA3D taxonomy: structure types, their categories and densities, and the roles a dataset gives them. The challenge's evaluation picks metrics by file-name
// prefix (`name.startswith((...))`): contiguous types get Dice and clDice, isolated types Dice and panoptic
// quality. Densities (sparse/dense) are the four ranking categories of the challenge's data table.

import { caseNameOf, isNnunetImageFolder } from "./names.ts";

export type Category = "isolated" | "contiguous";
export type Density = "sparse" | "dense";
/** annotated: in every split; heldOut: only in test/, as the challenge's unseen types; unannotatedOnly: pretraining only. */
export type Role = "annotated" | "heldOut" | "unannotatedOnly";

export interface StructureInfo {
  category: Category;
  density: Density;
}

/** The challenge's ten test types, in the order its evaluation checks them (contiguous first). */
export const CHALLENGE_STRUCTURES: Readonly<Record<string, StructureInfo>> = {
  axonalmarker: { category: "contiguous", density: "sparse" },
  blood_vessel: { category: "contiguous", density: "dense" },
  gutnerve: { category: "contiguous", density: "sparse" },
  lymphatic_vessel: { category: "contiguous", density: "dense" },
  peripheral_nerve: { category: "contiguous", density: "sparse" },
  AD_plaques: { category: "isolated", density: "sparse" },
  cell_nuclei: { category: "isolated", density: "dense" },
  cfos_neuron: { category: "isolated", density: "dense" },
  microglia: { category: "isolated", density: "dense" },
  protein: { category: "isolated", density: "sparse" },
};

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
 * imagesTr/ and imagesTs/), chosen as the challenge does: the name starts with the type's name. When several types match (only possible with extra types), the longest wins.
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

/** "<category> <density>", one of CATEGORY_NAMES. */
export function categoryName(s: StructureInfo): CategoryName {
  return `${s.category} ${s.density}` as CategoryName;
}
