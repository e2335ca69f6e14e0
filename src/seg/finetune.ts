// Supervised fine-tuning, nnU-Net style: plan from the data, patches with foreground oversampling and
// augmentation from worker threads, Dice + CE with deep supervision, SGD (Nesterov) with poly decay or
// AdamW, bf16 autocast where the CPU has it, pseudo-Dice validation per category every epoch,
// checkpoints latest/best/final, a JSONL log, and exact resumption after a kill.
import { appendFileSync, existsSync, readFileSync, truncateSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import { join } from "node:path";
import { type Case, annotatedCases, foldCases } from "../data/dataset.ts";
import { DEFAULT_AUGMENT } from "../data/augment.ts";
import { IGNORE_LABEL, type LabelMap, hasIgnore } from "../data/labels.ts";
import { PatchLoader } from "../data/loader.ts";
import { openVolume } from "../io/index.ts";
import { type SegNetwork, buildNetwork } from "../nn/networks.ts";
import { AdamW, type Optimizer, SGD, clipGradNorm, makeSchedule } from "../optim/index.ts";
import { ProcessGroup, type Tensor, autocast, buildInfo, defaultPrecision, distOptionsFromEnv, fromBytes, loadCheckpoint, manualSeed, noGrad, saveCheckpoint, tidy } from "../torch/index.ts";
import { makeDirs, writeFileAtomic } from "../util/atomic.ts";
import { readJsonl } from "../util/jsonl.ts";
import { Progress } from "../util/progress.ts";
import { segmentationLoss } from "./losses.ts";
import { CHECKPOINT_NAMES, disposeCheckpoint, networkFromCheckpoint, transferWeights, type TransferReport } from "./model.ts";
import { type Plan, type PlanOptions, checkTrainingMemory, definedOnly, describePlan, devicePlanOptions, makePlan } from "./plan.ts";

const LSMSEG_VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

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

/** Rewrites the log to exactly the given records (on resume: drops epochs after the checkpoint). */
function rewriteLog(path: string, records: EpochRecord[]): void {
  writeFileAtomic(path, Buffer.from(records.map((r) => JSON.stringify(r) + "\n").join("")));
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
      if (p && p.some((v, i) => v !== net.imgSize[i])) throw new Error(`--patch ${p.join("x")}: the --init UNETR was built for img_size ${net.imgSize.join("x")} (its position embeddings); leave --patch out or give that`);
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

/** autocast's device type for a device string. */
const deviceType = (device: string) => (device.startsWith("cuda") ? "cuda" : "cpu");

/** Pseudo-Dice per category on fixed validation patches (nnU-Net's per-epoch estimate), accumulated over patches. */
async function pseudoDice(net: SegNetwork, val: Case[], plan: Plan, o: FinetuneOptions, precision: "bf16" | "fp32"): Promise<Record<string, number>> {
  if (val.length === 0) return {};
  const perCase = o.valPatchesPerCase ?? 4;
  const bs = plan.batchSize;
  const batches = Math.ceil((val.length * perCase) / bs);
  const loader = new PatchLoader({ cases: val, patchSize: plan.patchSize, batchSize: bs, seed: (o.seed ?? 0) + 7919, augment: null, workers: 0, normalize: { percentiles: plan.normalization.percentiles } });
  const counts = new Map<string, { tp: number; fp: number; fn: number }>();
  const byId = new Map(val.map((c) => [c.id, c]));
  net.eval();
  try {
    for (let i = 0; i < batches; i++) {
      const batch = await loader.next();
      noGrad(() => tidy(() => {
        const device = o.device ?? "cpu";
        const { x, y } = toTensors(batch, [bs, ...plan.patchSize], device);
        const logits = autocast(() => net.forward(x) as Tensor, { enabled: precision === "bf16", device: deviceType(device) }).float();
        // voxels of IGNORE_LABEL (not labelled) are neither predicted foreground nor reference foreground here
        const pred = logits.argmax(1).gt(0).logicalAnd(y.ne(IGNORE_LABEL));
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

export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  // Data-parallel when started by the launcher (WORLD_SIZE > 1): rank 0 alone logs and writes.
  const distOpts = distOptionsFromEnv();
  const rank = distOpts?.rank ?? 0;
  const main = rank === 0;
  if (!main) o = { ...o, quiet: true, log: () => {} };
  const log = o.log ?? ((line: string) => { if (!o.quiet) process.stderr.write(line + "\n"); });
  const seed = o.seed ?? 0;
  const precision = o.precision ?? defaultPrecision(o.device ?? "cpu");
  const device = o.device ?? "cpu";
  const latestPath = join(o.out, CHECKPOINT_NAMES.latest);
  const logPath = join(o.out, "log.jsonl");
  if (!o.resume && existsSync(latestPath)) {
    throw new Error(`${o.out}: a run is already there (${CHECKPOINT_NAMES.latest}); pass --resume to continue it or choose another --out`);
  }
  if (o.resume && !existsSync(latestPath)) throw new Error(`${o.out}: nothing to resume (no ${CHECKPOINT_NAMES.latest})`);
  if (main) makeDirs(o.out);

  const cases = await annotatedCases(o.data, { checkShapes: true, labelMap: o.labelMap });
  const ignore = cases.some((c) => hasIgnore(c.labelMap));
  const foldId = o.fold ?? 0;
  const fold = foldCases(cases, foldId, { folds: o.folds ?? 5, seed });
  let plan: Plan;
  let state: RunState = { epoch: 0, step: 0, bestEma: -Infinity, ema: null };
  let records: EpochRecord[] = [];
  let net: SegNetwork;
  let opt: Optimizer;
  let transfer: TransferReport | undefined;

  if (o.resume) {
    const ckpt = loadCheckpoint(latestPath, { restoreRng: true });
    plan = ckpt.meta.extra!.plan as Plan;
    state = ckpt.meta.extra!.state as RunState;
    // JSON has no infinities or NaN: a run without validation (--fold all) stored them as null
    state.bestEma = typeof state.bestEma === "number" ? state.bestEma : -Infinity;
    state.ema = typeof state.ema === "number" ? state.ema : null;
    net = buildNetwork(plan.network);
    net.loadStateDict(ckpt.model);
    net.to(device);
    opt = makeOptimizer(net, o);
    if (ckpt.optimizer) opt.loadStateDict(ckpt.optimizer);
    disposeCheckpoint(ckpt.model, ckpt.optimizer?.params, ckpt.rng);
    records = readJsonl<EpochRecord>(logPath).filter((r) => r.epoch < state.epoch);
    if (main) rewriteLog(logPath, records);
    log(`resuming ${o.out} at epoch ${state.epoch} (step ${state.step})`);
  } else {
    manualSeed(seed);
    plan = await planFor(fold.train, o);
    if (device === "cpu") checkTrainingMemory(plan, totalmem());
    net = buildNetwork(plan.network);
    if (o.init) {
      transfer = transferWeights(net, o.init, o.initParts ?? "encoder");
      log(`init from ${transfer.source}: transferred ${transfer.transferred.length} tensors, skipped ${transfer.skipped.length}, ${transfer.untouched.length} left at their initialisation`);
      for (const s of transfer.skipped) log(`  skipped ${s.key}: ${s.reason}`);
      if (transfer.untouched.length) log(`  not transferred: ${summariseKeys(transfer.untouched)}`);
    }
    net.to(device);
    opt = makeOptimizer(net, o);
    if (main) {
      writeFileAtomic(join(o.out, "plan.json"), Buffer.from(JSON.stringify(plan, null, 2) + "\n"));
      writeFileAtomic(join(o.out, "config.json"), Buffer.from(JSON.stringify({ ...o, log: undefined, fold: foldId, worldSize: distOpts?.worldSize ?? 1, versions: { lsmseg: LSMSEG_VERSION, node: process.versions.node, libtorch: buildInfo().torchVersion }, train: fold.train.map((c) => c.id), val: fold.val.map((c) => c.id) }, null, 2) + "\n"));
      if (existsSync(logPath)) truncateSync(logPath, 0);
    }
  }
  const group = distOpts ? ProcessGroup.init({ ...distOpts, device }) : null;
  // Every rank starts from rank 0's weights (as DistributedDataParallel does at construction).
  if (group) group.broadcast([...net.stateDict().values()], 0);
  // gradients averaged over the ranks by all-reduces that start during backward (DDP's overlap)
  const sync = group?.gradSync(net.parameters()) ?? null;
  log(describePlan(plan));
  log(`data: ${fold.train.length} training and ${fold.val.length} validation cases (fold ${foldId}); ${precision} on ${device}; optimizer ${o.optimizer ?? "sgd"}`);
  if (cases[0]?.labelMap) log(`labels: ${Object.entries(cases[0].labelMap).map(([v, c]) => `${v} → ${c}`).join(", ")}; other values > 0 foreground${ignore ? "; ignored voxels count in no loss term" : ""}`);

  const epochs = o.epochs ?? 50;
  const stepsPerEpoch = o.stepsPerEpoch ?? 250;
  const totalSteps = epochs * stepsPerEpoch;
  const warmup = o.warmupSteps ?? (o.init ? Math.round(totalSteps * 0.1) : 0);
  const schedule = makeSchedule({ kind: "poly", baseLr: o.lr ?? ((o.optimizer ?? "sgd") === "sgd" ? 0.01 : 1e-3), totalSteps, warmupSteps: warmup });
  // old runs (before data parallelism) did not count global batches: one per step and rank
  state.globalBatches ??= state.step * (group?.worldSize ?? 1);
  const loader = new PatchLoader({
    // One core fewer than the machine has, at most 4: the training step itself needs the rest.
    cases: fold.train, patchSize: plan.patchSize, batchSize: plan.batchSize, seed, workers: o.workers ?? Math.max(1, Math.min(4, availableParallelism() - 1)),
    augment: o.augment === false ? null : DEFAULT_AUGMENT, startBatch: state.step, normalize: { percentiles: plan.normalization.percentiles },
    shard: { rank: group?.rank ?? 0, worldSize: group?.worldSize ?? 1, startGlobal: state.globalBatches },
  });
  // the encoder's parameters, frozen while state.step < freezeEncoderSteps (after the gradient hooks are in place:
  // a frozen parameter cannot take one)
  const encoderKeys = new Set(net.keyGroups().encoder);
  const encoderParams = net.namedParameters().filter(([k]) => encoderKeys.has(k)).map(([, p]) => p);
  const freezeSteps = o.freezeEncoderSteps ?? 0;
  let frozen = false;
  const setFrozen = (f: boolean) => {
    if (f === frozen) return;
    for (const p of encoderParams) p.requiresGrad = !f;
    frozen = f;
    log(f ? `encoder frozen for the first ${freezeSteps} steps (${encoderParams.length} tensors)` : `encoder unfrozen at step ${state.step}`);
  };
  const progress = new Progress("finetune", totalSteps, { unit: "steps", silent: o.quiet });
  progress.set(state.step);
  net.train();
  try {
    for (let epoch = state.epoch; epoch < epochs; epoch++) {
      const t0 = performance.now();
      const wait0 = loader.waitMs;
      let lossSum = 0;
      for (let k = 0; k < stepsPerEpoch; k++) {
        const batch = await loader.next();
        setFrozen(state.step < freezeSteps);
        opt.lr = schedule(state.step);
        const loss = tidy(() => {
          const { x, y } = toTensors(batch, [plan.batchSize, ...plan.patchSize], device);
          const outs = autocast(() => net.forward(x), { enabled: precision === "bf16", device: deviceType(device) });
          const l = segmentationLoss(outs, y, { clDiceWeight: o.clDiceWeight, ignore });
          opt.zeroGrad();
          l.backward();
          sync?.finish();
          clipGradNorm(net.parameters(), 12);
          opt.step();
          return l.item();
        });
        if (!Number.isFinite(loss)) throw new Error(`the loss became ${loss} at step ${state.step}; lower the learning rate (--lr) or use --precision fp32`);
        lossSum += loss;
        state.step++;
        state.globalBatches! += group?.worldSize ?? 1;
        progress.tick(1, `epoch ${epoch + 1}/${epochs} loss ${loss.toFixed(4)} lr ${opt.lr.toExponential(2)}`);
      }
      const trainSeconds = (performance.now() - t0) / 1000;
      const waitFraction = (loader.waitMs - wait0) / 1000 / trainSeconds;
      // Validation and checkpoints are rank 0's; the other ranks wait for it at the barrier.
      const pd = main ? await pseudoDice(net, fold.val, plan, o, precision) : {};
      const vals = Object.values(pd);
      const mean = vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN;
      state.ema = state.ema === null || !Number.isFinite(state.ema) ? mean : 0.9 * state.ema + 0.1 * mean;
      state.epoch = epoch + 1;
      const rec: EpochRecord = {
        epoch, step: state.step, lr: opt.lr, trainLoss: lossSum / stepsPerEpoch, pseudoDice: pd, pseudoDiceMean: mean,
        emaPseudoDice: state.ema, dataWaitFraction: waitFraction, secondsPerStep: trainSeconds / stepsPerEpoch, time: new Date().toISOString(),
      };
      const improved = Number.isFinite(state.ema) && state.ema > state.bestEma;
      if (improved) state.bestEma = state.ema;
      const extra = { plan, state, fold: foldId, epochs, stepsPerEpoch };
      const save = (name: string) => saveCheckpoint(join(o.out, name), { step: state.step, model: net.stateDict(), optimizer: opt.stateDict(), network: plan.network as unknown as Record<string, unknown>, extra, overwrite: true });
      if (main) {
        if (improved) save(CHECKPOINT_NAMES.best);
        save(CHECKPOINT_NAMES.latest);
        appendFileSync(logPath, JSON.stringify(rec) + "\n");
      }
      group?.barrier(VALIDATION_WAIT_MS);
      records.push(rec);
      const pdText = Object.entries(pd).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ");
      log(`epoch ${epoch + 1}/${epochs}: loss ${rec.trainLoss.toFixed(4)}, pseudo-Dice ${pdText || "—"} (EMA ${state.ema.toFixed(3)}${improved ? ", best" : ""}), ${rec.secondsPerStep.toFixed(2)} s/step, waiting for data ${(waitFraction * 100).toFixed(1)} %`);
    }
  } finally {
    await loader.close();
    sync?.dispose();
    for (const p of encoderParams) p.requiresGrad = true;
  }
  progress.finish();
  const finalPath = join(o.out, CHECKPOINT_NAMES.final);
  group?.destroy();
  if (main) saveCheckpoint(finalPath, { step: state.step, model: net.stateDict(), network: plan.network as unknown as Record<string, unknown>, extra: { plan, state, fold: foldId }, rng: false, overwrite: true });
  net.dispose();
  return { out: o.out, plan, epochs: records, transfer, bestEma: state.bestEma };
}

function makeOptimizer(net: SegNetwork, o: FinetuneOptions): Optimizer {
  const params = net.parameters();
  if ((o.optimizer ?? "sgd") === "sgd") return new SGD(params, { lr: o.lr ?? 0.01, momentum: 0.99, nesterov: true, weightDecay: o.weightDecay ?? 3e-5 });
  return new AdamW(params, { lr: o.lr ?? 1e-3, weightDecay: o.weightDecay ?? 0.01 });
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

