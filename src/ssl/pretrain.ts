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
import { appendFileSync, existsSync } from "node:fs";
import { totalmem } from "node:os";
import { join } from "node:path";
import { PatchLoader } from "../data/loader.ts";
import { stream } from "../data/rng.ts";
import type { Module } from "../nn/module.ts";
import { type SegNetwork, buildNetwork } from "../nn/networks.ts";
import { AdamW, clipGradNorm, makeSchedule } from "../optim/index.ts";
import { CHECKPOINT_NAMES, disposeCheckpoint } from "../seg/model.ts";
import { type Plan, type PlanOptions, checkTrainingMemory, definedOnly, describePlan, devicePlanOptions, makePlan } from "../seg/plan.ts";
import { ProcessGroup, type Tensor, autocast, defaultPrecision, distOptionsFromEnv, fromBytes, loadCheckpoint, manualSeed, saveCheckpoint, setRngState, tensor, tidy } from "../torch/index.ts";
import { makeDirs, writeFileAtomic } from "../util/atomic.ts";
import { Progress } from "../util/progress.ts";
import { buildIndex, defaultIndexPath, describeIndex } from "./data_index.ts";
import { type SslBatch, type SslMethod, type SslObjective, methodOptions, sslMethod, trainedKeys } from "./method.ts";
import { readJsonl } from "../util/jsonl.ts";

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

const SAVE_EVERY_MS = 5 * 60_000;
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

function loadModel(file: string, model: Map<string, Tensor>, net: SegNetwork, heads: Module): void {
  const own = new Map<string, Tensor>(), ssl = new Map<string, Tensor>();
  for (const [k, t] of model) (k.startsWith("ssl.") ? ssl : own).set(k.startsWith("ssl.") ? k.slice(4) : k, t);
  const r = net.loadStateDict(own, { strict: false });
  if (r.unexpected.length || r.mismatched.length) throw new Error(`${file}: the checkpoint does not fit the planned network (${[...r.unexpected, ...r.mismatched.map((m) => m.key)].slice(0, 5).join(", ")} …)`);
  heads.loadStateDict(ssl, { strict: true });
}

