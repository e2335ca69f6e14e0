// Self-supervised pretraining over an unannotated dataset: index the files (cached), plan the same network
// that fine-tuning builds (makePlan with the same defaults), stream random crops from worker threads (per-volume
// normalisation, bounded cache, balanced by structure type on request), train one SSL method with AdamW and a
// warm-up + cosine schedule under bf16 autocast where the CPU has it, and write checkpoints whose metadata is the
// adaptation plan fine-tuning needs (network config, patch, spacing, normalisation, method, key groups).
// Batch k depends only on (seed, k) and the method's random draws on (seed, step), so a run killed at any point
// and resumed from checkpoint_latest ends with the same weights as one that never stopped.
// Data-parallel when started by the launcher (WORLD_SIZE > 1, `lsmseg pretrain --nproc N`): rank 0 indexes the
// data and alone writes logs and checkpoints; every rank starts from rank 0's weights, reads its own shard of the
// global batches (local batch k = global batch k·N + rank) and draws its own masks (seed, step, rank); gradients
// are averaged over the ranks before the optimizer step, so the effective batch is N × --batch. A run resumed with
// another N goes on from the number of global batches consumed.
import { totalmem } from "node:os";
import { PatchLoader } from "../data/loader.ts";
import { stream } from "../data/rng.ts";
import type { Module } from "../nn/module.ts";
import { type SegNetwork, buildNetwork } from "../nn/networks.ts";
import { AdamW, makeSchedule } from "../optim/index.ts";
import { CHECKPOINT_NAMES, disposeCheckpoint, loadWeights } from "../seg/model.ts";
import { type Plan, type PlanOptions, checkTrainingMemory, definedOnly, describePlan, devicePlanOptions, makePlan } from "../seg/plan.ts";
import { type DistOptions, type Tensor, defaultPrecision, fromBytes, loadCheckpoint, manualSeed, setRngState, tensor, tidy } from "../torch/index.ts";
import {
  type Interval, type Run, type StepParts, appendLog, openRun, rankOptions, resumeLog, saveRunCheckpoint, startLog, syncRanks, trainLoop,
  withPrecision, writeRunJson,
} from "../train/loop.ts";
import { buildIndex, defaultIndexPath, describeIndex } from "./data_index.ts";
import { type SslBatch, type SslMethod, type SslObjective, methodOptions, sslMethod, trainedKeys } from "./method.ts";

/** Pretraining's defaults, in one place (the CLI's help prints them from here). */
export const PRETRAIN_DEFAULTS = {
  steps: 1000,
  /** AdamW, with a linear warm-up over this fraction of the run (at most maxWarmupSteps), then cosine decay. */
  lr: 1e-3,
  weightDecay: 0.01,
  warmupFraction: 0.05,
  maxWarmupSteps: 500,
  sampling: "uniform",
  /** The loader's caches of decoded volumes, all workers together. */
  cacheBytes: 2 ** 31,
  /** The workers the cache budget is split over when --workers is not given (the loader's default count). */
  cacheWorkers: 4,
  /** checkpoint_latest every this many steps, and at least every saveEveryMs. */
  saveEvery: 200,
  saveEveryMs: 5 * 60_000,
  logEvery: 10,
  seed: 0,
} as const;

const D = PRETRAIN_DEFAULTS;

