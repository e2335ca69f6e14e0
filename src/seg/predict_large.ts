// Out-of-core prediction: whole volumes larger than memory, read and written slab by slab, with exactly the
// result of in-memory predictVolume where both fit.
//   normalisation  the same percentile-clip z-score as src/data/normalize.ts, in three streaming passes: the
//                  same deterministic voxel subsample (its indices come from the same seeded stream) for the
//                  percentiles, then the clipped sum and the squared deviations, accumulated in voxel order
//                  as the in-memory loop does, so lo, hi, mean and std are bit-identical
//   windows        the in-memory sliding window's grid and batches (src/seg/sliding_window.ts). An output slab
//                  [a, b) runs every batch holding a window that overlaps it, reading the planes those windows
//                  cover (the slab plus up to a patch of margin on each side); every window covering a voxel of
//                  the slab adds its value there in the same order as in memory, into an accumulator of the
//                  slab's own planes, so the Gaussian-weighted logits, and the mask, match bit for bit. Memory
//                  grows with the plane's area (y·x) times about three patches, not with the depth: planes too
//                  large for the budget would need y/x blocks as well (not done)
//   output         each slab's mask is written atomically to <out>.parts/slab_<a>_<b>.u8.gz beside a small
//                  progress.json; a killed run resumes and skips the slabs already there. When all are done they
//                  are streamed into the output (OME-Zarr with a pyramid, a TIFF plane folder, or any format by
//                  the output's name) and the parts folder is removed.
//   ranks          with o.shard (`lsmseg predict --nproc N`), slabs are at most ⌈depth / N⌉ planes thick and slab i
//                  is rank i mod N's: rank 0 computes the normalisation and the progress file, every rank writes
//                  its slabs' parts, and rank 0 assembles the output after a barrier. Each slab's mask is what
//                  one process computes, so the result is the same bit for bit.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { percentileSorted, type Normalization } from "../data/normalize.ts";
import { Rng } from "../data/rng.ts";
import { DTYPES, type VolumeHeader, type VolumeSource, createVolume, openVolume } from "../io/index.ts";
import { type Tensor, fromBytes, noGrad, pad, softmax, stack, tidy, zeros } from "../torch/index.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import type { LoadedModel } from "./model.ts";
import type { PredictOptions } from "./predict.ts";
import { MIRROR_AXES, type Triple, gaussianImportance, mirroredLogits, windowRunner, windowStarts } from "./sliding_window.ts";

export interface LargePredictOptions extends PredictOptions {
  /** Memory budget for one slab's volume-sized arrays and tensors (default 4 GiB); the network's own working
   *  memory for a batch of windows (a few hundred MB for nnU-Net's widths at 128³) comes on top. */
  maxMemoryBytes?: number;
  /** Voxels sampled for the percentiles (default 100,000, as normalize's default). */
  maxSamples?: number;
  /** Called after each slab with (slabs done, slabs in all). */
  onSlab?: (done: number, total: number) => void;
}

export const DEFAULT_MAX_MEMORY_BYTES = 4096 * 2 ** 20;
/** How long a rank of a multi-process prediction waits at a barrier for its peers' share of the work. */
export const SHARD_WAIT_MS = 24 * 3600_000;

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

async function* planes(source: VolumeSource, maxBytes: number): AsyncGenerator<ArrayLike<number> & { length: number }> {
  const [nz, ny, nx] = source.header.shape;
  const step = Math.max(1, Math.floor(maxBytes / (ny * nx * DTYPES[source.header.dtype].bytes)));
  for (let z0 = 0; z0 < nz; z0 += step) {
    yield (await source.readRegion({ start: [z0, 0, 0], size: [Math.min(step, nz - z0), ny, nx] })).data;
  }
}

/** normalizationOf(whole volume) without holding the volume: three streaming passes, the same numbers. */
export async function streamingNormalization(source: VolumeSource, o: { percentiles?: [number, number]; maxSamples?: number; slabBytes?: number } = {}): Promise<Normalization> {
  const [pLo, pHi] = o.percentiles ?? [0.5, 99.5];
  const maxSamples = o.maxSamples ?? 100_000;
  const slabBytes = o.slabBytes ?? 256 << 20;
  const n = source.header.shape.reduce((a, b) => a * b, 1);
  let sample: Float64Array;
  if (n <= maxSamples) {
    sample = new Float64Array(n);
    let k = 0;
    for await (const d of planes(source, slabBytes)) for (let i = 0; i < d.length; i++) sample[k++] = d[i];
  } else {
    // the indices normalizationOf draws, in the same order; picked in sorted order while streaming
    const rng = new Rng(`lsmseg/data/normalize/${n}`);
    const idx = new Float64Array(maxSamples);
    for (let i = 0; i < maxSamples; i++) idx[i] = Math.floor(rng.next() * n);
    idx.sort();
    sample = new Float64Array(maxSamples);
    let k = 0, base = 0;
    for await (const d of planes(source, slabBytes)) {
      while (k < maxSamples && idx[k] < base + d.length) { sample[k] = d[idx[k] - base]; k++; }
      base += d.length;
    }
  }
  sample.sort();
  const lo = percentileSorted(sample, pLo), hi = percentileSorted(sample, pHi);
  let s = 0;
  for await (const d of planes(source, slabBytes)) for (let i = 0; i < d.length; i++) { const v = d[i]; s += v < lo ? lo : v > hi ? hi : v; }
  const mean = n ? s / n : 0;
  let s2 = 0;
  for await (const d of planes(source, slabBytes)) {
    for (let i = 0; i < d.length; i++) { const v = d[i]; const e = (v < lo ? lo : v > hi ? hi : v) - mean; s2 += e * e; }
  }
  return { lo, hi, mean, std: Math.sqrt(n ? s2 / n : 0) };
}

