// The dataset folder: volume names and case names, the SELMA3D taxonomy, the layouts (SELMA3D, nnU-Net raw) and
// dataset.json, and the conversion between the layouts.
export * from "./names.ts";
export * from "./taxonomy.ts";
export * from "./layout.ts";
