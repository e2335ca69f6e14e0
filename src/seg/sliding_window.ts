// Sliding-window inference as nnU-Net does it: windows on a grid with step 0.5 of the patch, a
// Gaussian importance map (σ = patch/8) so window centres count more than borders, windows batched,
// logits accumulated in float32 and divided by the summed weights, optional mirror averaging.
// One window grid (windowGrid) and one batch loop (runWindows) feed an accumulator, as MONAI's Merger does: the
// volume's (VolumeAccumulator, slidingWindow) or one output block's (BlockAccumulator, predict_large.ts).
import { type Tensor, autocast, noGrad, pad, stack, tensor, tidy, zeros } from "../torch/index.ts";

export type Triple = [number, number, number];

/** Window start positions along an axis of length n for patch p: evenly spread, first 0, last n − p. */
export function windowStarts(n: number, p: number, step: number): number[] {
  if (n <= p) return [0];
  const k = Math.ceil((n - p) / (p * step)) + 1;
  return Array.from({ length: k }, (_, i) => Math.round((i * (n - p)) / (k - 1)));
}

/** nnU-Net's Gaussian importance map for a patch: σ = p/8 per axis, max 1, no zeros. [D, H, W] float32. */
export function gaussianImportance(patch: Triple, sigmaScale = 1 / 8): Tensor {
  return tidy(() => {
    const axis = (p: number) => {
      const c = (p - 1) / 2;
      const v = new Float32Array(p);
      for (let i = 0; i < p; i++) v[i] = (i - c) / (p * sigmaScale);
      return v;
    };
    const [pd, ph, pw] = patch;
    const gz = tensor(axis(pd)).square().mul(-0.5).exp().reshape(pd, 1, 1);
    const gy = tensor(axis(ph)).square().mul(-0.5).exp().reshape(1, ph, 1);
    const gx = tensor(axis(pw)).square().mul(-0.5).exp().reshape(1, 1, pw);
    const g = gz.mul(gy).mul(gx);
    const gn = g.div(g.max());
    // Clamp to the smallest positive value so that every voxel has weight (nnU-Net does the same).
    const minPos = gn.maskedSelect(gn.gt(0)).min().item();
    return gn.clamp(minPos);
  });
}

/** The 8 mirror configurations over the spatial axes of [B, C, D, H, W] (the empty one first). */
export const MIRROR_AXES: number[][] = [[], [2], [3], [4], [2, 3], [2, 4], [3, 4], [2, 3, 4]];

/** The network run under autocast when asked, logits back in float32 (on the host: windows go to `device` and back). */
export function windowRunner(net: (x: Tensor) => Tensor, precision: "bf16" | "fp32" = "fp32", device = "cpu"): (x: Tensor) => Tensor {
  const type = device.startsWith("cuda") ? "cuda" : "cpu";
  if (device === "cpu") return (x) => autocast(() => net(x), { enabled: precision === "bf16", device: type }).float();
  return (x) => autocast(() => net(x.to(device)), { enabled: precision === "bf16", device: type }).float().to("cpu");
}

/** Logits of a batch of windows x: [B, C, D, H, W], averaged over the mirror configurations (undone after the net). */
export function mirroredLogits(run: (x: Tensor) => Tensor, x: Tensor, mirrors: number[][]): Tensor {
  let out: Tensor | null = null;
  for (const axes of mirrors) {
    const xin = axes.length ? x.flip(axes) : x;
    let y = run(xin);
    if (axes.length) y = y.flip(axes);
    out = out ? out.add_(y) : y;
  }
  if (mirrors.length > 1) out!.div_(mirrors.length);
  return out!;
}