export interface PretrainOptions {
  data: string;
  out: string;
  method: string;
  /** Settings of the method (e.g. { maskRatio: 0.6 }); see the method's defaults. */
  methodOptions?: Record<string, number>;
  steps?: number;
  resume?: boolean;
  /** Planning, as fine-tuning takes it (arch, baseFeatures, patchSize, batchSize, ...). */
  plan?: PlanOptions;
  /** "balanced": every structure type equally often, then its volumes (default "uniform": every volume equally often). */
  sampling?: "uniform" | "balanced";
  precision?: "bf16" | "fp32";
  /** "cpu" (default) or "cuda", "cuda:N" with a CUDA libtorch (LIBTORCH). */
  device?: string;
  workers?: number;
  /** Total byte budget of the loader's caches of decoded volumes (split over the workers; default 2 GiB). */
  cacheBytes?: number;
  seed?: number;
  lr?: number;
  weightDecay?: number;
  warmupSteps?: number;
  /** Save checkpoint_latest every this many steps (default 200), and at least every 5 minutes. */
  saveEvery?: number;
  /** One log.jsonl record per this many steps (default 10). */
  logEvery?: number;
  /** Where the dataset index is cached (default: in the data folder when writable, else in the run). */
  indexPath?: string;
  quiet?: boolean;
  log?: (line: string) => void;
  /** The process group of a data-parallel run (the CLI reads it from the launcher's environment). */
  dist?: DistOptions | null;
}

export interface PretrainRecord {
  step: number;
  loss: number;
  lr: number;
  dataWaitFraction: number;
  secondsPerStep: number;
  time: string;
}

export interface PretrainResult {
  out: string;
  checkpoint: string;
  plan: Plan;
  method: string;
  records: PretrainRecord[];
  /** Mean loss over the first and the last logged intervals. */
  firstLoss: number;
  lastLoss: number;
}

/** What a pretraining checkpoint carries for fine-tuning (meta.extra); meta.network holds the network config. */
export interface AdaptationPlan {
  kind: "lsmseg-pretraining";
  method: string;
  methodOptions: Record<string, number>;
  patchSize: [number, number, number];
  spacingUm: [number, number, number];
  normalization: Plan["normalization"];
  plan: Omit<Plan, "network">;
  /** The network's keys by part; `pretrained` lists the ones this checkpoint holds (the rest are at initialisation). */
  keyGroups: { stem: string[]; encoder: string[]; decoder: string[]; pretrained: string[] };
  /** globalBatches: batches consumed over all ranks (absent in runs before data parallelism: = step). */
  state: { step: number; globalBatches?: number };
  run: { seed: number; steps: number; sampling: string; batchSize: number; lr: number; warmupSteps: number; worldSize?: number };
}

type LoaderCases = ConstructorParameters<typeof PatchLoader>[0]["cases"];

/** How long ranks > 0 wait for rank 0 to index the data. */
const INDEX_WAIT_MS = 6 * 3600_000;

/** The parameters a run optimises, in a fixed order: the trained part of the network, then the method's heads. */
function trainedParameters(net: SegNetwork, keys: Set<string>, heads: Module): Tensor[] {
  return [...net.namedParameters().filter(([k]) => keys.has(k)).map(([, p]) => p), ...heads.parameters()];
}

/** What goes into a checkpoint: the trained keys of the network and the heads under "ssl.". */
function checkpointModel(net: SegNetwork, keys: Set<string>, heads: Module): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, t] of net.stateDict()) if (keys.has(k)) out.set(k, t);
  for (const [k, t] of heads.stateDict()) out.set(`ssl.${k}`, t);
  return out;
}

/** The unannotated volumes: rank 0 builds (or refreshes) the cached index; the others then read it. */
async function indexData(run: Run, o: PretrainOptions): Promise<{ cases: LoaderCases; shapes: number[][]; spacings: number[][] }> {
  const t0 = performance.now();
  const { group, main, log } = run;
  if (group && !main) group.barrier(INDEX_WAIT_MS);
  const onProgress = (d: number, n: number) => { if (d % 500 === 0) log(`indexing ${d}/${n}`); };
  const idx = await buildIndex(o.data, o.indexPath ?? defaultIndexPath(o.data, o.out), { onProgress });
  if (group && main) group.barrier(INDEX_WAIT_MS);
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  log(`data: ${describeIndex(idx.index)}; index ${idx.path} (${idx.rebuilt} read, ${idx.reused} cached, ${seconds} s)`);
  const { entries } = idx.index;
  // the loader (and each of its workers) gets the cases only, not the statistics
  const cases = entries.map(({ id, imagePath, structure, category, density }) => ({ id, imagePath, structure, category, density }));
  return { cases, shapes: entries.map((e) => e.shape), spacings: entries.map((e) => e.spacingUm) };
}