export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  const distOpts = distOptionsFromEnv();
  const main = (distOpts?.rank ?? 0) === 0;
  if (!main) o = { ...o, quiet: true, log: () => {} };
  const log = o.log ?? ((line: string) => { if (!o.quiet) process.stderr.write(line + "\n"); });
  const method: SslMethod = await sslMethod(o.method);
  const mopts = methodOptions(method, o.methodOptions);
  const seed = o.seed ?? 0;
  const steps = o.steps ?? 1000;
  const precision = o.precision ?? defaultPrecision(o.device ?? "cpu");
  const latestPath = join(o.out, CHECKPOINT_NAMES.latest);
  const finalPath = join(o.out, CHECKPOINT_NAMES.final);
  const logPath = join(o.out, "log.jsonl");
  if (!o.resume && existsSync(latestPath)) throw new Error(`${o.out}: a run is already there (${CHECKPOINT_NAMES.latest}); pass --resume to continue it or choose another --out`);
  if (o.resume && !existsSync(latestPath)) throw new Error(`${o.out}: nothing to resume (no ${CHECKPOINT_NAMES.latest})`);
  if (main) makeDirs(o.out);

  const group = distOpts ? ProcessGroup.init({ ...distOpts, device: o.device ?? "cpu" }) : null;
  const world = group?.worldSize ?? 1;
  const t0 = performance.now();
  // rank 0 builds (or refreshes) the cached index; the others then read it
  if (group && !main) group.barrier(INDEX_WAIT_MS);
  const idx = await buildIndex(o.data, o.indexPath ?? defaultIndexPath(o.data, o.out), { onProgress: (d, n) => { if (d % 500 === 0) log(`indexing ${d}/${n}`); } });
  if (group && main) group.barrier(INDEX_WAIT_MS);
  log(`data: ${describeIndex(idx.index)}; index ${idx.path} (${idx.rebuilt} read, ${idx.reused} cached, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  // the loader (and each of its workers) gets the cases only, not the statistics
  const cases = idx.index.entries.map(({ id, imagePath, structure, category, density }) => ({ id, imagePath, structure, category, density }));
  const shapes = idx.index.entries.map((e) => e.shape), spacings = idx.index.entries.map((e) => e.spacingUm);

  let plan: Plan;
  let step = 0, globalBatches = 0;
  let ckpt: ReturnType<typeof loadCheckpoint> | null = null;
  if (o.resume) {
    ckpt = loadCheckpoint(latestPath);
    const extra = ckpt.meta.extra as unknown as AdaptationPlan;
    if (extra.method !== method.name) throw new Error(`${latestPath}: a '${extra.method}' run, not '${method.name}'`);
    plan = { ...extra.plan, network: ckpt.meta.network } as unknown as Plan;
    step = extra.state.step;
    globalBatches = extra.state.globalBatches ?? step;
  } else {
    // on a GPU the patch is planned from its memory at the method's batch size
    const batchSize = o.plan?.batchSize ?? method.batchSize;
    const gpu = devicePlanOptions(o.device, precision);
    if (gpu.note) log(gpu.note);
    plan = makePlan(shapes, spacings, { ...gpu.options, ...definedOnly(o.plan), batchSize, deepSupervision: false });
    if ((o.device ?? "cpu") === "cpu") checkTrainingMemory(plan, totalmem());
  }
  manualSeed(seed);
  const net = buildNetwork(plan.network);
  const objective: SslObjective = method.create(net, mopts);
  const device = o.device ?? "cpu";
  net.to(device);
  objective.heads.to(device);
  const keys = new Set(trainedKeys(net, method.trains));
  const params = trainedParameters(net, keys, objective.heads);
  const lr = o.lr ?? 1e-3;
  const warmupSteps = o.warmupSteps ?? Math.min(500, Math.round(steps * 0.05));
  const opt = new AdamW(params, { lr, weightDecay: o.weightDecay ?? 0.01 });
  let records: PretrainRecord[] = [];
  if (ckpt) {
    try {
      loadModel(latestPath, ckpt.model, net, objective.heads);
      if (ckpt.optimizer) opt.loadStateDict(ckpt.optimizer);
      if (ckpt.rng) setRngState(ckpt.rng);
    } finally {
      disposeCheckpoint(ckpt.model, ckpt.optimizer?.params, ckpt.rng);
    }
    records = readJsonl<PretrainRecord>(logPath).filter((r) => r.step <= step);
    if (main) writeFileAtomic(logPath, Buffer.from(records.map((r) => JSON.stringify(r) + "\n").join("")));
    log(`resuming ${o.out} at step ${step}`);
  } else if (main) {
    writeFileAtomic(logPath, Buffer.alloc(0));
    writeFileAtomic(join(o.out, "config.json"), Buffer.from(JSON.stringify({ ...o, log: undefined, methodOptions: mopts, plan, worldSize: world }, null, 2) + "\n"));
  }
  // every rank starts from rank 0's weights (as DistributedDataParallel does); a resumed run's optimizer
  // state is the same on every rank, read from the same checkpoint
  if (group) group.broadcast(params, 0);
  // gradients averaged over the ranks by all-reduces that start during backward (DDP's overlap)
  const sync = group?.gradSync(params) ?? null;
  log(describePlan(plan));
  log(`method ${method.name}: ${method.describe}; options ${JSON.stringify(mopts)}`);
  log(`training ${params.length} tensors (${keys.size} network keys: ${method.trains.join(" + ")}, plus ssl.*); ${precision}; AdamW lr ${lr}, warm-up ${warmupSteps}, cosine to ${steps} steps; sampling ${o.sampling ?? "uniform"}${group ? `; ${world} ranks, effective batch ${world * plan.batchSize}` : ""}`);

  const schedule = makeSchedule({ kind: "cosine", baseLr: lr, totalSteps: steps, warmupSteps });
  const workers = o.workers ?? undefined;
  const loader = new PatchLoader({
    cases, patchSize: plan.patchSize, batchSize: plan.batchSize, seed, workers, startBatch: step,
    augment: method.augment, views: method.views, sampling: o.sampling ?? "uniform",
    cacheBytes: Math.floor((o.cacheBytes ?? 2 ** 31) / Math.max(1, workers ?? 4)),
    normalize: { percentiles: plan.normalization.percentiles },
    shard: { rank: group?.rank ?? 0, worldSize: world, startGlobal: globalBatches },
  });
  const [pd, ph, pw] = plan.patchSize;
  const B = plan.batchSize;
  const extraFor = (s: number): AdaptationPlan => {
    const { network: _n, ...rest } = plan;
    const g = net.keyGroups();
    return {
      kind: "lsmseg-pretraining", method: method.name, methodOptions: mopts, patchSize: plan.patchSize, spacingUm: plan.spacingUm,
      normalization: plan.normalization, plan: rest, keyGroups: { ...g, pretrained: [...keys] }, state: { step: s, globalBatches },
      run: { seed, steps, sampling: o.sampling ?? "uniform", batchSize: B, lr, warmupSteps, worldSize: world },
    };
  };
  const save = (path: string, withOptimizer: boolean) => main && saveCheckpoint(path, {
    step, model: checkpointModel(net, keys, objective.heads), optimizer: withOptimizer ? opt.stateDict() : undefined,
    network: plan.network as unknown as Record<string, unknown>, extra: extraFor(step) as unknown as Record<string, unknown>, overwrite: true, rng: withOptimizer,
  });
  const logEvery = Math.max(1, o.logEvery ?? 10);
  const saveEvery = Math.max(1, o.saveEvery ?? 200);
  const progress = new Progress(`pretrain ${method.name}`, steps, { unit: "steps", silent: o.quiet });
  progress.set(step);
  net.train();
  let lastSave = performance.now();
  let lossSum = 0, lossCount = 0, intervalStart = performance.now(), waitStart = loader.waitMs;
  try {
    while (step < steps) {
      const batch = await loader.next();
      opt.lr = schedule(step);
      const rng = group ? stream(seed, "ssl", method.name, step, "rank", group.rank) : stream(seed, "ssl", method.name, step);
      const loss = tidy(() => {
        const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
        const onDevice = (t: Tensor) => (device === "cpu" ? t : t.to(device));
        const sb: SslBatch = {
          images: onDevice(fromBytes(bytes(batch.images), [B, 1, pd, ph, pw], "float32")),
          images2: batch.images2 ? onDevice(fromBytes(bytes(batch.images2), [B, 1, pd, ph, pw], "float32")) : null,
          host: batch.images, shape: [B, pd, ph, pw],
        };
        const l = autocast(() => objective.loss(sb, rng), { enabled: precision === "bf16", device: device.startsWith("cuda") ? "cuda" : "cpu" }).float();
        opt.zeroGrad();
        l.backward();
        sync?.finish();
        clipGradNorm(params, 12);
        opt.step();
        return l.item();
      });
      if (!Number.isFinite(loss)) throw new Error(`the loss became ${loss} at step ${step}; lower the learning rate (--lr) or use --precision fp32`);
      step++;
      globalBatches += world;
      lossSum += loss;
      lossCount++;
      progress.tick(1, `loss ${loss.toFixed(4)} lr ${opt.lr.toExponential(2)}`);
      if (step % logEvery === 0 || step === steps) {
        const seconds = (performance.now() - intervalStart) / 1000;
        if (group) lossSum = tidy(() => { const t = tensor([lossSum]); group.allReduce([t]); return t.item() / world; });
        const rec: PretrainRecord = {
          step, loss: lossSum / lossCount, lr: opt.lr, dataWaitFraction: (loader.waitMs - waitStart) / 1000 / seconds,
          secondsPerStep: seconds / lossCount, time: new Date().toISOString(),
        };
        if (main) appendFileSync(logPath, JSON.stringify(rec) + "\n");
        records.push(rec);
        lossSum = 0; lossCount = 0; intervalStart = performance.now(); waitStart = loader.waitMs;
      }
      if (step % saveEvery === 0 || performance.now() - lastSave > SAVE_EVERY_MS) {
        save(latestPath, true);
        lastSave = performance.now();
      }
    }
  } finally {
    await loader.close();
    sync?.dispose();
  }
  progress.finish();
  save(latestPath, true);
  save(finalPath, false);
  group?.barrier();
  group?.destroy();
  net.dispose();
  objective.heads.dispose();
  const n = Math.max(1, Math.min(3, Math.floor(records.length / 2)));
  const mean = (rs: PretrainRecord[]) => rs.reduce((s, r) => s + r.loss, 0) / Math.max(1, rs.length);
  const firstLoss = mean(records.slice(0, n)), lastLoss = mean(records.slice(-n));
  const wait = records.length ? records.reduce((s, r) => s + r.dataWaitFraction * r.secondsPerStep, 0) / records.reduce((s, r) => s + r.secondsPerStep, 0) : 0;
  log(`${method.name}: loss ${firstLoss.toFixed(4)} → ${lastLoss.toFixed(4)} over ${step} steps; waiting for data ${(wait * 100).toFixed(1)} % of step time; ${finalPath}`);
  return { out: o.out, checkpoint: finalPath, plan, method: method.name, records, firstLoss, lastLoss };
}
