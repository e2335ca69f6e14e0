// Learning-rate schedules as pure functions of the step: resuming at step k gives the same rate
// as never stopping, and a schedule needs no state of its own in a checkpoint.

export type Schedule = (step: number) => number;

/** nnU-Net's poly decay: lr · (1 − step/total)^exponent. */
export function poly(baseLr: number, totalSteps: number, exponent = 0.9): Schedule {
  return (step) => baseLr * Math.pow(Math.max(0, 1 - step / totalSteps), exponent);
}

/** Cosine decay from baseLr to minLr over totalSteps. */
export function cosine(baseLr: number, totalSteps: number, minLr = 0): Schedule {
  return (step) => minLr + 0.5 * (baseLr - minLr) * (1 + Math.cos(Math.PI * Math.min(1, step / totalSteps)));
}

export function constant(lr: number): Schedule {
  return () => lr;
}

/** Linear warm-up from startLr (a fraction of the schedule's rate by default 0) over warmupSteps, then `after` (shifted). */
export function linearWarmup(after: Schedule, warmupSteps: number, startFactor = 0): Schedule {
  return (step) => {
    if (step >= warmupSteps) return after(step - warmupSteps);
    const target = after(0);
    return target * (startFactor + (1 - startFactor) * (step / warmupSteps));
  };
}

export interface ScheduleConfig {
  kind: "poly" | "cosine" | "constant";
  baseLr: number;
  totalSteps: number;
  warmupSteps?: number;
  exponent?: number;
  minLr?: number;
}

/** A schedule from a plain config (what run configs and checkpoints store). */
export function makeSchedule(c: ScheduleConfig): Schedule {
  const warm = c.warmupSteps ?? 0;
  const total = Math.max(1, c.totalSteps - warm);
  const main = c.kind === "poly" ? poly(c.baseLr, total, c.exponent ?? 0.9) : c.kind === "cosine" ? cosine(c.baseLr, total, c.minLr ?? 0) : constant(c.baseLr);
  return warm > 0 ? linearWarmup(main, warm) : main;
}
