// Patch sampling as nnU-Net does it: in every batch the last round(B·f) samples (f = 1/3 by default) are centred on a
// random foreground voxel (from a precomputed subsample of each case's foreground), the others are placed
// uniformly; a patch larger than the volume is padded (image with the volume's minimum, label with 0).
import type { Vec3 } from "../io/index.ts";
import { IGNORE_LABEL } from "./labels.ts";
import type { Rng } from "./rng.ts";

/** A volume or a patch of one: image [D, H, W] (normalised), label [D, H, W] (0/1, IGNORE_LABEL where not labelled) or null. */
export interface Sample {
  image: Float32Array;
  label: Uint8Array | null;
  shape: Vec3;
}

/** Whether sample `index` of a batch of `batchSize` is forced onto foreground (nnU-Net's get_do_oversample). */
export function forcedForeground(index: number, batchSize: number, fraction: number): boolean {
  return index >= Math.round(batchSize * (1 - fraction));
}

/**
 * Linear indices of foreground voxels (label 1; never an ignored voxel): all of them, or when there are more than `maxCount` an evenly
 * strided subset (deterministic; nnU-Net keeps 10,000 random ones per class).
 */
export function foregroundLocations(label: Uint8Array, maxCount = 10_000): Uint32Array {
  let n = 0;
  const isForeground = (v: number) => v !== 0 && v !== IGNORE_LABEL;
  for (let i = 0; i < label.length; i++) if (isForeground(label[i])) n++;
  const stride = Math.max(1, Math.ceil(n / maxCount));
  const out = new Uint32Array(Math.ceil(n / stride));
  let seen = 0, k = 0;
  for (let i = 0; i < label.length; i++) {
    if (!isForeground(label[i])) continue;
    if (seen++ % stride === 0) out[k++] = i;
  }
  return out;
}

/**
 * The start (z, y, x) of a patch of `patchSize` in a volume of `shape`: uniform over the positions that keep the
 * patch inside (or, along an axis where the patch is larger, that keep the volume inside the patch), or placed so
 * that `foregroundIndex` (a linear voxel index) sits at its centre, moved as little as needed to stay in those bounds.
 */
export function patchStart(shape: Vec3, patchSize: Vec3, rng: Rng, foregroundIndex: number | null = null): Vec3 {
  const voxel = foregroundIndex === null ? null : [
    Math.floor(foregroundIndex / (shape[1] * shape[2])),
    Math.floor(foregroundIndex / shape[2]) % shape[1],
    foregroundIndex % shape[2],
  ];
  const start: Vec3 = [0, 0, 0];
  for (let a = 0; a < 3; a++) {
    const lo = Math.min(0, shape[a] - patchSize[a]), hi = Math.max(0, shape[a] - patchSize[a]);
    if (voxel) start[a] = Math.min(hi, Math.max(lo, voxel[a] - (patchSize[a] >> 1)));
    else start[a] = rng.int(lo, hi);
  }
  return start;
}

/** The centre of a patch that starts at `start` (continuous coordinates, as the spatial transform takes it). */
export function patchCenter(start: Vec3, patchSize: Vec3): Vec3 {
  return [start[0] + (patchSize[0] - 1) / 2, start[1] + (patchSize[1] - 1) / 2, start[2] + (patchSize[2] - 1) / 2];
}

/** The patch of `patchSize` at `start` (which may reach outside the volume: padded with `padValue` and label 0). */
export function cropPatch(vol: Sample, start: Vec3, patchSize: Vec3, padValue: number): Sample {
  // vol: [nz, ny, nx] → patch: [pz, py, px]
  const [nz, ny, nx] = vol.shape, [pz, py, px] = patchSize;
  const image = new Float32Array(pz * py * px);
  const label = vol.label ? new Uint8Array(pz * py * px) : null;
  const inside = start.every((s, a) => s >= 0 && s + patchSize[a] <= vol.shape[a]);
  if (!inside) image.fill(padValue);
  // the x-range of each row that lies in the volume, copied with subarray/set
  const x0 = Math.max(0, -start[2]), x1 = Math.min(px, nx - start[2]);
  if (x1 <= x0) return { image, label, shape: [...patchSize] };
  for (let z = 0; z < pz; z++) {
    const sz = start[0] + z;
    if (sz < 0 || sz >= nz) continue;
    for (let y = 0; y < py; y++) {
      const sy = start[1] + y;
      if (sy < 0 || sy >= ny) continue;
      const src = (sz * ny + sy) * nx + start[2], dst = (z * py + y) * px;
      image.set(vol.image.subarray(src + x0, src + x1), dst + x0);
      if (label) label.set(vol.label!.subarray(src + x0, src + x1), dst + x0);
    }
  }
  return { image, label, shape: [...patchSize] };
}

/** The smallest value of `data` (the padding value of a normalised volume). */
export function minimumOf(data: Float32Array): number {
  let m = Infinity;
  for (let i = 0; i < data.length; i++) if (data[i] < m) m = data[i];
  return m === Infinity ? 0 : m;
}
