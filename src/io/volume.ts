// The one Volume type that every reader returns and every writer takes: voxels in a typed array, z-major
// (index = (z·ny + y)·nx + x), shape and spacing in z, y, x order, spacing in micrometres.

export type DType = "uint8" | "int8" | "uint16" | "int16" | "uint32" | "int32" | "float32" | "float64";
export type VoxelArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;
/** Three numbers in z, y, x order (shape, spacing, origin, box corners). */
export type Vec3 = [number, number, number];

export interface VolumeHeader {
  dtype: DType;
  /** [z, y, x] in voxels. */
  shape: Vec3;
  /** [z, y, x] voxel size in micrometres. */
  spacingUm: Vec3;
  /** [z, y, x] world position of voxel (0,0,0) in micrometres, where the format has one. */
  originUm?: Vec3;
  /** NIfTI's voxel→world matrix (16 numbers, row-major, maps (x, y, z, 1) indices to RAS+ µm), where the format has one. */
  affine?: number[];
  /** MetaImage's TransformMatrix (9 numbers, direction cosines, x y z order), where the format has one. */
  direction?: number[];
}

export interface Volume extends VolumeHeader {
  data: VoxelArray;
}

/** A box of voxels: `start` and `size` in z, y, x. */
export interface Box {
  start: Vec3;
  size: Vec3;
}

interface DTypeInfo {
  bytes: number;
  array: new (n: number | ArrayBufferLike, offset?: number, length?: number) => VoxelArray;
}

export const DTYPES: Record<DType, DTypeInfo> = {
  uint8: { bytes: 1, array: Uint8Array },
  int8: { bytes: 1, array: Int8Array },
  uint16: { bytes: 2, array: Uint16Array },
  int16: { bytes: 2, array: Int16Array },
  uint32: { bytes: 4, array: Uint32Array },
  int32: { bytes: 4, array: Int32Array },
  float32: { bytes: 4, array: Float32Array },
  float64: { bytes: 8, array: Float64Array },
};

export function isDType(s: string): s is DType {
  return Object.hasOwn(DTYPES, s);
}

export function dtypeOf(data: VoxelArray): DType {
  for (const [name, info] of Object.entries(DTYPES)) if (data instanceof info.array) return name as DType;
  throw new Error(`unsupported typed array ${(data as object).constructor.name}`);
}

export function voxelCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function allocVoxels(dtype: DType, n: number): VoxelArray {
  return new DTYPES[dtype].array(n);
}

/**
 * n voxels of `dtype` over the bytes of `into` when it is large enough (its contents are then whatever was
 * there: the caller overwrites every voxel), else newly allocated (zeros). Reusing one buffer for many reads
 * spares a fresh allocation per read: page faults on fresh memory made a large read up to 10× slower.
 */
export function voxelsInto(dtype: DType, n: number, into?: Uint8Array): VoxelArray {
  const size = DTYPES[dtype].bytes;
  if (!into || into.byteLength < n * size || into.byteOffset % size !== 0) return allocVoxels(dtype, n);
  return new DTYPES[dtype].array(into.buffer, into.byteOffset, n);
}

/** A volume of zeros with the given header fields (spacing 1 µm unless given). */
export function makeVolume(dtype: DType, shape: Vec3, spacingUm: Vec3 = [1, 1, 1], data?: VoxelArray): Volume {
  const n = voxelCount(shape);
  const voxels = data ?? allocVoxels(dtype, n);
  if (voxels.length !== n) throw new Error(`data holds ${voxels.length} voxels, shape ${shape.join("×")} needs ${n}`);
  return { dtype, shape: [...shape], spacingUm: [...spacingUm], data: voxels };
}

/** The header of `vol` without its voxels, with a new shape (e.g. for a region or a slab). */
export function headerOf(vol: VolumeHeader, shape: Vec3 = vol.shape): VolumeHeader {
  const h: VolumeHeader = { dtype: vol.dtype, shape: [...shape], spacingUm: [...vol.spacingUm] };
  if (vol.originUm) h.originUm = [...vol.originUm];
  if (vol.affine) h.affine = [...vol.affine];
  if (vol.direction) h.direction = [...vol.direction];
  return h;
}

/** The bytes of a typed array (a view, no copy). */
export function bytesOf(data: VoxelArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Reverses the byte order of every `size`-byte element of `bytes`, in place. */
export function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 2) {
    for (let i = 0; i + 1 < bytes.length; i += 2) {
      const t = bytes[i]; bytes[i] = bytes[i + 1]; bytes[i + 1] = t;
    }
  } else if (size > 1) {
    for (let i = 0; i + size <= bytes.length; i += size) {
      for (let a = i, b = i + size - 1; a < b; a++, b--) {
        const t = bytes[a]; bytes[a] = bytes[b]; bytes[b] = t;
      }
    }
  }
}

/** Checks that `box` lies inside `shape` and is non-empty; the error names `path`. */
export function checkBox(path: string, shape: Vec3, box: Box): void {
  for (let a = 0; a < 3; a++) {
    const s = box.start[a], n = box.size[a];
    if (!Number.isInteger(s) || !Number.isInteger(n) || s < 0 || n < 1 || s + n > shape[a]) {
      throw new Error(`${path}: region start ${box.start.join(",")} size ${box.size.join("×")} does not fit the volume's shape ${shape.join("×")} (z,y,x)`);
    }
  }
}

/** Copies the box `box` of `src` (shape `srcShape`) into a new array of the box's size. */
export function cropVoxels(src: VoxelArray, srcShape: Vec3, box: Box): VoxelArray {
  const [, ny, nx] = srcShape;
  const [z0, y0, x0] = box.start;
  const [dz, dy, dx] = box.size;
  const out = allocVoxels(dtypeOf(src), dz * dy * dx);
  for (let z = 0; z < dz; z++) {
    for (let y = 0; y < dy; y++) {
      const from = ((z0 + z) * ny + y0 + y) * nx + x0;
      out.set(src.subarray(from, from + dx), (z * dy + y) * dx);
    }
  }
  return out;
}

/** The region `box` of an in-memory volume (same header, cropped shape and shifted origin). */
export function cropVolume(vol: Volume, box: Box): Volume {
  checkBox("volume", vol.shape, box);
  const h = headerOf(vol, [...box.size]);
  if (vol.originUm) h.originUm = vol.originUm.map((o, a) => o + box.start[a] * vol.spacingUm[a]) as Vec3;
  return { ...h, data: cropVoxels(vol.data, vol.shape, box) };
}

/** Converts voxel values to another dtype (rounding and clamping to the target's range for integers). */
export function castVoxels(src: VoxelArray, dtype: DType): VoxelArray {
  if (dtypeOf(src) === dtype) return src;
  const out = allocVoxels(dtype, src.length);
  if (dtype === "float32" || dtype === "float64") {
    out.set(src);
    return out;
  }
  const [lo, hi] = INT_RANGE[dtype];
  for (let i = 0; i < src.length; i++) {
    const v = Math.round(src[i]);
    out[i] = v < lo ? lo : v > hi ? hi : v;
  }
  return out;
}

const INT_RANGE: Record<string, [number, number]> = {
  uint8: [0, 255], int8: [-128, 127], uint16: [0, 65535], int16: [-32768, 32767],
  uint32: [0, 4294967295], int32: [-2147483648, 2147483647],
};
