// PatchLoader: training batches of patches, made in worker threads and delivered in order k = 0, 1, 2, ….
// Batch k's content depends only on (seed, k) and the cases: the case of each sample is drawn from the stream
// (seed, k, "pick", i) and everything else from (seed, k, "sample", i), so the number of workers, which worker ran
// a sample, timing, and `startBatch` (where a resumed run begins) change nothing.
// Each worker keeps its own LRU cache of decoded, normalised volumes; a sample goes to the worker that owns its
// case (case index mod workers) unless that worker is well behind the others, so the workers' caches together
// hold each case about once.
import { cpus } from "node:os";
import type { Worker } from "node:worker_threads";
import { stopWorker, tsWorker } from "../util/workers.ts";
import type { Vec3 } from "../io/index.ts";
import type { AugmentConfig } from "./augment.ts";
import type { Case } from "./dataset.ts";
import type { NormalizeOptions } from "./normalize.ts";
import { CaseCache, type ProducedSample, type ProducerSettings, type SampleTask, produceSample } from "./producer.ts";
import { stream } from "./rng.ts";
import { forcedForeground } from "./sampling.ts";
import type { WorkerInit, WorkerReply, WorkerRequest } from "./worker.ts";

export { loadCase, type LoadedCase } from "./producer.ts";

export interface PatchLoaderOptions {
  cases: Case[];
  /** [D, H, W] of every patch. */
  patchSize: Vec3;
  batchSize: number;
  seed: number;
  /** Fraction of each batch centred on foreground (nnU-Net: 1/3); ignored for cases without labels. */
  oversampleForeground?: number;
  /** Augmentation, or null for plain crops (default null). */
  augment?: AugmentConfig | null;
  /** "uniform": every case equally likely; "balanced": every structure type equally likely, then its cases. */
  sampling?: "uniform" | "balanced";
  /** 2 adds `images2`: the same crops augmented independently (contrastive pretraining). */
  views?: 1 | 2;
  /** Worker threads (default min(4, cores)); 0 makes every batch in the calling thread when next() asks. */
  workers?: number;
  /** Batches made ahead of the one next() returns (default 2·workers). */
  prefetch?: number;
  /** Byte budget of each worker's cache of decoded volumes (default 1 GiB). */
  cacheBytes?: number;
  /** Index of the first batch (a resumed run passes the number of batches it had consumed). */
  startBatch?: number;
  normalize?: NormalizeOptions;
  /**
   * Data-parallel sharding: this loader's batch k holds the content of global batch k·worldSize + rank,
   * so the ranks of a run see disjoint batches and together the same sequence a single process would.
   * `startGlobal` (a run resumed with another number of processes) is the global batch that local batch
   * `startBatch` maps to: batch k is then startGlobal + (k − startBatch)·worldSize + rank.
   */
  shard?: { rank: number; worldSize: number; startGlobal?: number };
}

export interface Batch {
  /** [B, 1, D, H, W] */
  images: Float32Array;
  /** [B, 1, D, H, W], the second view, with `views: 2` */
  images2: Float32Array | null;
  /** [B, D, H, W] of 0/1, or null when the cases have no labels */
  labels: Uint8Array | null;
  caseIds: string[];
  /** k: this batch's index in the run */
  index: number;
}

interface Pending {
  batch: Batch;
  remaining: number;
  done: Promise<Batch>;
  resolve: (b: Batch) => void;
  reject: (e: Error) => void;
}

interface WorkerSlot {
  worker: Worker;
  inFlight: number;
}

/** A worker thread running ./worker.ts (compiled, or through tsx: src/util/workers.ts). */
function startWorker(workerData: WorkerInit): Worker {
  return tsWorker(new URL("./worker.ts", import.meta.url), { workerData });
}

