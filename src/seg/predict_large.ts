// Out-of-core prediction: whole volumes larger than memory, read and written slab by slab, with exactly the
// result of in-memory predictVolume where both fit.
//   normalisation  the same percentile-clip z-score as src/data/normalize.ts, in three streaming passes: the
//                  same deterministic voxel subsample (its indices come from the same seeded stream) for the
//                  percentiles, then the clipped sum and the squared deviations, accumulated in voxel order
//                  as the in-memory loop does, so lo, hi, mean and std are bit-identical
//   windows        the in-memory sliding window's grid and batches (src/seg/sliding_window.ts). The output is cut
//                  into blocks (full planes as deep as the budget allows, else a patch deep and square in y/x:
//                  planBlocks). A block runs every batch holding a window that overlaps it, reading the box those
//                  windows cover (the block plus up to a patch of margin on each side; a batch-mate outside it is
//                  read by itself, since batches run whole as in memory); every window covering a voxel of the
//                  block adds its value there in the same order as in memory, into an accumulator of the block's
//                  own size, so the Gaussian-weighted logits, and the mask, match bit for bit. Memory is bounded
//                  by the budget whatever the volume's size (a block needs at least about 3 patches each way)
//   output         each block's mask is written atomically to <out>.parts/block_<z>_<y>_<x>.u8.gz (one gzip
//                  member per plane behind an index) beside a small progress.json; a killed run resumes and skips
//                  the blocks already there. When all are done they are streamed, a group of planes at a time,
//                  into the output (OME-Zarr with a pyramid, a TIFF plane folder, or any format by the output's
//                  name) and the parts folder is removed. The output format's own buffer comes on top (OME-Zarr
//                  collects a chunk's depth of mask planes, uint8, before writing a layer of chunks)
//   ranks          with o.shard (`lsmseg predict --nproc N`), blocks are at most ⌈depth / N⌉ planes deep and block
//                  i is rank i mod N's: rank 0 computes the normalisation and the progress file, every rank writes
//                  its blocks' parts, and rank 0 assembles the output after a barrier. Each block's mask is what
//                  one process computes, so the result is the same bit for bit.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { clipBounds, nonFiniteOf, type Normalization } from "../data/normalize.ts";
import { Rng } from "../data/rng.ts";
import { DTYPES, type VolumeHeader, type VolumeSource, createVolume, formatOf, openVolume } from "../io/index.ts";
import { type Tensor, argmaxAlong, fromBytes, keep, noGrad, pad, releaseFreeMemory, softmax, tidy, zeros } from "../torch/index.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import { OptionError } from "../util/option_error.ts";
import type { LoadedModel } from "./model.ts";
import { DEFAULT_MAX_MEMORY_BYTES, type PredictOptions, SHARD_WAIT_MS } from "./predict_options.ts";
import {
  BlockAccumulator, type Triple, type WindowGrid, type WindowRun,
  boxOf, gaussianImportance, runWindows, windowGrid, windowRun,
} from "./sliding_window.ts";

export interface LargePredictOptions extends PredictOptions {
  /** Voxels sampled for the percentiles (default 100,000, as normalize's default). */
  maxSamples?: number;
  /** Called after each block with (blocks done, blocks in all). */
  onBlock?: (done: number, total: number) => void;
  /** The output block's size instead of the one planned from the budget (tests, tuning). */
  blockShape?: Triple;
}

/** Bytes per voxel that in-memory prediction holds: raw, normalised, tensor, logits, weights, argmax, mask. */
function bytesPerVoxel(header: VolumeHeader, numClasses: number): number {
  return DTYPES[header.dtype].bytes + 4 + 4 + 4 * numClasses + 4 + 8 + 2;
}

/** The memory in-memory predictVolume needs for a volume of `header`, roughly (tensors, not the network). */
export function inMemoryBytes(header: VolumeHeader, numClasses: number): number {
  const [d, h, w] = header.shape;
  return d * h * w * bytesPerVoxel(header, numClasses);
}

/** Whether `input` is too large for in-memory prediction under `maxMemoryBytes`. */
export async function needsOutOfCore(model: LoadedModel, input: string, maxMemoryBytes = DEFAULT_MAX_MEMORY_BYTES): Promise<boolean> {
  const source = await openVolume(input);
  await source.close();
  return inMemoryBytes(source.header, model.plan.network.numClasses) > maxMemoryBytes;
}

