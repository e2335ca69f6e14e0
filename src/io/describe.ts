// What `lsmseg inspect FILE|URL` prints for one volume: its format and layout (chunks, codec, pyramid levels,
// channels) as the reader found them, its geometry, and intensity percentiles from a bounded sample of planes.
import { formatOf, openVolume, type OpenOptions } from "./index.ts";
import type { SourceInfo } from "./stream.ts";
import { DTYPES, type DType, type Vec3 } from "./volume.ts";

export interface VolumeDescription {
  path: string;
  format: string;
  shape: Vec3;
  dtype: DType;
  spacingUm: Vec3;
  originUm: Vec3 | null;
  channels: number;
  timePoints: number;
  chunks: number[] | null;
  codec: string | null;
  pyramidLevels: number;
  /** Axis names and full shape of the stored array (OME-Zarr), when they differ from z, y, x. */
  axes: string[] | null;
  fullShape: number[] | null;
  /** Percentiles, min, max and mean of the sampled voxels. */
  intensity: { sampledVoxels: number; sampledPlanes: number; min: number; p0_5: number; p50: number; p99_5: number; max: number; mean: number };
}

/** At most this many bytes of voxels are read for the intensity sample. */
export const SAMPLE_BYTES = 64 * 2 ** 20;

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Describes the volume at `path` (file, folder or URL), reading at most SAMPLE_BYTES of voxels. */
export async function describeVolume(path: string, o: OpenOptions = {}): Promise<VolumeDescription> {
  const src = await openVolume(path, o);
  try {
    const h = src.header;
    const names = { nifti: "NIfTI", metaimage: "MetaImage", tiff: "TIFF", "tiff-folder": "folder of TIFF planes", zarr: "Zarr" };
    const info: SourceInfo = src.info ?? { format: names[formatOf(path)], codec: /\.gz$/i.test(path) ? "gzip" : undefined };
    const [nz, ny, nx] = h.shape;
    const size = DTYPES[h.dtype].bytes;
    // whole planes, evenly spaced in z; a plane larger than the budget is cropped to its centre
    const cy = Math.min(ny, Math.max(1, Math.floor(Math.sqrt(SAMPLE_BYTES / size) * (ny / Math.max(ny, nx)))));
    const cx = Math.min(nx, Math.max(1, Math.floor(SAMPLE_BYTES / size / cy)));
    const planes = Math.max(1, Math.min(nz, Math.floor(SAMPLE_BYTES / (cy * cx * size)), 64));
    const values: number[] = [];
    let count = 0, sum = 0, min = Infinity, max = -Infinity;
    const keepEvery = Math.max(1, Math.ceil((planes * cy * cx) / 4_000_000)); // percentiles from at most 4 M values
    for (let k = 0; k < planes; k++) {
      const z = Math.floor(((k + 0.5) * nz) / planes);
      const r = await src.readRegion({ start: [z, Math.floor((ny - cy) / 2), Math.floor((nx - cx) / 2)], size: [1, cy, cx] });
      for (let i = 0; i < r.data.length; i++) {
        const v = r.data[i];
        if (Number.isNaN(v)) continue;
        count++; sum += v;
        if (v < min) min = v;
        if (v > max) max = v;
        if (i % keepEvery === 0) values.push(v);
      }
    }
    const sorted = Float64Array.from(values).sort();
    return {
      path, format: info.format, shape: [...h.shape], dtype: h.dtype, spacingUm: [...h.spacingUm], originUm: h.originUm ? [...h.originUm] : null,
      channels: info.channels ?? 1, timePoints: info.timePoints ?? 1, chunks: info.chunks ?? null, codec: info.codec ?? null,
      pyramidLevels: info.levels ?? 1, axes: info.axes ?? null, fullShape: info.fullShape ?? null,
      intensity: {
        sampledVoxels: count, sampledPlanes: planes, min, max, mean: count ? sum / count : NaN,
        p0_5: percentile(sorted, 0.005), p50: percentile(sorted, 0.5), p99_5: percentile(sorted, 0.995),
      },
    };
  } finally {
    await src.close();
  }
}
