// A tiny TRAILMAP-style dataset for the ignore-label tests: bright tubes along x, labels only on a few z-planes
// with TRAILMAP's values (0 = not labelled, 1 = background, 2 = axon, 4 = axon edge).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeVolume } from "../../src/io/index.ts";
import type { Vec3 } from "../../src/io/index.ts";

export const TRAILMAP_MAP = "0=ignore,1=background,2=axon,4=axon";

/** TRAILMAP's value of voxel (z, y) in a volume with tubes of radius 2 centred at (z, y) = (c, c) for c in `centres`. */
function trailmapValue(z: number, y: number, centres: number[]): number {
  let d = Infinity;
  for (const cz of centres) for (const cy of centres) d = Math.min(d, Math.hypot(z - cz, y - cy));
  return d <= 1.5 ? 2 : d <= 2.5 ? 4 : 1;
}

/**
 * Writes <dir>/annotated/{images,labels}/axonalmarker_<i>.nii.gz (and test/ with the same for `test` cases):
 * images with tubes, labels with TRAILMAP's values on the z-planes `planes` and 0 elsewhere.
 */
export async function writeSparseDataset(dir: string, o: { cases?: number; test?: number; shape?: Vec3; planes?: number[] } = {}): Promise<void> {
  const shape = o.shape ?? [20, 24, 24];
  const planes = new Set(o.planes ?? [5, 14]);
  const [nz, ny, nx] = shape;
  const write = async (split: string, name: string, seed: number) => {
    const centres = [6 + (seed % 3), 15 + (seed % 2)];
    const image = new Uint16Array(nz * ny * nx), label = new Uint8Array(nz * ny * nx);
    let s = seed * 7919 + 1;
    const noise = () => { s = (s * 1103515245 + 12345) % 2 ** 31; return s / 2 ** 31; };
    for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) {
      const v = trailmapValue(z, y, centres);
      for (let x = 0; x < nx; x++) {
        const i = (z * ny + y) * nx + x;
        image[i] = Math.round((v === 1 ? 100 : v === 4 ? 400 : 800) + 80 * noise());
        if (planes.has(z)) label[i] = v;
      }
    }
    mkdirSync(join(dir, split, "images"), { recursive: true });
    mkdirSync(join(dir, split, "labels"), { recursive: true });
    const header = { shape: [...shape] as Vec3, spacingUm: [1, 1, 1] as Vec3 };
    await writeVolume(join(dir, split, "images", `${name}.nii.gz`), { ...header, dtype: "uint16", data: image });
    await writeVolume(join(dir, split, "labels", `${name}.nii.gz`), { ...header, dtype: "uint8", data: label });
  };
  for (let i = 0; i < (o.cases ?? 2); i++) await write("annotated", `axonalmarker_${i}`, i);
  for (let i = 0; i < (o.test ?? 0); i++) await write("test", `axonalmarker_${100 + i}`, 100 + i);
}
