// Sliding-window inference as nnU-Net does it: windows on a grid with step 0.5 of the patch, a
// Gaussian importance map (σ = patch/8) so window centres count more than borders, windows batched,
// logits accumulated in float32 and divided by the summed weights, optional mirror averaging.
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
  /** Average the predictions of the 8 axis flips (test-time augmentation). */
  mirror?: boolean;
  precision?: "bf16" | "fp32";
  device?: string;
  /** Called after each batch of windows with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Runs `net` over `image` ([C, D, H, W], float32, any size) window by window and returns the
 * importance-weighted average of the logits, [numClasses, D, H, W] float32. The accumulator has the
 * volume's size; memory does not grow with the number of windows.
 */
export function slidingWindow(net: (x: Tensor) => Tensor, image: Tensor, o: SlidingWindowOptions): Tensor {
  if (image.ndim !== 4) throw new Error(`slidingWindow: expected an image [C, D, H, W], got shape [${image.shape}]`);
  const [, d0, h0, w0] = image.shape;
  const p = o.patchSize;
  // Pad up to the patch where the volume is smaller, symmetric as nnU-Net; crop back at the end.
  const padBefore = [d0, h0, w0].map((n, i) => Math.max(0, Math.floor((p[i] - n) / 2)));
  const padAfter = [d0, h0, w0].map((n, i) => Math.max(0, p[i] - n - padBefore[i]));
  const padded = padBefore.some((v) => v > 0) || padAfter.some((v) => v > 0);
  const vol = padded ? pad(image, [padBefore[2], padAfter[2], padBefore[1], padAfter[1], padBefore[0], padAfter[0]]) : image;
  const [, D, H, W] = vol.shape;
  const step = o.step ?? 0.5;
  const batch = o.batchSize ?? 2;
  const boxes: Triple[] = [];
  for (const z of windowStarts(D, p[0], step)) for (const y of windowStarts(H, p[1], step)) for (const x of windowStarts(W, p[2], step)) boxes.push([z, y, x]);
  const weight = gaussianImportance(p);
  const acc = zeros([o.numClasses, D, H, W]);
  const norm = zeros([1, D, H, W]);
  const mirrors = o.mirror ? MIRROR_AXES : [[]];
  const run = windowRunner(net, o.precision, o.device);

  noGrad(() => {
    for (let i = 0; i < boxes.length; i += batch) {
      tidy(() => {
        const chunk = boxes.slice(i, i + batch);
        const x = stack(chunk.map(([z, y, xx]) => vol.slice(1, z, z + p[0]).slice(2, y, y + p[1]).slice(3, xx, xx + p[2])));
        const out = mirroredLogits(run, x, mirrors);
        chunk.forEach(([z, y, xx], k) => {
          acc.slice(1, z, z + p[0]).slice(2, y, y + p[1]).slice(3, xx, xx + p[2]).add_(out.select(0, k).mul(weight));
          norm.slice(1, z, z + p[0]).slice(2, y, y + p[1]).slice(3, xx, xx + p[2]).add_(weight);
        });
      });
      o.onProgress?.(Math.min(i + batch, boxes.length), boxes.length);
    }
  });
  weight.dispose();
  acc.div_(norm);
  norm.dispose();
  if (vol !== image) vol.dispose();
  if (!padded) return acc;
  const cropped = acc.slice(1, padBefore[0], padBefore[0] + d0).slice(2, padBefore[1], padBefore[1] + h0).slice(3, padBefore[2], padBefore[2] + w0).contiguous();
  acc.dispose();
  return cropped;
}
