// Optimizers and learning-rate schedules.
export * from "./optimizer.ts";
export * from "./schedule.ts";