export class PatchLoader {
  readonly batchSize: number;
  readonly patchSize: Vec3;
  readonly workers: number;
  readonly prefetch: number;
  /** Total milliseconds next() spent waiting for a batch. */
  waitMs = 0;
  private readonly settings: ProducerSettings;
  private readonly fraction: number;
  private readonly sampling: "uniform" | "balanced";
  private readonly byStructure: number[][];
  private readonly hasLabels: boolean;
  private readonly shard: { rank: number; worldSize: number; startGlobal?: number };
  private readonly startBatch: number;
  private readonly patchVoxels: number;
  private readonly inlineCache: CaseCache | null = null;
  private readonly pool: WorkerSlot[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly tasks = new Map<number, { batch: number; slot: number; worker: WorkerSlot }>();
  private nextTaskId = 0;
  private cursor: number;
  private dispatched: number;
  private closed = false;
  private failure: Error | null = null;

  constructor(opts: PatchLoaderOptions) {
    const { cases, patchSize, batchSize } = opts;
    if (cases.length === 0) throw new Error("PatchLoader: no cases");
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`PatchLoader: batchSize must be a positive integer, got ${batchSize}`);
    if (patchSize.length !== 3 || !patchSize.every((n) => Number.isInteger(n) && n > 0)) throw new Error(`PatchLoader: patchSize must be three positive integers [D, H, W], got ${JSON.stringify(patchSize)}`);
    const labelled = cases.filter((c) => c.labelPath).length;
    if (labelled !== 0 && labelled !== cases.length) {
      const missing = cases.find((c) => !c.labelPath)!;
      throw new Error(`PatchLoader: ${missing.imagePath} has no label while ${labelled} other cases have one (give all cases labels, or none)`);
    }
    this.hasLabels = labelled > 0;
    this.batchSize = batchSize;
    this.patchSize = [...patchSize];
    this.patchVoxels = patchSize[0] * patchSize[1] * patchSize[2];
    this.fraction = opts.oversampleForeground ?? 1 / 3;
    this.sampling = opts.sampling ?? "uniform";
    const structures = [...new Set(cases.map((c) => c.structure))].sort();
    this.byStructure = structures.map((s) => cases.flatMap((c, i) => (c.structure === s ? [i] : [])));
    this.settings = { cases: [...cases], patchSize: this.patchSize, seed: opts.seed, augment: opts.augment ?? null, views: opts.views ?? 1 };
    this.workers = opts.workers ?? Math.min(4, cpus().length);
    this.prefetch = Math.max(1, opts.prefetch ?? 2 * this.workers);
    this.cursor = this.dispatched = this.startBatch = opts.startBatch ?? 0;
    this.shard = opts.shard ?? { rank: 0, worldSize: 1 };
    if (!(this.shard.worldSize >= 1 && this.shard.rank >= 0 && this.shard.rank < this.shard.worldSize)) {
      throw new Error(`PatchLoader: shard rank ${this.shard.rank} is not in 0…${this.shard.worldSize - 1}`);
    }
    const cacheBytes = opts.cacheBytes ?? 2 ** 30;
    if (this.workers === 0) {
      this.inlineCache = new CaseCache(cacheBytes, opts.normalize);
      return;
    }
    const init: WorkerInit = { settings: this.settings, cacheBytes, normalize: opts.normalize ?? {} };
    for (let w = 0; w < this.workers; w++) {
      const worker = startWorker(init);
      const slot: WorkerSlot = { worker, inFlight: 0 };
      worker.on("message", (msg: WorkerReply) => this.onReply(slot, msg));
      worker.on("error", (err) => this.fail(new Error(`PatchLoader worker ${w}: ${err.message}`)));
      worker.on("exit", (code) => { if (!this.closed) this.fail(new Error(`PatchLoader worker ${w} exited with code ${code}`)); });
      this.pool.push(slot);
    }
    this.fill();
  }

  /** What the in-process case cache holds (loaders with `workers: 0`; null when workers hold their own caches). */
  cacheStats(): { bytes: number; budgetBytes: number; hits: number; misses: number } | null {
    const c = this.inlineCache;
    return c ? { bytes: c.bytes, budgetBytes: c.budgetBytes, hits: c.hits, misses: c.misses } : null;
  }

  /** The case index of sample `slot` of this loader's batch `local`, and whether it is centred on foreground. */
  taskOf(local: number, slot: number): SampleTask {
    const { rank, worldSize, startGlobal } = this.shard;
    const batch = startGlobal === undefined ? local * worldSize + rank : startGlobal + (local - this.startBatch) * worldSize + rank;
    const rng = stream(this.settings.seed, "batch", batch, "pick", slot);
    let caseIndex: number;
    if (this.sampling === "balanced") {
      const group = this.byStructure[rng.int(0, this.byStructure.length - 1)];
      caseIndex = group[rng.int(0, group.length - 1)];
    } else {
      caseIndex = rng.int(0, this.settings.cases.length - 1);
    }
    return { batch, slot, caseIndex, forceForeground: this.hasLabels && forcedForeground(slot, this.batchSize, this.fraction) };
  }

