// Self-supervised pretraining: the method interface and registry, the pretraining loop, the data index and
// the SSL experiment.
export * from "./method.ts";
export * from "./pretrain.ts";
export * from "./data_index.ts";
export * from "./experiment.ts";
