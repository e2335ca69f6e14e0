// SELMA3D evaluation: per-case metrics (Dice, clDice, panoptic quality, topology, surface distances),
// per-category aggregation and the dataset fingerprint. Plain typed arrays; never loads libtorch.
export * from "../dataset/taxonomy.ts";
export * from "./components.ts";
export * from "./evaluate.ts";
export * from "./fingerprint.ts";
export * from "./metrics.ts";
export * from "./skeleton.ts";
export * from "./surface.ts";
export * from "./table.ts";
export * from "./topology.ts";