  /** The next batch, in order. */
  async next(): Promise<Batch> {
    if (this.closed) throw new Error("PatchLoader: next() after close()");
    const t0 = performance.now();
    try {
      if (this.inlineCache) return await this.makeInline(this.cursor++);
      if (this.failure) throw this.failure;
      const k = this.cursor;
      const p = this.pending.get(k)!;
      const batch = await p.done;
      this.pending.delete(k);
      this.cursor++;
      this.fill();
      return batch;
    } finally {
      this.waitMs += performance.now() - t0;
    }
  }

  /** Stops the workers; batches not yet returned are dropped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.pool.map((s) => stopWorker(s.worker)));
    for (const p of this.pending.values()) p.done.catch(() => {});
    this.pending.clear();
  }

  private newBatch(k: number): Batch {
    const B = this.batchSize, n = this.patchVoxels;
    return {
      images: new Float32Array(B * n),
      images2: this.settings.views === 2 ? new Float32Array(B * n) : null,
      labels: this.hasLabels ? new Uint8Array(B * n) : null,
      caseIds: new Array<string>(B).fill(""),
      index: k,
    };
  }

  private place(batch: Batch, slot: number, caseIndex: number, s: ProducedSample): void {
    const off = slot * this.patchVoxels;
    batch.images.set(s.image, off);
    if (batch.images2 && s.image2) batch.images2.set(s.image2, off);
    if (batch.labels && s.label) batch.labels.set(s.label, off);
    batch.caseIds[slot] = this.settings.cases[caseIndex].id;
  }

  private async makeInline(k: number): Promise<Batch> {
    const batch = this.newBatch(k);
    for (let i = 0; i < this.batchSize; i++) {
      const task = this.taskOf(k, i);
      this.place(batch, i, task.caseIndex, await produceSample(this.settings, this.inlineCache!, task));
    }
    return batch;
  }

  /** Sends the tasks of every batch up to `prefetch` ahead of the cursor. */
  private fill(): void {
    while (!this.closed && !this.failure && this.dispatched < this.cursor + this.prefetch) {
      const k = this.dispatched++;
      let resolve!: (b: Batch) => void, reject!: (e: Error) => void;
      const done = new Promise<Batch>((res, rej) => { resolve = res; reject = rej; });
      const p: Pending = { batch: this.newBatch(k), remaining: this.batchSize, done, resolve, reject };
      this.pending.set(k, p);
      for (let i = 0; i < this.batchSize; i++) {
        const task = this.taskOf(k, i);
        p.batch.caseIds[i] = this.settings.cases[task.caseIndex].id;
        const owner = this.pool[task.caseIndex % this.pool.length];
        const least = this.pool.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
        const slot = owner.inFlight > least.inFlight + 2 ? least : owner;
        const id = this.nextTaskId++;
        this.tasks.set(id, { batch: k, slot: i, worker: slot });
        slot.inFlight++;
        const req: WorkerRequest = { type: "task", id, task };
        slot.worker.postMessage(req);
      }
    }
  }

  private onReply(slot: WorkerSlot, msg: WorkerReply): void {
    if (this.closed) return; // a task that was running when close() asked the worker to stop
    const t = this.tasks.get(msg.id);
    if (!t) return;
    this.tasks.delete(msg.id);
    slot.inFlight--;
    const p = this.pending.get(t.batch);
    if (!p) return;
    if (msg.type === "error") {
      this.fail(new Error(msg.message));
      return;
    }
    this.place(p.batch, t.slot, this.taskOf(t.batch, t.slot).caseIndex, msg);
    if (--p.remaining === 0) p.resolve(p.batch);
  }

  private fail(err: Error): void {
    if (this.closed || this.failure) return;
    this.failure = err;
    for (const p of this.pending.values()) {
      p.done.catch(() => {});
      p.reject(err);
    }
  }
}