/** The plan and the counters: a resumed run's from its checkpoint (kept open for the weights), a new one's made. */
function planRun(run: Run, o: PretrainOptions, method: SslMethod, shapes: number[][], spacings: number[][], precision: "bf16" | "fp32") {
  if (o.resume) {
    const ckpt = loadCheckpoint(run.latestPath);
    const extra = ckpt.meta.extra as unknown as AdaptationPlan;
    if (extra.method !== method.name) throw new Error(`${run.latestPath}: a '${extra.method}' run, not '${method.name}'`);
    const plan = { ...extra.plan, network: ckpt.meta.network } as unknown as Plan;
    return { plan, ckpt, at: { step: extra.state.step, globalBatches: extra.state.globalBatches ?? extra.state.step } };
  }
  // on a GPU the patch is planned from its memory at the method's batch size
  const batchSize = o.plan?.batchSize ?? method.batchSize;
  const gpu = devicePlanOptions(o.device, precision);
  if (gpu.note) run.log(gpu.note);
  const plan = makePlan(shapes, spacings, { ...gpu.options, ...definedOnly(o.plan), batchSize, deepSupervision: false });
  if ((o.device ?? "cpu") === "cpu") checkTrainingMemory(plan, totalmem());
  return { plan, ckpt: null, at: { step: 0, globalBatches: 0 } };
}

/** The network, the method's objective and heads, and AdamW over the trained parameters (seeded). */
function buildModel(o: PretrainOptions, plan: Plan, method: SslMethod, mopts: Record<string, number>) {
  manualSeed(o.seed ?? D.seed);
  const net = buildNetwork(plan.network);
  const objective: SslObjective = method.create(net, mopts);
  const device = o.device ?? "cpu";
  net.to(device);
  objective.heads.to(device);
  const keys = new Set(trainedKeys(net, method.trains));
  const params = trainedParameters(net, keys, objective.heads);
  const opt = new AdamW(params, { lr: o.lr ?? D.lr, weightDecay: o.weightDecay ?? D.weightDecay });
  return { net, objective, keys, params, opt };
}

type Model = ReturnType<typeof buildModel>;

/** A resumed run takes the checkpoint's weights, optimizer and RNG and its log up to there; a new one starts its log. */
function restoreOrStart(run: Run, o: PretrainOptions, m: Model, ckpt: ReturnType<typeof loadCheckpoint> | null, step: number, config: object) {
  if (!ckpt) {
    startLog(run);
    writeRunJson(run, "config.json", config);
    return [];
  }
  try {
    loadWeights(run.latestPath, ckpt.model, m.net, m.objective.heads);
    if (ckpt.optimizer) m.opt.loadStateDict(ckpt.optimizer);
    if (ckpt.rng) setRngState(ckpt.rng);
  } finally {
    disposeCheckpoint(ckpt.model, ckpt.optimizer?.params, ckpt.rng);
  }
  const records = resumeLog<PretrainRecord>(run, (r) => r.step <= step);
  run.log(`resuming ${o.out} at step ${step}`);
  return records;
}

/** The run's settings as the log's first lines give them. */
function describeRun(o: PretrainOptions, run: Run, m: Model, method: SslMethod, plan: Plan, precision: string, warmupSteps: number): string {
  const steps = o.steps ?? D.steps;
  const ranks = run.group ? `; ${run.world} ranks, effective batch ${run.world * plan.batchSize}` : "";
  return `training ${m.params.length} tensors (${m.keys.size} network keys: ${method.trains.join(" + ")}, plus ssl.*); ${precision}; ` +
    `AdamW lr ${o.lr ?? D.lr}, warm-up ${warmupSteps}, cosine to ${steps} steps; sampling ${o.sampling ?? D.sampling}${ranks}`;
}

