// A raw light-sheet-like volume of any size for the Task 2 benchmarks, written slab by slab (memory does not
// grow with it): a lumpy ellipsoid of tissue (base 300, spots from a cheap periodic texture) in a noise-only
// background of 100, Gaussian-ish noise of σ ≈ 6, uint16. Reused when the file is already there.
import { existsSync } from "node:fs";
import { type Vec3, createVolume } from "../src/io/index.ts";
import { Rng } from "../src/synth/rng.ts";

export async function rawVolume(path: string, shape: Vec3): Promise<void> {
  if (existsSync(path)) return;
  const [nz, ny, nx] = shape;
  const sink = await createVolume(path, { dtype: "uint16", shape, spacingUm: [2, 1, 1] }, { tiffCompression: "none" });
  const rng = new Rng(`bench/raw/${shape.join("x")}`);
  const noise = Float32Array.from({ length: 1 << 16 }, () => 6 * (rng.next() + rng.next() + rng.next() - 1.5) * 2);
  const slab = 16;
  try {
    for (let z0 = 0; z0 < nz; z0 += slab) {
      const dz = Math.min(slab, nz - z0);
      const out = new Uint16Array(dz * ny * nx);
      for (let z = 0; z < dz; z++) {
        const zz = z0 + z, fz = (zz - nz / 2) / (0.45 * nz);
        for (let y = 0; y < ny; y++) {
          const fy = (y - ny / 2) / (0.4 * ny);
          const o = (z * ny + y) * nx;
          const sz = Math.sin(zz / 2.1), sy = Math.sin(y / 2.3);
          for (let x = 0; x < nx; x++) {
            const fx = (x - nx / 2) / (0.4 * nx);
            const inside = fz * fz + fy * fy + fx * fx < 1 + 0.15 * Math.sin(7 * Math.atan2(fy, fx));
            let v = 100 + noise[(o + x + zz * 7919) & 0xffff];
            if (inside) v += 200 + (sz * sy * Math.sin(x / 1.9) > 0.6 ? 400 : 0);
            out[o + x] = v;
          }
        }
      }
      await sink.writeSlab(out);
    }
    await sink.close();
  } catch (err) {
    await sink.abort();
    throw err;
  }
}
