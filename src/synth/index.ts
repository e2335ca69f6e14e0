// The synthetic LSM phantom generator: structure types, image physics and the dataset writer.
export { PRESETS, synthDataset, synthPatch, type DatasetJson, type SynthEntry, type SynthOptions } from "./dataset.ts";
export { drawSpecimen, renderLsm, type Specimen } from "./physics.ts";
export { Rng } from "./rng.ts";
export { STRUCTURES, structureType, type Category, type Density, type Role, type StructureType } from "./structures.ts";
export { makeCanvas, type Canvas } from "./draw.ts";
