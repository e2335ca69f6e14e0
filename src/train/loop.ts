// The one training loop of fine-tuning and pretraining. It owns what the two share: the run folder (a new run,
// or --resume of one), rank-0 logging, the process group (given by the caller: the CLI reads the launcher's
// environment, the library never does), the step (autocast, gradients averaged over the ranks while backward
// runs, clipping), the NaN check, log.jsonl and the checkpoint cadence. A command supplies its loss, its
// validation (at the end of a logging interval) and what its checkpoints hold.
import { appendFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { type Optimizer, clipGradNorm } from "../optim/index.ts";
import { CHECKPOINT_NAMES } from "../seg/model.ts";
import type { SaveCheckpointInput } from "../torch/checkpoint.ts";
import { type DistOptions, type GradSync, ProcessGroup, type Tensor, autocast, saveCheckpoint, tidy } from "../torch/index.ts";
import { makeDirs, writeFileAtomic } from "../util/atomic.ts";
import { readJsonl } from "../util/jsonl.ts";
import { Progress } from "../util/progress.ts";
import { OptionError } from "../util/option_error.ts";

/** Gradients are clipped to this global norm before every optimizer step (nnU-Net's value). */
export const GRAD_CLIP_NORM = 12;

/** What every training command takes for its run folder, its ranks and its output. */
export interface RunOptions {
  out: string;
  resume?: boolean;
  /** "cpu" (default) or "cuda", "cuda:N". */
  device?: string;
  /** The process group of a data-parallel run (the CLI reads it from the launcher's environment); none: one process. */
  dist?: DistOptions | null;
  quiet?: boolean;
  /** Where progress lines go (default: stderr). */
  log?: (line: string) => void;
}

/** An open run folder: the paths, the rank and the group. Rank 0 alone logs and writes. */
export interface Run {
  out: string;
  latestPath: string;
  finalPath: string;
  logPath: string;
  main: boolean;
  group: ProcessGroup | null;
  /** Ranks in the group (1 without one). */
  world: number;
  log: (line: string) => void;
}

/** The options as a rank sees them: ranks other than 0 are quiet. */
export function rankOptions<O extends RunOptions>(o: O): O {
  return (o.dist?.rank ?? 0) === 0 ? o : { ...o, quiet: true, log: () => {} };
}

/**
 * Checks the run folder (a run already there needs resume; resume needs one), creates it on rank 0 and joins
 * the process group. `o` is as rankOptions returns it.
 */
export function openRun(o: RunOptions): Run {
  const main = (o.dist?.rank ?? 0) === 0;
  const log = o.log ?? ((line: string) => { if (!o.quiet) process.stderr.write(line + "\n"); });
  const latestPath = join(o.out, CHECKPOINT_NAMES.latest);
  if (!o.resume && existsSync(latestPath)) {
    throw new OptionError("resume", (n) => `${o.out}: a run is already there (${CHECKPOINT_NAMES.latest}); ${n("resume")} continues it, or choose another ${n("out")}`);
  }
  if (o.resume && !existsSync(latestPath)) throw new Error(`${o.out}: nothing to resume (no ${CHECKPOINT_NAMES.latest})`);
  if (main) makeDirs(o.out);
  const group = o.dist ? ProcessGroup.init({ ...o.dist, device: o.device ?? "cpu" }) : null;
  return {
    out: o.out, latestPath, finalPath: join(o.out, CHECKPOINT_NAMES.final), logPath: join(o.out, "log.jsonl"),
    main, group, world: group?.worldSize ?? 1, log,
  };
}

/** Writes a JSON file of the run (rank 0 only), e.g. plan.json, config.json. */
export function writeRunJson(run: Run, name: string, value: unknown): void {
  if (run.main) writeFileAtomic(join(run.out, name), Buffer.from(JSON.stringify(value, null, 2) + "\n"));
}

/** A new run's log.jsonl: empty (rank 0 only). */
export function startLog(run: Run): void {
  if (run.main) writeFileAtomic(run.logPath, Buffer.alloc(0));
}

/** On resume: the log's records that the checkpoint covers; rank 0 rewrites the log to exactly those. */
export function resumeLog<R>(run: Run, covered: (r: R) => boolean): R[] {
  const records = readJsonl<R>(run.logPath).filter(covered);
  if (run.main) writeFileAtomic(run.logPath, Buffer.from(records.map((r) => JSON.stringify(r) + "\n").join("")));
  return records;
}

/** Appends one record to log.jsonl (rank 0 only). */
export function appendLog(run: Run, record: unknown): void {
  if (run.main) appendFileSync(run.logPath, JSON.stringify(record) + "\n");
}

/** Saves a checkpoint of the run, replacing the one of that name atomically (rank 0 only; `contents` runs there alone). */
export function saveRunCheckpoint(run: Run, name: string, contents: () => Omit<SaveCheckpointInput, "overwrite">): void {
  if (run.main) saveCheckpoint(join(run.out, name), { ...contents(), overwrite: true });
}

/** Every rank starts from rank 0's tensors (as DistributedDataParallel does at construction); then the gradients
 *  of `params` are averaged over the ranks by all-reduces that start during backward (DDP's overlap). */
export function syncRanks(run: Run, fromRank0: Tensor[], params: Tensor[]): GradSync | null {
  if (!run.group) return null;
  run.group.broadcast(fromRank0, 0);
  return run.group.gradSync(params);
}

/** `fn` under bf16 autocast when the precision asks for it, on the device's autocast type. */
export function withPrecision<T>(precision: "bf16" | "fp32", device: string, fn: () => T): T {
  return autocast(fn, { enabled: precision === "bf16", device: device.startsWith("cuda") ? "cuda" : "cpu" });
}

/** What one optimizer step needs. */
export interface StepParts {
  opt: Optimizer;
  /** The parameters whose gradients are clipped. */
  params: Tensor[];
  sync: GradSync | null;
}

/** One optimizer step on the loss `lossOf` builds (its temporaries freed); the loss's value, which must be finite. */
export function trainStep(p: StepParts, step: number, lossOf: () => Tensor): number {
  const loss = tidy(() => {
    const l = lossOf();
    p.opt.zeroGrad();
    l.backward();
    p.sync?.finish();
    clipGradNorm(p.params, GRAD_CLIP_NORM);
    p.opt.step();
    return l.item();
  });
  if (!Number.isFinite(loss)) {
    throw new OptionError("lr", (n) => `the loss became ${loss} at step ${step}; lower the learning rate (${n("lr")}) or set ${n("precision")} to fp32`);
  }
  return loss;
}

/** The steps of one logging interval: their loss sum, time and the fraction of it spent waiting for data. */
export interface Interval {
  lossSum: number;
  steps: number;
  seconds: number;
  waitFraction: number;
}

/** Where batches come from (a PatchLoader). */
export interface BatchSource<B> {
  next(): Promise<B>;
  readonly waitMs: number;
  close(): Promise<void>;
}

export interface LoopSpec<B> {
  run: Run;
  loader: BatchSource<B>;
  step: StepParts;
  /** The counters, advanced in place: optimizer steps of this rank, and global batches (steps × ranks). */
  at: { step: number; globalBatches?: number };
  /** Steps to run now. */
  steps: number;
  progress: { label: string; total: number; quiet?: boolean };
  schedule: (step: number) => number;
  /** Before a step (with the step's index): e.g. freeze or unfreeze a part of the network. */
  beforeStep?: (step: number) => void;
  /** The loss of a batch, built inside the step's scope. */
  loss: (batch: B, step: number) => Tensor;
  /** The progress line's text after a step. */
  tick: (loss: number, lr: number) => string;
  /** Whether a logging interval ends after `done` steps of this call, at step `step` (counted after it). */
  intervalEnds: (done: number, step: number) => boolean;
  /** At the end of an interval: its record, validation, checkpoints. */
  onInterval: (i: Interval) => Promise<void> | void;
  /** Saves checkpoint_latest every `every` steps, and at least every `everyMs`, after the interval's record. */
  checkpoint?: { every: number; everyMs: number; save: () => void };
}

/** Runs the steps: batch, learning rate, step, counters, progress; intervals and checkpoints when due. */
export async function trainLoop<B>(s: LoopSpec<B>): Promise<void> {
  const progress = new Progress(s.progress.label, s.progress.total, { unit: "steps", silent: s.progress.quiet });
  progress.set(s.at.step);
  let lastSave = performance.now();
  let lossSum = 0, count = 0, intervalStart = performance.now(), waitStart = s.loader.waitMs;
  try {
    for (let done = 1; done <= s.steps; done++) {
      const batch = await s.loader.next();
      const step = s.at.step;
      s.beforeStep?.(step);
      s.step.opt.lr = s.schedule(step);
      const loss = trainStep(s.step, step, () => s.loss(batch, step));
      lossSum += loss;
      count++;
      s.at.step++;
      if (s.at.globalBatches !== undefined) s.at.globalBatches += s.run.world;
      progress.tick(1, s.tick(loss, s.step.opt.lr));
      if (s.intervalEnds(done, s.at.step)) {
        const seconds = (performance.now() - intervalStart) / 1000;
        await s.onInterval({ lossSum, steps: count, seconds, waitFraction: (s.loader.waitMs - waitStart) / 1000 / seconds });
        lossSum = 0; count = 0; intervalStart = performance.now(); waitStart = s.loader.waitMs;
      }
      const c = s.checkpoint;
      if (c && (s.at.step % c.every === 0 || performance.now() - lastSave > c.everyMs)) {
        c.save();
        lastSave = performance.now();
      }
    }
  } finally {
    await s.loader.close();
    s.step.sync?.dispose();
  }
  progress.finish();
}