async function* planes(source: VolumeSource, maxBytes: number, fill?: number): AsyncGenerator<ArrayLike<number> & { length: number }> {
  const [nz, ny, nx] = source.header.shape;
  const step = Math.max(1, Math.floor(maxBytes / (ny * nx * DTYPES[source.header.dtype].bytes)));
  for (let z0 = 0; z0 < nz; z0 += step) {
    const d = (await source.readRegion({ start: [z0, 0, 0], size: [Math.min(step, nz - z0), ny, nx] })).data;
    if (fill !== undefined) for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) d[i] = fill;
    yield d;
  }
}

/** For a float volume: how many voxels are NaN/Inf and the smallest finite one (normalize.ts's rule), streaming. */
export async function streamingNonFinite(source: VolumeSource, slabBytes = 256 << 20): Promise<{ count: number; min: number }> {
  if (source.header.dtype !== "float32" && source.header.dtype !== "float64") return { count: 0, min: 0 };
  let count = 0, min = Infinity;
  for await (const d of planes(source, slabBytes)) {
    const r = nonFiniteOf(d);
    count += r.count;
    if (r.count < d.length && r.min < min) min = r.min;
  }
  return { count, min: min === Infinity ? 0 : min };
}

/** normalizationOf(whole volume) without holding the volume: three streaming passes, the same numbers. */
export async function streamingNormalization(
  source: VolumeSource, o: { percentiles?: [number, number]; maxSamples?: number; slabBytes?: number; fill?: number } = {},
): Promise<Normalization> {
  const [pLo, pHi] = o.percentiles ?? [0.5, 99.5];
  const maxSamples = o.maxSamples ?? 100_000;
  const slabBytes = o.slabBytes ?? 256 << 20;
  const n = source.header.shape.reduce((a, b) => a * b, 1);
  let sample: Float64Array;
  if (n <= maxSamples) {
    sample = new Float64Array(n);
    let k = 0;
    for await (const d of planes(source, slabBytes, o.fill)) for (let i = 0; i < d.length; i++) sample[k++] = d[i];
  } else {
    // the indices normalizationOf draws, in the same order; picked in sorted order while streaming
    const rng = new Rng(`lsmseg/data/normalize/${n}`);
    const idx = new Float64Array(maxSamples);
    for (let i = 0; i < maxSamples; i++) idx[i] = Math.floor(rng.next() * n);
    idx.sort();
    sample = new Float64Array(maxSamples);
    let k = 0, base = 0;
    for await (const d of planes(source, slabBytes, o.fill)) {
      while (k < maxSamples && idx[k] < base + d.length) { sample[k] = d[idx[k] - base]; k++; }
      base += d.length;
    }
  }
  sample.sort();
  const { lo, hi } = clipBounds(sample, pLo, pHi);
  let s = 0;
  for await (const d of planes(source, slabBytes, o.fill)) for (let i = 0; i < d.length; i++) { const v = d[i]; s += v < lo ? lo : v > hi ? hi : v; }
  const mean = n ? s / n : 0;
  let s2 = 0;
  for await (const d of planes(source, slabBytes, o.fill)) {
    for (let i = 0; i < d.length; i++) { const v = d[i]; const e = (v < lo ? lo : v > hi ? hi : v) - mean; s2 += e * e; }
  }
  return { lo, hi, mean, std: Math.sqrt(n ? s2 / n : 0) };
}

interface Progress {
  key: string;
  normalization: Normalization;
  /** The value NaN/Inf voxels take (the smallest finite voxel), when the volume has any. */
  fill?: number;
  block: Triple;
}

/** An output block: [start, end) along z, y and x, in the volume's coordinates. */
export type Block = [[number, number], [number, number], [number, number]];

/**
 * The largest output block (z, y, x) whose prediction fits `budget` bytes: full planes as deep as fit (at most
 * `maxDepth`), else a patch deep and square in y/x. A block reads its input with up to a patch of margin on
 * each side (its windows), and holds logits and weights for itself only. `bytes` is what the block needs,
 * above the budget when even a patch-sized block does not fit.
 */
