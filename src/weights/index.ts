// lsmseg/weights: PyTorch checkpoints in and out (nnU-Net, nnssl, plain state dicts) with their key maps.
export { exportWeights, importWeights, type ExportResult, type ImportReport } from "./weights.ts";
export { FORMATS } from "./formats.ts";
export { DNA_CLASS, dnaKeys, type KeyEntry } from "./keymap.ts";
