// The voxel formula shared with fixtures/io/make_fixtures.py (pattern()), so either side checks every voxel.
import { createHash } from "node:crypto";
import { type DType, type Vec3, type Volume, makeVolume } from "../../src/io/index.ts";

export const DTYPE_LIST: DType[] = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"];

export function pattern(dtype: DType, shape: Vec3 = [5, 6, 7], spacingUm: Vec3 = [1, 1, 1]): Volume {
  const v = makeVolume(dtype, shape, spacingUm);
  const [nz, ny, nx] = shape;
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
    const base = z * 1009 + y * 101 + x * 7;
    let val: number;
    switch (dtype) {
      case "uint8": val = base % 256; break;
      case "int8": val = (base % 256) - 128; break;
      case "uint16": val = (base * 13) % 65536; break;
      case "int16": val = ((base * 13) % 65536) - 32768; break;
      case "uint32": val = (base * 100003) % 2 ** 32; break;
      case "int32": val = ((base * 100003) % 2 ** 32) - 2 ** 31; break;
      case "float32": val = (base % 1000) * 0.25 - 100; break;
      default: val = base * 0.001 - 3.5;
    }
    v.data[(z * ny + y) * nx + x] = val;
  }
  return v;
}

export function sameVoxels(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

/** The sha256 of bytes (voxels as little-endian bytes), as the fixture scripts compute it with numpy. */
export const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
