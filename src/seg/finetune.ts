// Supervised fine-tuning, nnU-Net style: plan from the data, patches with foreground oversampling and
// augmentation from worker threads, Dice + CE with deep supervision, SGD (Nesterov) with poly decay or
// AdamW, bf16 autocast where the CPU has it, pseudo-Dice validation per category every epoch,
// checkpoints latest/best/final, a JSONL log, and exact resumption after a kill. The loop itself (run folder,
// ranks, the step, log.jsonl) is src/train/loop.ts's; this file gives it the loss, the validation and the
// checkpoints' contents.
import { readFileSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import { type Case, annotatedCases, foldCases } from "../data/dataset.ts";
import { DEFAULT_AUGMENT } from "../data/augment.ts";
import { IGNORE_LABEL, type LabelMap, hasIgnore } from "../data/labels.ts";
import { PatchLoader } from "../data/loader.ts";
import { openVolume } from "../io/index.ts";
import { type SegNetwork, buildNetwork } from "../nn/networks.ts";
import { AdamW, type Optimizer, SGD, makeSchedule } from "../optim/index.ts";
import { type DistOptions, type Tensor, argmaxAlong, buildInfo, defaultPrecision, fromBytes, loadCheckpoint, manualSeed, noGrad, tidy } from "../torch/index.ts";
import {
  type Interval, type Run, type StepParts, appendLog, openRun, rankOptions, resumeLog, saveRunCheckpoint, startLog, syncRanks, trainLoop,
  withPrecision, writeRunJson,
} from "../train/loop.ts";
import { segmentationLoss } from "./losses.ts";
import { CHECKPOINT_NAMES, disposeCheckpoint, networkFromCheckpoint, transferWeights, type TransferReport } from "./model.ts";
import { type Plan, type PlanOptions, checkTrainingMemory, definedOnly, describePlan, devicePlanOptions, makePlan } from "./plan.ts";

const LSMSEG_VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

/** Fine-tuning's defaults, in one place (the CLI's help prints them from here). */
export const FINETUNE_DEFAULTS = {
  fold: 0,
  folds: 5,
  epochs: 50,
  stepsPerEpoch: 250,
  valPatchesPerCase: 4,
  initParts: "encoder",
  optimizer: "sgd",
  /** Per optimizer: learning rate and weight decay; SGD with Nesterov momentum (nnU-Net's). Both decay poly. */
  sgd: { lr: 0.01, momentum: 0.99, weightDecay: 3e-5 },
  adamw: { lr: 1e-3, weightDecay: 0.01 },
  /** Linear warm-up after --init, as a fraction of the run (none from scratch). */
  initWarmupFraction: 0.1,
  freezeEncoderSteps: 0,
  seed: 0,
  /** Data-loading workers: one core fewer than the machine has (the step needs the rest), at most this many. */
  maxWorkers: 4,
} as const;

const D = FINETUNE_DEFAULTS;

export interface FinetuneOptions {
  data: string;
  out: string;
  /** "cpu" (default) or "cuda", "cuda:N" with a CUDA libtorch (LIBTORCH); data-parallel ranks take cuda:LOCAL_RANK. */
  device?: string;
  fold?: number | "all";
  folds?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  /** Patches per validation case for the per-epoch pseudo-Dice. */
  valPatchesPerCase?: number;
  init?: string;
  /** What --init transfers: the encoder (default) or every tensor that fits. */
  initParts?: "encoder" | "all";
  resume?: boolean;
  optimizer?: "sgd" | "adamw";
  lr?: number;
  weightDecay?: number;
  /** Linear warm-up steps (default: 0 from scratch, 10 % of the run after --init). */
  warmupSteps?: number;
  /** Steps at the start during which the encoder is frozen (no gradients, no updates) and only the decoder and
   *  heads learn, so that a pretrained encoder is not disturbed by a random decoder's gradients (the
   *  fine-tuning recipe of nnssl's trainers). Default 0. */
  freezeEncoderSteps?: number;
  seed?: number;
  precision?: "bf16" | "fp32";
  workers?: number;
  plan?: PlanOptions;
  /** Weight of a soft-clDice term (0 = off). */
  clDiceWeight?: number;
  /** What the label files' values mean (background, foreground, ignore); default dataset.json's `labels`, else
   *  every value > 0 is foreground. Ignored voxels count in no loss term and no pseudo-Dice. */
  labelMap?: LabelMap;
  augment?: boolean;
  quiet?: boolean;
  /** Where progress lines and the plan go (default: stderr). */
  log?: (line: string) => void;
  /** The process group of a data-parallel run (the CLI reads it from the launcher's environment): rank 0 alone
   *  logs and writes. */
  dist?: DistOptions | null;
}

export interface EpochRecord {
  epoch: number;
  step: number;
  lr: number;
  trainLoss: number;
  pseudoDice: Record<string, number>;
  pseudoDiceMean: number;
  emaPseudoDice: number;
  dataWaitFraction: number;
  secondsPerStep: number;
  time: string;
}

export interface FinetuneResult {
  out: string;
  plan: Plan;
  epochs: EpochRecord[];
  transfer?: TransferReport;
  bestEma: number;
}

/** How long the other ranks wait for rank 0's validation and checkpoints at the end of an epoch. */
const VALIDATION_WAIT_MS = 6 * 3600_000;

interface RunState {
  epoch: number;
  step: number;
  bestEma: number;
  ema: number | null;
  /** Global batches consumed (steps × ranks, summed over runs with different numbers of ranks); absent in old runs. */
  globalBatches?: number;
}

/** The group a case is reported in: "isolated dense", "contiguous sparse", ... */
export function categoryOf(c: Pick<Case, "category" | "density">): string {
  return `${c.category} ${c.density}`;
}

async function planFor(cases: Case[], o: FinetuneOptions): Promise<Plan> {
  const shapes: number[][] = [];
  const spacings: number[][] = [];
  for (const c of cases) {
    const src = await openVolume(c.imagePath);
    shapes.push(src.header.shape);
    spacings.push(src.header.spacingUm);
    await src.close();
  }
  const gpu = devicePlanOptions(o.device, o.precision ?? defaultPrecision(o.device ?? "cpu"));
  if (gpu.note && !o.quiet) process.stderr.write(gpu.note + "\n");
  const plan = makePlan(shapes, spacings, { deepSupervision: true, ...gpu.options, ...definedOnly(o.plan) });
  if (o.init) {
    // The pretraining checkpoint decides the architecture so that its weights fit (nnssl's adaptation plan).
    const net = networkFromCheckpoint(o.init, plan.network.numClasses, true);
    if (net) plan.network = net;
    // UNETR's position embeddings are made for its img_size (an imported MONAI model's, say): the patch follows
    if (net?.arch === "unetr") {
      const p = o.plan?.patchSize;
      if (p && p.some((v, i) => v !== net.imgSize[i])) {
        throw new Error(`--patch ${p.join("x")}: the --init UNETR was built for img_size ${net.imgSize.join("x")} (its position embeddings); ` +
          "leave --patch out or give that");
      }
      plan.patchSize = [...net.imgSize];
    }
  }
  return plan;
}

function toTensors(batch: { images: Float32Array; labels: Uint8Array | null }, shape: number[], device = "cpu"): { x: Tensor; y: Tensor } {
  const [b, d, h, w] = shape;
  const x = fromBytes(new Uint8Array(batch.images.buffer, batch.images.byteOffset, batch.images.byteLength), [b, 1, d, h, w], "float32");
  if (!batch.labels) throw new Error("fine-tuning needs labels, the loader returned none");
  const yu8 = fromBytes(batch.labels, [b, d, h, w], "uint8");
  const y = yu8.long();
  yu8.dispose();
  if (device === "cpu") return { x, y };
  return { x: x.to(device), y: y.to(device) };
}

/** Pseudo-Dice per category on fixed validation patches (nnU-Net's per-epoch estimate), accumulated over patches. */
async function pseudoDice(net: SegNetwork, val: Case[], plan: Plan, o: FinetuneOptions, precision: "bf16" | "fp32"): Promise<Record<string, number>> {
  if (val.length === 0) return {};
  const perCase = o.valPatchesPerCase ?? D.valPatchesPerCase;
  const bs = plan.batchSize;
  const batches = Math.ceil((val.length * perCase) / bs);
  const loader = new PatchLoader({
    cases: val, patchSize: plan.patchSize, batchSize: bs, seed: (o.seed ?? D.seed) + 7919, augment: null, workers: 0,
    normalize: { percentiles: plan.normalization.percentiles },
  });
  const counts = new Map<string, { tp: number; fp: number; fn: number }>();
  const byId = new Map(val.map((c) => [c.id, c]));
  net.eval();
  try {
    for (let i = 0; i < batches; i++) {
      const batch = await loader.next();
      noGrad(() => tidy(() => {
        const device = o.device ?? "cpu";
        const { x, y } = toTensors(batch, [bs, ...plan.patchSize], device);
        const logits = withPrecision(precision, device, () => net.forward(x) as Tensor).float();
        // voxels of IGNORE_LABEL (not labelled) are neither predicted foreground nor reference foreground here
        const pred = argmaxAlong(logits, 1).gt(0).logicalAnd(y.ne(IGNORE_LABEL));
        const gt = y.eq(1);
        batch.caseIds.forEach((id: string, k: number) => {
          const p = pred.select(0, k), g = gt.select(0, k);
          const tp = p.logicalAnd(g).sum().item();
          const fp = p.sum().item() - tp;
          const fn = g.sum().item() - tp;
          const key = categoryOf(byId.get(id)!);
          const c = counts.get(key) ?? { tp: 0, fp: 0, fn: 0 };
          c.tp += tp; c.fp += fp; c.fn += fn;
          counts.set(key, c);
        });
      }));
    }
  } finally {
    await loader.close();
    net.train();
  }
  const out: Record<string, number> = {};
  for (const [k, c] of [...counts].sort()) out[k] = c.tp + c.fp + c.fn === 0 ? 1 : (2 * c.tp) / (2 * c.tp + c.fp + c.fn);
  return out;
}

/** The base learning rate: --lr, else the optimizer's default. */
function baseLr(o: FinetuneOptions): number {
  return o.lr ?? D[o.optimizer ?? D.optimizer].lr;
}

function makeOptimizer(net: SegNetwork, o: FinetuneOptions): Optimizer {
  const params = net.parameters();
  if ((o.optimizer ?? D.optimizer) === "sgd") {
    return new SGD(params, { lr: baseLr(o), momentum: D.sgd.momentum, nesterov: true, weightDecay: o.weightDecay ?? D.sgd.weightDecay });
  }
  return new AdamW(params, { lr: baseLr(o), weightDecay: o.weightDecay ?? D.adamw.weightDecay });
}

/** The annotated cases and the fold's split of them. */
interface FoldData {
  cases: Case[];
  ignore: boolean;
  foldId: number | "all";
  fold: { train: Case[]; val: Case[] };
}

/** What the stages of one run share. */
interface Session {
  o: FinetuneOptions;
  run: Run;
  data: FoldData;
  device: string;
  precision: "bf16" | "fp32";
  plan: Plan;
  state: RunState;
  records: EpochRecord[];
  net: SegNetwork;
  opt: Optimizer;
  transfer?: TransferReport;
}

async function readFold(o: FinetuneOptions): Promise<FoldData> {
  const cases = await annotatedCases(o.data, { checkShapes: true, labelMap: o.labelMap });
  const foldId = o.fold ?? D.fold;
  const fold = foldCases(cases, foldId, { folds: o.folds ?? D.folds, seed: o.seed ?? D.seed });
  return { cases, ignore: cases.some((c) => hasIgnore(c.labelMap)), foldId, fold };
}

/** Continues the run in the folder from checkpoint_latest: plan, state, weights, optimizer and RNG. */
function resumeRun(run: Run, o: FinetuneOptions, data: FoldData): Session {
  const device = o.device ?? "cpu";
  const ckpt = loadCheckpoint(run.latestPath, { restoreRng: true });
  const plan = ckpt.meta.extra!.plan as Plan;
  const state = ckpt.meta.extra!.state as RunState;
  // JSON has no infinities or NaN: a run without validation (--fold all) stored them as null
  state.bestEma = typeof state.bestEma === "number" ? state.bestEma : -Infinity;
  state.ema = typeof state.ema === "number" ? state.ema : null;
  const net = buildNetwork(plan.network);
  net.loadStateDict(ckpt.model);
  net.to(device);
  const opt = makeOptimizer(net, o);
  if (ckpt.optimizer) opt.loadStateDict(ckpt.optimizer);
  disposeCheckpoint(ckpt.model, ckpt.optimizer?.params, ckpt.rng);
  const records = resumeLog<EpochRecord>(run, (r) => r.epoch < state.epoch);
  run.log(`resuming ${o.out} at epoch ${state.epoch} (step ${state.step})`);
  return { o, run, data, device, precision: o.precision ?? defaultPrecision(device), plan, state, records, net, opt };
}

/** A new run: the plan, the network (from --init's weights where given), plan.json and config.json. */
async function newRun(run: Run, o: FinetuneOptions, data: FoldData): Promise<Session> {
  const device = o.device ?? "cpu";
  const { fold, foldId } = data;
  manualSeed(o.seed ?? D.seed);
  const plan = await planFor(fold.train, o);
  if (device === "cpu") checkTrainingMemory(plan, totalmem());
  const net = buildNetwork(plan.network);
  const transfer = o.init ? initFrom(run, net, o.init, o.initParts ?? D.initParts) : undefined;
  net.to(device);
  const opt = makeOptimizer(net, o);
  writeRunJson(run, "plan.json", plan);
  const versions = { lsmseg: LSMSEG_VERSION, node: process.versions.node, libtorch: buildInfo().torchVersion };
  writeRunJson(run, "config.json", {
    ...o, log: undefined, dist: undefined, fold: foldId, worldSize: o.dist?.worldSize ?? 1, versions,
    train: fold.train.map((c) => c.id), val: fold.val.map((c) => c.id),
  });
  startLog(run);
  const state: RunState = { epoch: 0, step: 0, bestEma: -Infinity, ema: null };
  return { o, run, data, device, precision: o.precision ?? defaultPrecision(device), plan, state, records: [], net, opt, transfer };
}

/** Loads --init's weights into the network and says what it took. */
function initFrom(run: Run, net: SegNetwork, init: string, parts: "encoder" | "all"): TransferReport {
  const transfer = transferWeights(net, init, parts);
  const { source, transferred, skipped, untouched } = transfer;
  run.log(`init from ${source}: transferred ${transferred.length} tensors, skipped ${skipped.length}, ${untouched.length} left at their initialisation`);
  for (const s of skipped) run.log(`  skipped ${s.key}: ${s.reason}`);
  if (untouched.length) run.log(`  not transferred: ${summariseKeys(untouched)}`);
  return transfer;
}

function logSetup(s: Session): void {
  const { run, data, plan, o } = s;
  run.log(describePlan(plan));
  const { fold, foldId, cases, ignore } = data;
  const split = `${fold.train.length} training and ${fold.val.length} validation cases (fold ${foldId})`;
  run.log(`data: ${split}; ${s.precision} on ${s.device}; optimizer ${o.optimizer ?? D.optimizer}`);
  const labelMap = cases[0]?.labelMap;
  if (labelMap) {
    const values = Object.entries(labelMap).map(([v, c]) => `${v} → ${c}`).join(", ");
    run.log(`labels: ${values}; other values > 0 foreground${ignore ? "; ignored voxels count in no loss term" : ""}`);
  }
}

/** Freezes the encoder while step < steps (no gradients, no updates), then thaws it; `release` thaws it for good. */
function encoderFreezer(s: Session, steps: number): { update: (step: number) => void; release: () => void } {
  // made after the gradient hooks are in place: a frozen parameter cannot take one
  const encoderKeys = new Set(s.net.keyGroups().encoder);
  const encoderParams = s.net.namedParameters().filter(([k]) => encoderKeys.has(k)).map(([, p]) => p);
  let frozen = false;
  const update = (step: number) => {
    const f = step < steps;
    if (f === frozen) return;
    for (const p of encoderParams) p.requiresGrad = !f;
    frozen = f;
    s.run.log(f ? `encoder frozen for the first ${steps} steps (${encoderParams.length} tensors)` : `encoder unfrozen at step ${s.state.step}`);
  };
  return { update, release: () => { for (const p of encoderParams) p.requiresGrad = true; } };
}

function trainLoader(s: Session): PatchLoader {
  const { plan, state, run, o } = s;
  return new PatchLoader({
    cases: s.data.fold.train, patchSize: plan.patchSize, batchSize: plan.batchSize, seed: o.seed ?? D.seed,
    workers: o.workers ?? Math.max(1, Math.min(D.maxWorkers, availableParallelism() - 1)),
    augment: o.augment === false ? null : DEFAULT_AUGMENT, startBatch: state.step, normalize: { percentiles: plan.normalization.percentiles },
    shard: { rank: run.group?.rank ?? 0, worldSize: run.world, startGlobal: state.globalBatches },
  });
}

/** The epochs: steps through the loop, and at each epoch's end validation, checkpoints and the log record. */
async function trainEpochs(s: Session, step: StepParts): Promise<void> {
  const { o, state, plan, net } = s;
  const epochs = o.epochs ?? D.epochs;
  const stepsPerEpoch = o.stepsPerEpoch ?? D.stepsPerEpoch;
  const totalSteps = epochs * stepsPerEpoch;
  const warmupSteps = o.warmupSteps ?? (o.init ? Math.round(totalSteps * D.initWarmupFraction) : 0);
  const schedule = makeSchedule({ kind: "poly", baseLr: baseLr(o), totalSteps, warmupSteps });
  // old runs (before data parallelism) did not count global batches: one per step and rank
  state.globalBatches ??= state.step * s.run.world;
  const loader = trainLoader(s);
  const freezer = encoderFreezer(s, o.freezeEncoderSteps ?? D.freezeEncoderSteps);
  net.train();
  try {
    await trainLoop({
      run: s.run, loader, step, at: state, steps: Math.max(0, epochs - state.epoch) * stepsPerEpoch, schedule,
      progress: { label: "finetune", total: totalSteps, quiet: o.quiet },
      beforeStep: freezer.update,
      loss: (batch) => {
        const { x, y } = toTensors(batch, [plan.batchSize, ...plan.patchSize], s.device);
        const outs = withPrecision(s.precision, s.device, () => net.forward(x));
        return segmentationLoss(outs, y, { clDiceWeight: o.clDiceWeight, ignore: s.data.ignore });
      },
      tick: (loss, lr) => `epoch ${state.epoch + 1}/${epochs} loss ${loss.toFixed(4)} lr ${lr.toExponential(2)}`,
      intervalEnds: (done) => done % stepsPerEpoch === 0,
      onInterval: (i) => endEpoch(s, i, epochs, stepsPerEpoch),
    });
  } finally {
    freezer.release();
  }
}

/** The end of an epoch: pseudo-Dice and its EMA, checkpoints best/latest, the log record (rank 0's work). */
async function endEpoch(s: Session, i: Interval, epochs: number, stepsPerEpoch: number): Promise<void> {
  const { run, state, plan, net, opt } = s;
  const epoch = state.epoch;
  // Validation and checkpoints are rank 0's; the other ranks wait for it at the barrier.
  const pd = run.main ? await pseudoDice(net, s.data.fold.val, plan, s.o, s.precision) : {};
  const vals = Object.values(pd);
  const mean = vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN;
  state.ema = state.ema === null || !Number.isFinite(state.ema) ? mean : 0.9 * state.ema + 0.1 * mean;
  state.epoch = epoch + 1;
  const rec: EpochRecord = {
    epoch, step: state.step, lr: opt.lr, trainLoss: i.lossSum / stepsPerEpoch, pseudoDice: pd, pseudoDiceMean: mean,
    emaPseudoDice: state.ema, dataWaitFraction: i.waitFraction, secondsPerStep: i.seconds / stepsPerEpoch, time: new Date().toISOString(),
  };
  const improved = Number.isFinite(state.ema) && state.ema > state.bestEma;
  if (improved) state.bestEma = state.ema;
  const extra = { plan, state, fold: s.data.foldId, epochs, stepsPerEpoch };
  const contents = () => ({
    step: state.step, model: net.stateDict(), optimizer: opt.stateDict(), network: plan.network as unknown as Record<string, unknown>, extra,
  });
  if (improved) saveRunCheckpoint(run, CHECKPOINT_NAMES.best, contents);
  saveRunCheckpoint(run, CHECKPOINT_NAMES.latest, contents);
  appendLog(run, rec);
  run.group?.barrier(VALIDATION_WAIT_MS);
  s.records.push(rec);
  const pdText = Object.entries(pd).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ");
  const ema = `EMA ${state.ema.toFixed(3)}${improved ? ", best" : ""}`;
  const speed = `${rec.secondsPerStep.toFixed(2)} s/step, waiting for data ${(i.waitFraction * 100).toFixed(1)} %`;
  run.log(`epoch ${epoch + 1}/${epochs}: loss ${rec.trainLoss.toFixed(4)}, pseudo-Dice ${pdText || "—"} (${ema}), ${speed}`);
}

export async function finetune(options: FinetuneOptions): Promise<FinetuneResult> {
  const o = rankOptions(options);
  const run = openRun(o);
  const data = await readFold(o);
  const s = o.resume ? resumeRun(run, o, data) : await newRun(run, o, data);
  const { net, opt, plan, state } = s;
  const params = net.parameters();
  const sync = syncRanks(run, [...net.stateDict().values()], params);
  logSetup(s);
  await trainEpochs(s, { opt, params, sync });
  run.group?.destroy();
  const network = plan.network as unknown as Record<string, unknown>;
  const extra = { plan, state, fold: data.foldId };
  saveRunCheckpoint(run, CHECKPOINT_NAMES.final, () => ({ step: state.step, model: net.stateDict(), network, extra, rng: false }));
  net.dispose();
  return { out: o.out, plan, epochs: s.records, transfer: s.transfer, bestEma: state.bestEma };
}

/** "enc.0.* (6), dec.* (12)" — keys grouped by their first two parts. */
export function summariseKeys(keys: string[]): string {
  const groups = new Map<string, number>();
  for (const k of keys) {
    const g = k.split(".").slice(0, 2).join(".") + ".*";
    groups.set(g, (groups.get(g) ?? 0) + 1);
  }
  return [...groups].map(([g, n]) => `${g} (${n})`).join(", ");
}

