// Segmentation: losses, fine-tuning, checkpoints as models, planning, sliding-window and out-of-core prediction.
export * from "./finetune.ts";
export * from "./losses.ts";
export * from "./model.ts";
export * from "./plan.ts";
export * from "./predict.ts";
export * from "./predict_large.ts";
export * from "./predict_options.ts";
export * from "./sliding_window.ts";
