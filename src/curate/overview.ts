// The first streaming pass over a raw volume: a low-resolution overview (block means of f×f×f voxels), a
// deterministic voxel subsample for the per-volume normalisation statistics, and from the overview a tissue
// mask (Otsu or triangle threshold on log intensities, then opening/closing and removal of small components). The pass is cut
// into boxes of whole f-blocks (a band of z-planes × a band of rows × every column) that workers scan in
// parallel; a box holds at most `boxBytes`, so memory does not grow with the volume.
import { labelComponents } from "../eval/components.ts";
import { normalizationOf, type Normalization } from "../data/normalize.ts";
import { DTYPES, type VolumeHeader, openVolume } from "../io/index.ts";
import { type Shape3, cleanMask, thresholdOf } from "./stats.ts";

export interface OverviewTask {
  kind: "overview";
  path: string;
  /** Box of voxels to scan: z0, dz, y0, dy (all columns); z0 and y0 are multiples of `factor`. */
  z0: number; dz: number; y0: number; dy: number;
  factor: number;
  /** Subsample every `sampleStep`-th voxel along each axis (global lattice). */
  sampleStep: number;
}

export interface OverviewPart {
  /** Block means [ceil(dz/f), ceil(dy/f), ceil(nx/f)]. */
  means: Float32Array;
  samples: Float32Array;
}

/** The downsampling factor that keeps the overview under `maxVoxels` (about 1 M by default). */
export function overviewFactor(shape: Shape3, maxVoxels = 1 << 20): number {
  const n = shape[0] * shape[1] * shape[2];
  return Math.max(1, Math.ceil(Math.cbrt(n / maxVoxels)));
}

/** The subsampling step giving at most about `maxSamples` voxels for the normalisation statistics. */
function sampleStepFor(shape: Shape3, maxSamples = 2_000_000): number {
  const n = shape[0] * shape[1] * shape[2];
  return Math.max(1, Math.ceil(Math.cbrt(n / maxSamples)));
}

/** The boxes of the overview pass: bands of whole f-blocks, each at most `boxBytes` (at least one block row). */
export function overviewTasks(path: string, header: VolumeHeader, factor: number, boxBytes = 32 << 20): OverviewTask[] {
  const [nz, ny, nx] = header.shape;
  const rowBytes = nx * DTYPES[header.dtype].bytes;
  // rows of a band: as many f-row groups as fit with f planes; then planes: as many f-plane groups as fit
  const rowGroups = Math.max(1, Math.min(Math.ceil(ny / factor), Math.floor(boxBytes / (rowBytes * factor * factor))));
  const dy = rowGroups * factor;
  const planeGroups = Math.max(1, Math.min(Math.ceil(nz / factor), Math.floor(boxBytes / (rowBytes * dy * factor))));
  const dz = planeGroups * factor;
  const step = sampleStepFor(header.shape);
  const tasks: OverviewTask[] = [];
  for (let z0 = 0; z0 < nz; z0 += dz) for (let y0 = 0; y0 < ny; y0 += dy) {
    tasks.push({ kind: "overview", path, z0, dz: Math.min(dz, nz - z0), y0, dy: Math.min(dy, ny - y0), factor, sampleStep: step });
  }
  return tasks;
}

/** This thread's buffer for the boxes it reads (one box at a time; see voxelsInto), grown as needed. */
let scratch = new Uint8Array(0);
export function readBuffer(bytes: number): Uint8Array {
  if (scratch.byteLength < bytes) scratch = new Uint8Array(bytes);
  return scratch;
}

/** Scans one box (in a worker): block means and the lattice subsample. */
export async function scanOverviewBox(t: OverviewTask): Promise<OverviewPart> {
  const source = await openVolume(t.path);
  try {
    const nx = source.header.shape[2];
    const f = t.factor;
    const into = readBuffer(t.dz * t.dy * nx * DTYPES[source.header.dtype].bytes);
    const vol = await source.readRegion({ start: [t.z0, t.y0, 0], size: [t.dz, t.dy, nx] }, into);
    const d = vol.data;
    const mz = Math.ceil(t.dz / f), my = Math.ceil(t.dy / f), mx = Math.ceil(nx / f);
    const sums = new Float64Array(mz * my * mx);
    const samples: number[] = [];
    const s = t.sampleStep;
    for (let z = 0; z < t.dz; z++) {
      const sampleZ = (t.z0 + z) % s === 0;
      for (let y = 0; y < t.dy; y++) {
        const o = (z * t.dy + y) * nx;
        let k = (Math.floor(z / f) * my + Math.floor(y / f)) * mx;
        // each block's f columns summed in a register, then added once
        for (let x0 = 0; x0 < nx; x0 += f, k++) {
          const e = Math.min(nx, x0 + f) + o;
          let acc = 0;
          for (let i = o + x0; i < e; i++) acc += d[i];
          sums[k] += acc;
        }
        if (sampleZ && (t.y0 + y) % s === 0) for (let x = 0; x < nx; x += s) samples.push(d[o + x]);
      }
    }
    // a block's voxel count: f per axis, fewer in the last block of an axis
    const extent = (i: number, n: number) => Math.min(f, n - i * f);
    const means = new Float32Array(sums.length);
    for (let bz = 0; bz < mz; bz++) for (let by = 0; by < my; by++) for (let bx = 0; bx < mx; bx++) {
      const k = (bz * my + by) * mx + bx;
      means[k] = sums[k] / (extent(bz, t.dz) * extent(by, t.dy) * extent(bx, nx));
    }
    return { means, samples: Float32Array.from(samples) };
  } finally {
    await source.close();
  }
}

