// lsmseg's public API in one import. The subpaths load less: lsmseg/io, lsmseg/eval, lsmseg/synth and
// lsmseg/curate never touch libtorch; lsmseg/torch, lsmseg/nn, lsmseg/optim, lsmseg/seg and lsmseg/ssl compute
// with it. Importing this index works without the native addon too: it loads on the first tensor operation.
export * from "./io/index.ts";
export * from "./eval/index.ts";
export * from "./synth/index.ts";
export * from "./curate/index.ts";
export * from "./data/index.ts";
export * from "./torch/index.ts";
export * from "./nn/index.ts";
export * from "./optim/index.ts";
export * from "./seg/index.ts";
export * from "./ssl/index.ts";
// names that two folders export alike: one meaning each at the top
export type { Category, Density } from "./eval/index.ts";
export type { Shape3 } from "./eval/index.ts";
export type { DType } from "./torch/index.ts";
export type { DType as VolumeDType } from "./io/index.ts";
export type { Triple } from "./nn/index.ts";