function sslLoader(o: PretrainOptions, run: Run, method: SslMethod, plan: Plan, cases: LoaderCases, at: { step: number; globalBatches: number }) {
  const workers = o.workers ?? undefined;
  return new PatchLoader({
    cases, patchSize: plan.patchSize, batchSize: plan.batchSize, seed: o.seed ?? D.seed, workers, startBatch: at.step,
    augment: method.augment, views: method.views, sampling: o.sampling ?? D.sampling,
    cacheBytes: Math.floor((o.cacheBytes ?? D.cacheBytes) / Math.max(1, workers ?? D.cacheWorkers)),
    normalize: { percentiles: plan.normalization.percentiles },
    shard: { rank: run.group?.rank ?? 0, worldSize: run.world, startGlobal: at.globalBatches },
  });
}

/** What a pretraining checkpoint carries for fine-tuning at step `at.step`. */
function adaptationPlan(o: PretrainOptions, run: Run, m: Model, method: SslMethod, mopts: Record<string, number>, plan: Plan,
  warmupSteps: number, at: { step: number; globalBatches: number }): AdaptationPlan {
  const { network: _n, ...rest } = plan;
  const g = m.net.keyGroups();
  return {
    kind: "lsmseg-pretraining", method: method.name, methodOptions: mopts, patchSize: plan.patchSize, spacingUm: plan.spacingUm,
    normalization: plan.normalization, plan: rest, keyGroups: { ...g, pretrained: [...m.keys] },
    state: { step: at.step, globalBatches: at.globalBatches },
    run: {
      seed: o.seed ?? D.seed, steps: o.steps ?? D.steps, sampling: o.sampling ?? D.sampling, batchSize: plan.batchSize, lr: o.lr ?? D.lr,
      warmupSteps, worldSize: run.world,
    },
  };
}

/** The SSL loss of one batch: the method's objective on the images (and the second view), its draws by (seed, step, rank). */
function sslLoss(o: PretrainOptions, run: Run, m: Model, method: SslMethod, plan: Plan, precision: "bf16" | "fp32") {
  const seed = o.seed ?? D.seed;
  const device = o.device ?? "cpu";
  const [pd, ph, pw] = plan.patchSize;
  const B = plan.batchSize;
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const onDevice = (t: Tensor) => (device === "cpu" ? t : t.to(device));
  return (batch: Awaited<ReturnType<PatchLoader["next"]>>, step: number): Tensor => {
    const rng = run.group ? stream(seed, "ssl", method.name, step, "rank", run.group.rank) : stream(seed, "ssl", method.name, step);
    const sb: SslBatch = {
      images: onDevice(fromBytes(bytes(batch.images), [B, 1, pd, ph, pw], "float32")),
      images2: batch.images2 ? onDevice(fromBytes(bytes(batch.images2), [B, 1, pd, ph, pw], "float32")) : null,
      host: batch.images, shape: [B, pd, ph, pw],
    };
    return withPrecision(precision, device, () => m.objective.loss(sb, rng)).float();
  };
}

/** A log record for an interval: the loss averaged over its steps and over the ranks. */
function intervalRecord(run: Run, i: Interval, step: number, lr: number): PretrainRecord {
  let lossSum = i.lossSum;
  const group = run.group;
  if (group) lossSum = tidy(() => { const t = tensor([lossSum]); group.allReduce([t]); return t.item() / run.world; });
  return { step, loss: lossSum / i.steps, lr, dataWaitFraction: i.waitFraction, secondsPerStep: i.seconds / i.steps, time: new Date().toISOString() };
}

/** Mean loss over the first and the last logged intervals, and the fraction of step time spent waiting for data. */
function summarise(records: PretrainRecord[]): { firstLoss: number; lastLoss: number; wait: number } {
  const n = Math.max(1, Math.min(3, Math.floor(records.length / 2)));
  const mean = (rs: PretrainRecord[]) => rs.reduce((s, r) => s + r.loss, 0) / Math.max(1, rs.length);
  const secondsWaiting = records.reduce((s, r) => s + r.dataWaitFraction * r.secondsPerStep, 0);
  const wait = records.length ? secondsWaiting / records.reduce((s, r) => s + r.secondsPerStep, 0) : 0;
  return { firstLoss: mean(records.slice(0, n)), lastLoss: mean(records.slice(-n)), wait };
}