export interface SlidingWindowOptions {
  patchSize: Triple;
  numClasses: number;
  /** Step as a fraction of the patch (0.5 = half-overlapping windows). */
  step?: number;
  batchSize?: number;
  /** Batches of windows run together in one forward pass (default: defaultBatchesPerForward; see WindowRun). */
  batchesPerForward?: number;
  /** Average the predictions of the 8 axis flips (test-time augmentation). */
  mirror?: boolean;
  precision?: "bf16" | "fp32";
  device?: string;
  /** Called after each batch of windows with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** The box [a, b) of `t`'s three spatial axes, which start at axis `first` (a view). */
export function boxOf(t: Tensor, first: number, a: ArrayLike<number>, b: ArrayLike<number>): Tensor {
  return t.slice(first, a[0], b[0]).slice(first + 1, a[1], b[1]).slice(first + 2, a[2], b[2]);
}

/** The windows over a volume of `shape` [D, H, W], padded up to the patch where smaller (symmetric, as nnU-Net). */
export interface WindowGrid {
  padBefore: Triple;
  padAfter: Triple;
  /** The padded volume's shape. */
  padded: Triple;
  /** Window starts per axis, in padded coordinates. */
  starts: [number[], number[], number[]];
  /** Every window's start, z-major: box (iz·ny + iy)·nx + ix. */
  boxes: Triple[];
}

export function windowGrid(shape: Triple, patch: Triple, step = 0.5): WindowGrid {
  const padBefore = shape.map((n, i) => Math.max(0, Math.floor((patch[i] - n) / 2))) as Triple;
  const padAfter = shape.map((n, i) => Math.max(0, patch[i] - n - padBefore[i])) as Triple;
  const padded = shape.map((n, i) => n + padBefore[i] + padAfter[i]) as Triple;
  const starts = padded.map((n, i) => windowStarts(n, patch[i], step)) as WindowGrid["starts"];
  const boxes: Triple[] = [];
  for (const z of starts[0]) for (const y of starts[1]) for (const x of starts[2]) boxes.push([z, y, x]);
  return { padBefore, padAfter, padded, starts, boxes };
}

/** Where windows' importance-weighted logits go: `add` takes the logits [C, pD, pH, pW] of the window at `start`. */
export interface WindowAccumulator {
  add(logits: Tensor, start: Triple): void;
}

/**
 * An output block's accumulator: the box [lo, hi) of the padded volume, to which each window adds the part of
 * it inside the box (a window that misses the box adds nothing). The same values in the same order as the
 * volume's accumulator, so the box's voxels match it bit for bit.
 */
export class BlockAccumulator implements WindowAccumulator {
  private readonly acc: Tensor;
  private readonly norm: Tensor;
  constructor(private readonly weight: Tensor, numClasses: number, readonly lo: Triple, readonly hi: Triple) {
    const size = hi.map((e, i) => e - lo[i]);
    this.acc = zeros([numClasses, ...size]);
    this.norm = zeros([1, ...size]);
  }

  overlaps(start: Triple): boolean {
    const p = this.weight.shape;
    return start.every((v, i) => v < this.hi[i] && v + p[i] > this.lo[i]);
  }

  add(logits: Tensor, start: Triple): void {
    if (!this.overlaps(start)) return; // a batch-mate of a window that overlaps the box
    const p = this.weight.shape, { lo, hi } = this;
    // the part of the window inside the box: window coordinates [a0 − start, a1 − start), box [a0 − lo, a1 − lo)
    const a0 = start.map((v, j) => Math.max(v, lo[j])), a1 = start.map((v, j) => Math.min(v + p[j], hi[j]));
    const inWin = (t: Tensor, d: number) => boxOf(t, d, a0.map((v, j) => v - start[j]), a1.map((v, j) => v - start[j]));
    const inBox = (t: Tensor) => boxOf(t, 1, a0.map((v, j) => v - lo[j]), a1.map((v, j) => v - lo[j]));
    const wt = inWin(this.weight, 0);
    inBox(this.acc).add_(inWin(logits, 1).mul(wt));
    inBox(this.norm).add_(wt);
  }

  /** The weighted average of the logits over the box, [C, ...box] (the sums are consumed). */
  average(): Tensor {
    this.acc.div_(this.norm);
    this.norm.dispose();
    return this.acc;
  }
}

/** The (padded) volume's accumulator: the block that is the whole padded volume, cropped back to the volume at the end. */
export class VolumeAccumulator extends BlockAccumulator {
  constructor(weight: Tensor, numClasses: number, private readonly grid: WindowGrid) {
    super(weight, numClasses, [0, 0, 0], grid.padded);
  }

