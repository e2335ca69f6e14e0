// A raw volume with known answers for curation tests: tissue (spots on a bright base) in a known box,
// noise-only background around it, and special tiles: saturated, featureless, blurred, a duplicate.
import { blur3d } from "../../src/synth/draw.ts";
import { Rng } from "../../src/synth/rng.ts";

export const PATCH = 16;
export const SHAPE: [number, number, number] = [48, 96, 96];
/** Tissue box in y and x (all z): tiles with y, x starts in 16…64 are inside. */
export const TISSUE = { y: [16, 80], x: [16, 80] } as const;
export const SPECIAL = {
  saturated: [0, 16, 16],
  featureless: [0, 16, 32],
  blurred: [0, 16, 48],
  original: [0, 16, 64],
  duplicate: [16, 48, 48],
} as const;

/** A tile of spots (Gaussian blobs of σ ≈ 1.2) on a base of 300, without noise. */
function spots(rng: Rng, n: number, count: number): Float32Array {
  const v = new Float32Array(n * n * n).fill(300);
  for (let k = 0; k < count; k++) {
    const c = [rng.uniform(2, n - 2), rng.uniform(2, n - 2), rng.uniform(2, n - 2)];
    for (let z = 0; z < n; z++) for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) {
      const d2 = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2;
      v[(z * n + y) * n + x] += 400 * Math.exp(-d2 / (2 * 1.2 * 1.2));
    }
  }
  return v;
}

export function phantom(seed = 1): Uint16Array {
  const rng = new Rng(`curate-phantom/${seed}`);
  const [nz, ny, nx] = SHAPE;
  const P = PATCH;
  const out = new Uint16Array(nz * ny * nx);
  const put = (start: readonly number[], tile: Float32Array) => {
    for (let z = 0; z < P; z++) for (let y = 0; y < P; y++) for (let x = 0; x < P; x++) {
      out[((start[0] + z) * ny + start[1] + y) * nx + start[2] + x] = Math.max(0, Math.min(65535, Math.round(tile[(z * P + y) * P + x])));
    }
  };
  const noisy = (t: Float32Array) => t.map((v) => v + 5 * rng.normal());
  for (let z = 0; z < nz; z += P) for (let y = 0; y < ny; y += P) for (let x = 0; x < nx; x += P) {
    const inside = y >= TISSUE.y[0] && y < TISSUE.y[1] && x >= TISSUE.x[0] && x < TISSUE.x[1];
    put([z, y, x], noisy(inside ? spots(rng, P, 12) : new Float32Array(P * P * P).fill(100)));
  }
  const sat = noisy(spots(rng, P, 12));
  for (let i = 0; i < sat.length; i += 10) sat[i] = 65535; // 10 % saturated
  put(SPECIAL.saturated, sat);
  put(SPECIAL.featureless, noisy(new Float32Array(P * P * P).fill(300)));
  put(SPECIAL.blurred, noisy(blur3d(spots(rng, P, 12), [P, P, P], [2.5, 2.5, 2.5])));
  const original = noisy(spots(rng, P, 12));
  put(SPECIAL.original, original);
  put(SPECIAL.duplicate, original);
  return out;
}