export async function pretrain(options: PretrainOptions): Promise<PretrainResult> {
  const o = rankOptions(options);
  const method: SslMethod = await sslMethod(o.method);
  const mopts = methodOptions(method, o.methodOptions);
  const steps = o.steps ?? D.steps;
  const precision = o.precision ?? defaultPrecision(o.device ?? "cpu");
  const run = openRun(o);
  const { cases, shapes, spacings } = await indexData(run, o);
  const { plan, ckpt, at } = planRun(run, o, method, shapes, spacings, precision);
  const m = buildModel(o, plan, method, mopts);
  const warmupSteps = o.warmupSteps ?? Math.min(D.maxWarmupSteps, Math.round(steps * D.warmupFraction));
  const config = { ...o, log: undefined, dist: undefined, methodOptions: mopts, plan, worldSize: run.world };
  const records: PretrainRecord[] = restoreOrStart(run, o, m, ckpt, at.step, config);
  // a resumed run's optimizer state is the same on every rank, read from the same checkpoint
  const sync = syncRanks(run, m.params, m.params);
  run.log(describePlan(plan));
  run.log(`method ${method.name}: ${method.describe}; options ${JSON.stringify(mopts)}`);
  run.log(describeRun(o, run, m, method, plan, precision, warmupSteps));
  const save = (name: string, withOptimizer: boolean) => saveRunCheckpoint(run, name, () => ({
    step: at.step, model: checkpointModel(m.net, m.keys, m.objective.heads), optimizer: withOptimizer ? m.opt.stateDict() : undefined,
    network: plan.network as unknown as Record<string, unknown>,
    extra: adaptationPlan(o, run, m, method, mopts, plan, warmupSteps, at) as unknown as Record<string, unknown>, rng: withOptimizer,
  }));
  const logEvery = Math.max(1, o.logEvery ?? D.logEvery);
  const step: StepParts = { opt: m.opt, params: m.params, sync };
  m.net.train();
  await trainLoop({
    run, loader: sslLoader(o, run, method, plan, cases, at), step, at, steps: Math.max(0, steps - at.step),
    progress: { label: `pretrain ${method.name}`, total: steps, quiet: o.quiet },
    schedule: makeSchedule({ kind: "cosine", baseLr: o.lr ?? D.lr, totalSteps: steps, warmupSteps }),
    loss: sslLoss(o, run, m, method, plan, precision),
    tick: (loss, lr) => `loss ${loss.toFixed(4)} lr ${lr.toExponential(2)}`,
    intervalEnds: (_done, s) => s % logEvery === 0 || s === steps,
    onInterval: (i) => { const rec = intervalRecord(run, i, at.step, m.opt.lr); appendLog(run, rec); records.push(rec); },
    checkpoint: { every: Math.max(1, o.saveEvery ?? D.saveEvery), everyMs: D.saveEveryMs, save: () => save(CHECKPOINT_NAMES.latest, true) },
  });
  save(CHECKPOINT_NAMES.latest, true);
  save(CHECKPOINT_NAMES.final, false);
  run.group?.barrier();
  run.group?.destroy();
  m.net.dispose();
  m.objective.heads.dispose();
  const { firstLoss, lastLoss, wait } = summarise(records);
  const waiting = `waiting for data ${(wait * 100).toFixed(1)} % of step time`;
  run.log(`${method.name}: loss ${firstLoss.toFixed(4)} → ${lastLoss.toFixed(4)} over ${at.step} steps; ${waiting}; ${run.finalPath}`);
  return { out: o.out, checkpoint: run.finalPath, plan, method: method.name, records, firstLoss, lastLoss };
}