  /** The weighted average of the logits cropped to the volume, [C, D, H, W]; the sums are consumed. */
  override average(): Tensor {
    const { padBefore: b, padAfter: a, padded } = this.grid;
    const acc = super.average();
    if (![...b, ...a].some((v) => v > 0)) return acc;
    const cropped = boxOf(acc, 1, b, padded.map((n, i) => n - a[i])).contiguous();
    acc.dispose();
    return cropped;
  }
}

/** How windows run: the network (windowRunner), the mirror configurations, windows per batch. */
export interface WindowRun {
  run: (x: Tensor) => Tensor;
  mirrors: number[][];
  batchSize: number;
  /** Batches run together in one forward pass (default 1; the callers' default: defaultBatchesPerForward). Each window's logits keep their
   *  bits where the network's kernels do not depend on the batch's size: so for the U-Net on our CPU, fp32 and bf16
   *  (batches of 2 run 1, 2 or 4 at a time; a 128³ volume and the tests' predict-large equivalence). */
  batchesPerForward?: number;
}

/**
 * Runs the batches starting at `batchStarts` (indices into `boxes`, multiples of the batch size) and adds each
 * window's logits to `acc`; `patchOf` gives a window's input [C, pD, pH, pW]. A batch always holds the same
 * windows, boxes[i, i + batch), whichever accumulator it feeds: no operation mixes the samples of a batch, and
 * the same composition keeps every window's logits their bits. `onBatch` gets each batch's number of windows.
 */
export function runWindows(w: WindowRun, boxes: Triple[], batchStarts: Iterable<number>, patchOf: (start: Triple) => Tensor,
  acc: WindowAccumulator, onBatch?: (windows: number) => void): void {
  const starts = [...batchStarts], group = Math.max(1, w.batchesPerForward ?? 1);
  noGrad(() => {
    for (let g = 0; g < starts.length; g += group) {
      const batches = starts.slice(g, g + group).map((i) => boxes.slice(i, i + w.batchSize));
      const chunk = batches.flat();
      tidy(() => {
        const out = mirroredLogits(w.run, stack(chunk.map(patchOf)), w.mirrors);
        chunk.forEach((start, k) => acc.add(out.select(0, k), start));
      });
      for (const b of batches) onBatch?.(b.length);
    }
  });
}

/** Batches per forward pass by default: as many as keep a forward at most 2²¹ input voxels (8 windows of 64³; one
 *  batch at 128³), so the activations stay small (bench predict, 2 cores: minimum 3.90 s against 4.08 s). */
export function defaultBatchesPerForward(patch: Triple, batchSize: number): number {
  return Math.max(1, Math.floor(2 ** 21 / (patch[0] * patch[1] * patch[2] * batchSize)));
}

/** How the windows of `patch` run under `o`: its precision, device, mirroring (off unless asked) and batching. */
export function windowRun(net: (x: Tensor) => Tensor, patch: Triple,
  o: Pick<SlidingWindowOptions, "precision" | "device" | "mirror" | "batchSize" | "batchesPerForward">): WindowRun {
  const batchSize = o.batchSize ?? 2;
  return {
    run: windowRunner(net, o.precision, o.device), mirrors: o.mirror ? MIRROR_AXES : [[]], batchSize,
    batchesPerForward: o.batchesPerForward ?? defaultBatchesPerForward(patch, batchSize),
  };
}

/** The batch starts of `n` windows in batches of `batch`: 0, batch, 2·batch, … */
export function allBatches(n: number, batch: number): number[] {
  return Array.from({ length: Math.ceil(n / batch) }, (_, k) => k * batch);
}

/**
 * Runs `net` over `image` ([C, D, H, W], float32, any size) window by window and returns the
 * importance-weighted average of the logits, [numClasses, D, H, W] float32. The accumulator has the
 * volume's size; memory does not grow with the number of windows.
 */
export function slidingWindow(net: (x: Tensor) => Tensor, image: Tensor, o: SlidingWindowOptions): Tensor {
  if (image.ndim !== 4) throw new Error(`slidingWindow: expected an image [C, D, H, W], got shape [${image.shape}]`);
  const p = o.patchSize;
  const grid = windowGrid(image.shape.slice(1) as Triple, p, o.step ?? 0.5);
  const { padBefore: b, padAfter: a, boxes } = grid;
  // pad up to the patch where the volume is smaller, symmetric as nnU-Net; the accumulator crops back
  const vol = [...b, ...a].some((v) => v > 0) ? pad(image, [b[2], a[2], b[1], a[1], b[0], a[0]]) : image;
  const weight = gaussianImportance(p);
  const acc = new VolumeAccumulator(weight, o.numClasses, grid);
  const w = windowRun(net, p, o);
  const patchOf = (start: Triple) => boxOf(vol, 1, start, start.map((v, i) => v + p[i]));
  let done = 0;
  runWindows(w, boxes, allBatches(boxes.length, w.batchSize), patchOf, acc, (n) => o.onProgress?.((done += n), boxes.length));
  weight.dispose();
  if (vol !== image) vol.dispose();
  return acc.average();
}