interface Progress {
  key: string;
  normalization: Normalization;
  slabs: Array<[number, number]>;
}

/** Predicts `input` into `output` slab by slab; see the file's header. */
export async function predictLarge(model: LoadedModel, input: string, output: string, o: LargePredictOptions = {}): Promise<void> {
  if (o.probabilities) throw new Error(`${input}: --probabilities is not supported for out-of-core prediction`);
  const { plan, net } = model;
  const source = await openVolume(input);
  try {
    const header = source.header;
    const [D, H, W] = header.shape;
    const p = plan.patchSize as Triple;
    const C = plan.network.numClasses;
    const step = o.step ?? 0.5, batch = o.batchSize ?? 2;
    const mirrors = (o.mirror ?? true) ? MIRROR_AXES : [[]];
    // the in-memory window grid, over the volume padded up to the patch (symmetric, as slidingWindow)
    const padBefore = [D, H, W].map((n, i) => Math.max(0, Math.floor((p[i] - n) / 2)));
    const padAfter = [D, H, W].map((n, i) => Math.max(0, p[i] - n - padBefore[i]));
    const [Dp, Hp, Wp] = [D, H, W].map((n, i) => n + padBefore[i] + padAfter[i]);
    const boxes: Triple[] = [];
    for (const z of windowStarts(Dp, p[0], step)) for (const y of windowStarts(Hp, p[1], step)) for (const x of windowStarts(Wp, p[2], step)) boxes.push([z, y, x]);

    // slab thickness from the budget: the input is read with up to a patch (and a batch's window rows) of margin
    // on each side, while logits and weights are kept for the slab's own planes only
    const budget = o.maxMemoryBytes ?? DEFAULT_MAX_MEMORY_BYTES;
    const inputPlane = Hp * Wp * (DTYPES[header.dtype].bytes + 4 + 4);
    const outputPlane = Hp * Wp * (4 * C + 4 + 8 + 2);
    const rowsPerBatch = Math.ceil(batch / Math.max(1, boxes.length / windowStarts(Dp, p[0], step).length)) + 1;
    const margin = 2 * p[0] + rowsPerBatch * Math.ceil(p[0] * step);
    const fit = Math.floor((budget - margin * inputPlane) / (inputPlane + outputPlane));
    // below a patch's thickness every window would be run for several slabs: take a patch and say so
    const minThickness = Math.min(D, p[0]);
    if (fit < minThickness && D > fit) {
      console.warn(`${input}: --max-memory-mb ${Math.round(budget / 2 ** 20)} is below the ${Math.ceil(((margin + minThickness) * inputPlane + minThickness * outputPlane) / 2 ** 20)} MB that slabs of ${minThickness} planes of ${H}×${W} need; using that`);
    }
    const world = o.shard?.worldSize ?? 1, rank = o.shard?.rank ?? 0;
    const thickness = Math.min(D, Math.max(minThickness, Math.min(fit, Math.ceil(D / world))));
    const slabs: Array<[number, number]> = [];
    for (let a = 0; a < D; a += thickness) slabs.push([a, Math.min(D, a + thickness)]);

    // resumable state: <output>.parts/progress.json and one file per finished slab
    const parts = `${output.replace(/\/+$/, "")}.parts`;
    const key = JSON.stringify({ input, shape: header.shape, patch: p, step, batch, mirror: mirrors.length, threshold: o.threshold ?? null, precision: o.precision ?? "fp32", slabs });
    const progressPath = join(parts, "progress.json");
    const readState = () => (existsSync(progressPath) ? (JSON.parse(readFileSync(progressPath, "utf8")) as Progress) : null);
    let state: Progress | null = null;
    if (rank === 0) {
      state = readState();
      if (state && state.key !== key) { rmSync(parts, { recursive: true, force: true }); state = null; }
      if (!state) {
        const normalization = await streamingNormalization(source, { percentiles: plan.normalization.percentiles, maxSamples: o.maxSamples });
        state = { key, normalization, slabs };
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
    const { lo, hi, mean, std } = state.normalization;
    const inv = 1 / Math.max(std, 1e-8);
    const slabPath = ([a, b]: [number, number]) => join(parts, `slab_${a}_${b}.u8.gz`);

    const weight = gaussianImportance(p);
    const run = windowRunner((x: Tensor) => net.forward(x) as Tensor, o.precision);
    let batchesDone = 0;
    const batchesTotal = Math.ceil(boxes.length / batch);
    try {
      for (const [si, [a, b]] of slabs.entries()) {
        if (si % world !== rank) continue;
        if (existsSync(slabPath([a, b]))) { o.onSlab?.(si + 1, slabs.length); continue; }
        // padded z range of the slab; the batches with a window overlapping it; the planes they cover
        const za = a + padBefore[0], zb = b + padBefore[0];
        const chosen: number[] = [];
        for (let i = 0; i < boxes.length; i += batch) {
          if (boxes.slice(i, i + batch).some(([z]) => z < zb && z + p[0] > za)) chosen.push(i);
        }
        const r0 = Math.min(...chosen.flatMap((i) => boxes.slice(i, i + batch).map(([z]) => z)));
        const r1 = Math.max(...chosen.flatMap((i) => boxes.slice(i, i + batch).map(([z]) => z + p[0])));
        // read the original planes under [r0, r1), normalise, pad as the in-memory path pads the whole volume
        const oz0 = Math.max(0, r0 - padBefore[0]), oz1 = Math.min(D, r1 - padBefore[0]);
        const raw = (await source.readRegion({ start: [oz0, 0, 0], size: [oz1 - oz0, H, W] })).data;
        const image = new Float32Array(raw.length);
        for (let i = 0; i < raw.length; i++) { const v = raw[i]; image[i] = ((v < lo ? lo : v > hi ? hi : v) - mean) * inv; }
        const mask = noGrad(() => tidy(() => {
          const x0 = fromBytes(new Uint8Array(image.buffer, image.byteOffset, image.byteLength), [1, oz1 - oz0, H, W], "float32");
          const before = oz0 + padBefore[0] - r0, after = r1 - (oz1 + padBefore[0]);
          const padded = before > 0 || after > 0 || padBefore[1] + padAfter[1] + padBefore[2] + padAfter[2] > 0;
          const vol = padded ? pad(x0, [padBefore[2], padAfter[2], padBefore[1], padAfter[1], before, after]) : x0;
          // logits and weights of the slab's planes [za, zb) only; each window adds the part that falls there
          const acc = zeros([C, zb - za, Hp, Wp]);
          const norm = zeros([1, zb - za, Hp, Wp]);
          for (const i of chosen) {
            tidy(() => {
              const chunk = boxes.slice(i, i + batch);
              const x = stack(chunk.map(([z, y, xx]) => vol.slice(1, z - r0, z - r0 + p[0]).slice(2, y, y + p[1]).slice(3, xx, xx + p[2])));
              const out = mirroredLogits(run, x, mirrors);
              chunk.forEach(([z, y, xx], k) => {
                const a0 = Math.max(z, za), a1 = Math.min(z + p[0], zb);
                if (a0 >= a1) return; // a batch-mate of a window that overlaps the slab
                const w = weight.slice(0, a0 - z, a1 - z);
                acc.slice(1, a0 - za, a1 - za).slice(2, y, y + p[1]).slice(3, xx, xx + p[2]).add_(out.select(0, k).slice(1, a0 - z, a1 - z).mul(w));
                norm.slice(1, a0 - za, a1 - za).slice(2, y, y + p[1]).slice(3, xx, xx + p[2]).add_(w);
              });
            });
            o.onProgress?.(++batchesDone, batchesTotal);
          }
          // the slab's interior, padding cropped: division and decision are per voxel, as in memory
          const crop = (t: Tensor) => t.slice(2, padBefore[1], padBefore[1] + H).slice(3, padBefore[2], padBefore[2] + W);
          const logits = crop(acc).div(crop(norm));
          const m = o.threshold !== undefined ? softmax(logits, 0).select(0, 1).gt(o.threshold) : logits.argmax(0).gt(0);
          return m.to("uint8").contiguous().data() as Uint8Array;
        }));
        writeFileAtomic(slabPath([a, b]), gzipSync(mask, { level: 1 }));
        o.onSlab?.(si + 1, slabs.length);
      }
    } finally {
      weight.dispose();
    }

    // stream the slabs into the output, then drop the parts (rank 0, once every rank has written its slabs)
    o.shard?.barrier(SHARD_WAIT_MS);
    if (rank !== 0) return;
    const { data: _none, ...outHeader } = { ...header, data: null, dtype: "uint8" as const };
    const sink = await createVolume(output, outHeader);
    try {
      for (const s of slabs) await sink.writeSlab(new Uint8Array(gunzipSync(readFileSync(slabPath(s)))));
      await sink.close();
    } catch (err) {
      await sink.abort();
      throw err;
    }
    rmSync(parts, { recursive: true, force: true });
  } finally {
    await source.close();
  }
}