export function planBlocks(
  shape: Triple, patch: Triple, o: { budget: number; inputBytes: number; numClasses: number; maxDepth?: number },
): { shape: Triple; bytes: number } {
  const inBytes = o.inputBytes + 4 + 4; // raw, normalised, tensor
  const outBytes = 4 * o.numClasses + 4 + 8 + 2; // logits, weights, argmax, mask
  const padded = shape.map((n, i) => Math.max(n, patch[i]));
  const ext = (b: number, i: number) => Math.min(padded[i], b + 2 * patch[i]);
  const need = ([bz, by, bx]: Triple) => ext(bz, 0) * ext(by, 1) * ext(bx, 2) * inBytes + bz * by * bx * outBytes;
  const [D, H, W] = shape;
  const minDepth = Math.min(D, patch[0]);
  const maxDepth = Math.max(minDepth, Math.min(D, o.maxDepth ?? D));
  // the largest n in [lo, hi] with fits(n) (fits is monotone: true up to some n), given fits(lo)
  const largest = (lo: number, hi: number, fits: (n: number) => boolean) => {
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (fits(mid)) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  if (need([minDepth, H, W]) <= o.budget) {
    const bz = largest(minDepth, maxDepth, (n) => need([n, H, W]) <= o.budget);
    return { shape: [bz, H, W], bytes: need([bz, H, W]) };
  }
  const minSide = Math.max(patch[1], patch[2]);
  const square = (side: number): Triple => [minDepth, Math.min(H, side), Math.min(W, side)];
  const side = need(square(minSide)) > o.budget ? minSide : largest(minSide, Math.max(H, W), (n) => need(square(n)) <= o.budget);
  return { shape: square(side), bytes: need(square(side)) };
}

/** The blocks of `block` size tiling `shape`, z-major (then y, then x). */
export function blockGrid(shape: Triple, block: Triple): Block[] {
  const ranges = shape.map((n, i) => {
    const out: Array<[number, number]> = [];
    for (let a = 0; a < n; a += block[i]) out.push([a, Math.min(n, a + block[i])]);
    return out;
  });
  const out: Block[] = [];
  for (const z of ranges[0]) for (const y of ranges[1]) for (const x of ranges[2]) out.push([z, y, x]);
  return out;
}

/** A block's mask as one gzip member per plane behind an index (count, then each member's length), so that
 *  assembling the output reads one plane of a block at a time. */
function encodePlanes(mask: Uint8Array, depth: number): Buffer {
  const plane = mask.length / depth;
  const members = Array.from({ length: depth }, (_, z) => gzipSync(mask.subarray(z * plane, (z + 1) * plane), { level: 1 }));
  const index = Buffer.alloc(4 * (depth + 1));
  index.writeUInt32LE(depth, 0);
  members.forEach((m, z) => index.writeUInt32LE(m.length, 4 * (z + 1)));
  return Buffer.concat([index, ...members]);
}

/** Planes [z0, z0 + n) of a block file written by encodePlanes. */
function readPlanes(path: string, z0: number, n: number): Uint8Array[] {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(4);
    readSync(fd, head, 0, 4, 0);
    const depth = head.readUInt32LE(0);
    if (z0 + n > depth) throw new Error(`holds ${depth} planes, ${z0 + n} wanted`);
    const index = Buffer.alloc(4 * depth);
    readSync(fd, index, 0, index.length, 4);
    const offsets = [4 * (depth + 1)];
    for (let z = 0; z < depth; z++) offsets.push(offsets[z] + index.readUInt32LE(4 * z));
    const out: Uint8Array[] = [];
    for (let z = z0; z < z0 + n; z++) {
      const buf = Buffer.alloc(offsets[z + 1] - offsets[z]);
      readSync(fd, buf, 0, buf.length, offsets[z]);
      out.push(new Uint8Array(gunzipSync(buf)));
    }
    return out;
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

/** What the stages of predictLarge share: the volume, the model, the window grid and how windows run, the ranks. */
interface LargeJob {
  input: string;
  source: VolumeSource;
  model: LoadedModel;
  o: LargePredictOptions;
  patch: Triple;
  numClasses: number;
  grid: WindowGrid;
  windows: WindowRun;
  rank: number;
  world: number;
  budget: number;
  /** <output>.parts: progress.json and one file per finished block. */
  parts: string;
}

/** Predicts `input` into `output` slab by slab; see the file's header. */
export async function predictLarge(model: LoadedModel, input: string, output: string, o: LargePredictOptions = {}): Promise<void> {
  if (o.probabilities) throw new OptionError("probabilities", (n) => `${input}: ${n("probabilities")} is not supported for out-of-core prediction`);
  const source = await openVolume(input);
  try {
    const job = planJob(model, input, output, source, o);
    const state = await startOrResume(job);
    // a resumed run keeps the blocks it started with (also when resumed with another number of ranks)
    const blocks = blockGrid(source.header.shape, state.block);
    await predictBlocks(job, state, blocks);
    // rank 0 assembles the output once every rank has written its blocks
    o.shard?.barrier(SHARD_WAIT_MS);
    if (job.rank !== 0) return;
    await assemble(job, state.block, blocks, output);
    rmSync(job.parts, { recursive: true, force: true });
  } finally {
    await source.close();
  }
}

/** The window grid and batches of in-memory prediction, the ranks, the memory budget (warned about when too small). */
function planJob(model: LoadedModel, input: string, output: string, source: VolumeSource, o: LargePredictOptions): LargeJob {
  const { plan, net } = model;
  const header = source.header;
  const patch = plan.patchSize as Triple;
  const numClasses = plan.network.numClasses;
  const world = o.shard?.worldSize ?? 1, rank = o.shard?.rank ?? 0;
  const budget = o.maxMemoryBytes ?? DEFAULT_MAX_MEMORY_BYTES;
  const windows = windowRun((x: Tensor) => net.forward(x) as Tensor, patch, { ...o, mirror: o.mirror ?? true });
  return {
    input, source, model, o, patch, numClasses, grid: windowGrid(header.shape, patch, o.step ?? 0.5), windows, rank, world, budget,
    parts: `${output.replace(/\/+$/, "")}.parts`,
  };
}

/** The output block of a new run: the one asked for, or the largest that fits the budget (warned when none does). */
function blockShapeOf(job: LargeJob): Triple {
  const { o, source: { header }, patch, budget, world } = job;
  const [D, H, W] = header.shape;
  if (o.blockShape) return o.blockShape.map((b, i) => Math.min(b, [D, H, W][i])) as Triple;
  const inputBytes = DTYPES[header.dtype].bytes;
  const blockPlan = planBlocks(header.shape, patch, { budget, inputBytes, numClasses: job.numClasses, maxDepth: Math.ceil(D / world) });
  if (blockPlan.bytes > budget) {
    const need = `${Math.ceil(blockPlan.bytes / 2 ** 20)} MB that blocks of ${blockPlan.shape.join("×")} need (at least a patch each way)`;
    const warning = new OptionError("maxMemoryBytes", (n) => `${job.input}: ${n("maxMemoryBytes")} ${Math.round(budget / 2 ** 20)} MB is below the ${need}; using that`);
    if (o.onWarning) o.onWarning(warning);
    else console.warn(warning.message);
  }
  return blockPlan.shape;
}

/**
 * The run's state: <output>.parts/progress.json when it matches this run (a resumed run), else a new one with
 * the normalisation (rank 0; the other ranks read rank 0's after a barrier).
 */
async function startOrResume(job: LargeJob): Promise<Progress> {
  const { input, source, model, o, rank, parts } = job;
  // what the parts depend on: the input (and its file's identity), the model (its checkpoint's), the settings
  const stamp = (path: string) => { try { const s = statSync(path); return [s.size, s.mtimeMs]; } catch { return null; } };
  const key = JSON.stringify({
    input, inputFile: stamp(input), shape: source.header.shape, model: model.checkpoint, modelFile: stamp(model.checkpoint), modelStep: model.step,
    patch: job.patch, step: o.step ?? 0.5, batch: job.windows.batchSize, mirror: job.windows.mirrors.length, threshold: o.threshold ?? null,
    precision: o.precision ?? "fp32",
  });
  const progressPath = join(parts, "progress.json");
  const readState = () => (existsSync(progressPath) ? (JSON.parse(readFileSync(progressPath, "utf8")) as Progress) : null);
  let state: Progress | null = null;
  if (rank === 0) {
    state = readState();
    if (state && state.key !== key) { rmSync(parts, { recursive: true, force: true }); state = null; }
    if (!state) {
      const nonFinite = await streamingNonFinite(source);
      if (nonFinite.count) console.error(`${input}: ${nonFinite.count} NaN/Inf voxel${nonFinite.count === 1 ? "" : "s"} treated as the volume's minimum (${nonFinite.min})`);
      const fill = nonFinite.count ? nonFinite.min : undefined;
      const { percentiles } = model.plan.normalization;
      const normalization = await streamingNormalization(source, { percentiles, maxSamples: o.maxSamples, fill });
      state = { key, normalization, fill, block: blockShapeOf(job) };
      mkdirSync(parts, { recursive: true });
      writeFileAtomic(progressPath, Buffer.from(JSON.stringify(state, null, 2) + "\n"));
    }
  }
  // the other ranks take rank 0's normalisation and progress file
  o.shard?.barrier(SHARD_WAIT_MS);
  if (rank !== 0) {
    state = readState();
    if (!state || state.key !== key) throw new Error(`${progressPath}: rank 0's progress file does not match rank ${rank}'s plan (do all ranks see the same files?)`);
  }
  if (!state) throw new Error(`${progressPath}: no progress state`);
  return state;
}

const blockPathOf = (parts: string, b: Block) => join(parts, `block_${b.map(([a, e]) => `${a}-${e}`).join("_")}.u8.gz`);

/** A block's windows: the batches holding a window that overlaps it, and the box [r0, r1) those windows cover. */
interface BlockWindows {
  /** The block in padded coordinates, [lo, hi). */
  lo: Triple;
  hi: Triple;
  batches: number[];
  r0: Triple;
  r1: Triple;
}

function blockWindows(job: LargeJob, block: Block): BlockWindows {
  const { grid: { starts, padBefore: pb }, patch: p } = job;
  const batch = job.windows.batchSize;
  // per axis the window rows overlapping the block (a run of the sorted starts); the batches holding those
  // windows (box index = (iz·ny + iy)·nx + ix, as the grid was built); the box they cover
  const lo = block.map(([a], i) => a + pb[i]) as Triple, hi = block.map(([, e], i) => e + pb[i]) as Triple;
  const rows = starts.map((s, i) => s.flatMap((v, k) => (v < hi[i] && v + p[i] > lo[i] ? [k] : [])));
  const batches: number[] = [];
  for (const iz of rows[0]) for (const iy of rows[1]) for (const ix of rows[2]) {
    const first = Math.floor(((iz * starts[1].length + iy) * starts[2].length + ix) / batch) * batch;
    if (batches[batches.length - 1] !== first) batches.push(first);
  }
  const r0 = rows.map((r, i) => starts[i][r[0]]) as Triple;
  const r1 = rows.map((r, i) => starts[i][r[r.length - 1]] + p[i]) as Triple;
  return { lo, hi, batches, r0, r1 };
}

/** The normalised, padded input of the padded-coordinate box [r0, r1) (zero outside the volume, as in memory). */
async function readInput(job: LargeJob, state: Progress, r0: Triple, r1: Triple): Promise<Tensor> {
  const { source, grid: { padBefore: pb } } = job;
  const shape = source.header.shape;
  const { lo, hi, mean, std } = state.normalization;
  const fill = state.fill;
  const inv = 1 / Math.max(std, 1e-8);
  const o0 = r0.map((r, i) => Math.min(shape[i], Math.max(0, r - pb[i]))) as Triple;
  const o1 = r1.map((r, i) => Math.max(o0[i], Math.min(shape[i], r - pb[i]))) as Triple;
  const size = o1.map((e, i) => e - o0[i]) as Triple;
  const raw = size.every((n) => n > 0) ? (await source.readRegion({ start: o0, size })).data : new Uint8Array(0);
  const image = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = fill !== undefined && !Number.isFinite(raw[i]) ? fill : raw[i];
    image[i] = ((v < lo ? lo : v > hi ? hi : v) - mean) * inv;
  }
  return tidy(() => {
    const x0 = fromBytes(new Uint8Array(image.buffer, image.byteOffset, image.byteLength), [1, ...size], "float32");
    const before = o0.map((v, i) => v + pb[i] - r0[i]), after = r1.map((r, i) => r - (o1[i] + pb[i]));
    return before.some((v) => v > 0) || after.some((v) => v > 0) ? pad(x0, [before[2], after[2], before[1], after[1], before[0], after[0]]) : x0;
  });
}

/** This rank's blocks not yet written, each predicted and written to its part file; progress in windows run. */
async function predictBlocks(job: LargeJob, state: Progress, blocks: Block[]): Promise<void> {
  const { o, rank, world, grid: { boxes }, windows: { batchSize } } = job;
  const todo = blocks.flatMap((block, bi) => (bi % world === rank && !existsSync(blockPathOf(job.parts, block)) ? [{ block, bi }] : []));
  const plans = new Map(todo.map(({ bi, block }) => [bi, blockWindows(job, block)]));
  // a batch holding windows of several blocks runs once for each: the total counts every run
  let done = 0, total = 0;
  for (const w of plans.values()) for (const i of w.batches) total += Math.min(batchSize, boxes.length - i);
  const weight = gaussianImportance(job.patch);
  // a batch-mate outside a block's box runs on zeros: batches keep their composition (and so every window's
  // logits their bits) without reading its input
  const blank = keep(zeros([1, ...job.patch]));
  try {
    for (const [bi, block] of blocks.entries()) {
      const bw = plans.get(bi);
      if (bi % world !== rank) continue;
      if (bw) {
        const mask = await predictBlock(job, state, bw, weight, blank, (n) => o.onProgress?.((done += n), total));
        writeFileAtomic(blockPathOf(job.parts, block), encodePlanes(mask, block[0][1] - block[0][0]));
        // blocks differ in size (edges): without this the kept heap grows with fragmentation, block after block
        releaseFreeMemory();
      }
      o.onBlock?.(bi + 1, blocks.length);
    }
  } finally {
    weight.dispose();
    blank.dispose();
  }
}

/** One block's mask: its windows' logits accumulated over the block, divided and decided per voxel as in memory. */
async function predictBlock(
  job: LargeJob, state: Progress, bw: BlockWindows, weight: Tensor, blank: Tensor, onBatch: (windows: number) => void,
): Promise<Uint8Array> {
  const { r0, r1 } = bw, p = job.patch, threshold = job.o.threshold;
  const region = await readInput(job, state, r0, r1);
  try {
    return noGrad(() => tidy(() => {
      const acc = new BlockAccumulator(weight, job.numClasses, bw.lo, bw.hi);
      const inBox = (w: Triple) => w.every((v, k) => v >= r0[k] && v + p[k] <= r1[k]);
      const patchOf = (w: Triple) => (inBox(w) ? boxOf(region, 1, w.map((v, k) => v - r0[k]), w.map((v, k) => v - r0[k] + p[k])) : blank);
      runWindows(job.windows, job.grid.boxes, bw.batches, patchOf, acc, onBatch);
      const logits = acc.average();
      const m = threshold !== undefined ? softmax(logits, 0).select(0, 1).gt(threshold) : argmaxAlong(logits, 0).gt(0);
      return m.to("uint8").contiguous().data() as Uint8Array;
    }));
  } finally {
    region.dispose();
  }
}

/** Streams the blocks' masks into the output, a group of planes at a time (a block file open at a time). */
async function assemble(job: LargeJob, blockShape: Triple, blocks: Block[], output: string): Promise<void> {
  const { header } = job.source;
  const [D, H, W] = header.shape;
  const { data: _none, ...outHeader } = { ...header, data: null, dtype: "uint8" as const };
  const sink = await createVolume(output, outHeader, formatOf(output) === "zarr" ? { labelName: "mask" } : {});
  try {
    const planesPerWrite = Math.max(1, Math.min(blockShape[0], Math.floor(job.budget / 4 / (H * W))));
    for (let z0 = 0; z0 < D; z0 += blockShape[0]) {
      const slab = blocks.filter((b) => b[0][0] === z0);
      const z1 = Math.min(D, z0 + blockShape[0]);
      for (let g = z0; g < z1; g += planesPerWrite) {
        const n = Math.min(planesPerWrite, z1 - g);
        const out = new Uint8Array(n * H * W);
        // one block file open at a time (a slab of a very wide volume has more blocks than open files allowed)
        for (const b of slab) {
          const [, [y0, y1], [x0, x1]] = b;
          readPlanes(blockPathOf(job.parts, b), g - z0, n).forEach((plane, k) => {
            for (let y = y0; y < y1; y++) out.set(plane.subarray((y - y0) * (x1 - x0), (y - y0 + 1) * (x1 - x0)), (k * H + y) * W + x0);
          });
        }
        await sink.writeSlab(out);
      }
    }
    await sink.close();
  } catch (err) {
    await sink.abort();
    throw err;
  }
}
