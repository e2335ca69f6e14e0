// The data pipeline: dataset manifests and folds, normalisation, patch sampling, augmentation, and the
// worker-thread loader. Plain typed arrays out (Float32Array images, Uint8Array labels); no tensors here.
export * from "./augment.ts";
export * from "./dataset.ts";
export * from "./loader.ts";
export * from "./normalize.ts";
export * from "./rng.ts";
export * from "./sampling.ts";
export * from "./labels.ts";