export interface Overview {
  factor: number;
  shape: Shape3;
  /** Block means, z-major. */
  means: Float32Array;
  /** The tissue mask at the overview's resolution (1 = tissue). */
  tissue: Uint8Array;
  /** The threshold on block means that separated tissue from background. */
  threshold: number;
  normalization: Normalization & { samples: number; percentiles: [number, number] };
}

export interface TissueOptions {
  method?: "otsu" | "triangle";
  /** Radius in overview voxels of the opening/closing cube (default 1). */
  cleanRadius?: number;
  /** Components smaller than this fraction of the largest are dropped (default 0.05). */
  minComponent?: number;
}

/** Puts the parts of `overviewTasks` back together and derives the tissue mask and normalisation statistics. */
export function assembleOverview(header: VolumeHeader, tasks: OverviewTask[], parts: OverviewPart[], o: TissueOptions = {}): Overview {
  const [nz, ny, nx] = header.shape;
  const f = tasks[0].factor;
  const shape: Shape3 = [Math.ceil(nz / f), Math.ceil(ny / f), Math.ceil(nx / f)];
  const means = new Float32Array(shape[0] * shape[1] * shape[2]);
  let nSamples = 0;
  tasks.forEach((t, i) => {
    const mz = Math.ceil(t.dz / f), my = Math.ceil(t.dy / f), mx = shape[2];
    const bz = t.z0 / f, by = t.y0 / f;
    for (let z = 0; z < mz; z++) for (let y = 0; y < my; y++) {
      means.set(parts[i].means.subarray((z * my + y) * mx, (z * my + y + 1) * mx), ((bz + z) * shape[1] + by + y) * mx);
    }
    nSamples += parts[i].samples.length;
  });
  const samples = new Float32Array(nSamples);
  let k = 0;
  for (const p of parts) { samples.set(p.samples, k); k += p.samples.length; }
  const pct: [number, number] = [0.5, 99.5];
  const normalization = { ...normalizationOf(samples, { percentiles: pct, maxSamples: samples.length }), samples: samples.length, percentiles: pct };
  // on log intensities: bright structures (vessels at several times the tissue's level) would otherwise pull
  // Otsu's split between structures and tissue instead of between tissue and background
  const logMeans = means.map((v) => Math.log1p(Math.max(0, v)));
  const logRange: [number, number] = [Math.log1p(Math.max(0, normalization.lo)), Math.log1p(Math.max(0, normalization.hi))];
  const threshold = Math.expm1(thresholdOf(logMeans, o.method ?? "otsu", 256, logRange));
  let tissue: Uint8Array = new Uint8Array(means.length);
  for (let i = 0; i < means.length; i++) tissue[i] = means[i] > threshold ? 1 : 0;
  tissue = cleanMask(tissue, shape, o.cleanRadius ?? 1);
  const { labels, count, sizes } = labelComponents(tissue, shape, 26);
  let largest = 0;
  for (let c = 1; c <= count; c++) largest = Math.max(largest, sizes[c]);
  const minSize = (o.minComponent ?? 0.05) * largest;
  for (let i = 0; i < tissue.length; i++) if (tissue[i] && sizes[labels[i]] < minSize) tissue[i] = 0;
  return { factor: f, shape, means, tissue, threshold, normalization };
}

/** Fraction of the box `start`…`start+size` (voxels) covered by the overview's tissue mask, overlap-weighted. */
export function tissueFraction(ov: Pick<Overview, "factor" | "shape" | "tissue">, start: Shape3, size: Shape3): number {
  const f = ov.factor;
  const overlaps = [0, 1, 2].map((a) => {
    const list: Array<[number, number]> = [];
    for (let b = Math.floor(start[a] / f); b * f < start[a] + size[a] && b < ov.shape[a]; b++) {
      list.push([b, Math.min((b + 1) * f, start[a] + size[a]) - Math.max(b * f, start[a])]);
    }
    return list;
  });
  let covered = 0;
  for (const [bz, wz] of overlaps[0]) for (const [by, wy] of overlaps[1]) {
    const o = (bz * ov.shape[1] + by) * ov.shape[2];
    for (const [bx, wx] of overlaps[2]) if (ov.tissue[o + bx]) covered += wz * wy * wx;
  }
  return covered / (size[0] * size[1] * size[2]);
}
