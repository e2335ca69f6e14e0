// The image physics of light-sheet microscopy, drawn per specimen so that domain shift exists between
// specimens: autofluorescent background with low-frequency texture, an anisotropic point-spread function
// (longer along z) whose axial extent grows away from the light sheet's waist, stripe artefacts along the
// illumination direction (x), attenuation with depth (z) and along the illumination path, Poisson–Gaussian
// noise, and a uint16 camera with specimen-specific gain and offset.
import { type Canvas, type Shape3, blurAxis } from "./draw.ts";
import { type Rng } from "./rng.ts";

export interface Specimen {
  /** Multiplies the structures' signal (stain brightness). */
  brightness: number;
  /** Autofluorescent background level (signal units) and the depth of its low-frequency texture (0..1). */
  background: number;
  textureDepth: number;
  /** PSF sigmas in voxels: lateral, axial at the sheet's waist, axial at the field's edge. */
  sigmaXY: number;
  sigmaZWaist: number;
  sigmaZEdge: number;
  /** Where across x the sheet is thinnest (fraction of the field). */
  waistX: number;
  /** Stripe artefacts: how many per 100 y-rows and their strength (fraction of the intensity). */
  stripesPer100: number;
  stripeStrength: number;
  /** Fraction of intensity lost from the top to the bottom of the volume (z), and along the illumination path (x). */
  attenuationZ: number;
  attenuationX: number;
  /** Expected photons for signal 1; camera gain (ADU per photon), offset (ADU), read noise (ADU). */
  photons: number;
  gain: number;
  offset: number;
  readNoise: number;
}

export function drawSpecimen(rng: Rng): Specimen {
  const sigmaZWaist = rng.uniform(1.4, 2.4);
  return {
    brightness: rng.uniform(0.6, 1.4),
    background: rng.uniform(0.06, 0.18),
    textureDepth: rng.uniform(0.3, 0.8),
    sigmaXY: rng.uniform(0.6, 1.0),
    sigmaZWaist,
    sigmaZEdge: sigmaZWaist * rng.uniform(1.3, 1.9),
    waistX: rng.uniform(0.3, 0.7),
    stripesPer100: rng.uniform(2, 10),
    stripeStrength: rng.uniform(0.1, 0.4),
    attenuationZ: rng.uniform(0.1, 0.5),
    attenuationX: rng.uniform(0.0, 0.35),
    photons: rng.uniform(80, 400),
    gain: rng.uniform(1.2, 4),
    offset: rng.uniform(90, 220),
    readNoise: rng.uniform(1.5, 6),
  };
}

/** Smooth noise in [0, 1]: random values on a grid every `cell` voxels, trilinearly interpolated. */
export function lowFrequency(rng: Rng, shape: Shape3, cell: number): Float32Array {
  const [nz, ny, nx] = shape;
  const gz = Math.ceil(nz / cell) + 2, gy = Math.ceil(ny / cell) + 2, gx = Math.ceil(nx / cell) + 2;
  const g = new Float32Array(gz * gy * gx);
  for (let i = 0; i < g.length; i++) g[i] = rng.next();
  const out = new Float32Array(nz * ny * nx);
  for (let z = 0; z < nz; z++) {
    const fz = z / cell, iz = Math.floor(fz), tz = fz - iz;
    for (let y = 0; y < ny; y++) {
      const fy = y / cell, iy = Math.floor(fy), ty = fy - iy;
      for (let x = 0; x < nx; x++) {
        const fx = x / cell, ix = Math.floor(fx), tx = fx - ix;
        const at = (a: number, b: number, c: number) => g[((iz + a) * gy + iy + b) * gx + ix + c];
        const c00 = at(0, 0, 0) * (1 - tx) + at(0, 0, 1) * tx, c01 = at(0, 1, 0) * (1 - tx) + at(0, 1, 1) * tx;
        const c10 = at(1, 0, 0) * (1 - tx) + at(1, 0, 1) * tx, c11 = at(1, 1, 0) * (1 - tx) + at(1, 1, 1) * tx;
        out[(z * ny + y) * nx + x] = (c00 * (1 - ty) + c01 * ty) * (1 - tz) + (c10 * (1 - ty) + c11 * ty) * tz;
      }
    }
  }
  return out;
}

/**
 * Renders `cv.signal` as a specimen would be imaged: the uint16 voxels of the image. `tissue` (0..1 per voxel)
 * limits autofluorescence to tissue; outside it only the camera's offset and noise remain.
 */
export function renderLsm(cv: Canvas, sp: Specimen, rng: Rng, tissue?: Float32Array): Uint16Array {
  const shape = cv.shape;
  const [nz, ny, nx] = shape;
  const n = nz * ny * nx;
  const texture = lowFrequency(rng, shape, Math.max(6, Math.round(Math.min(ny, nx) / 5)));
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const bg = sp.background * (1 - sp.textureDepth / 2 + sp.textureDepth * texture[i]);
    f[i] = (cv.signal[i] * sp.brightness + bg) * (tissue ? tissue[i] : 1);
  }
  // PSF: lateral blur, then axial blur whose sigma grows away from the sheet's waist along x
  let v = blurAxis(blurAxis(f, shape, 2, sp.sigmaXY), shape, 1, sp.sigmaXY);
  const waist = blurAxis(v, shape, 0, sp.sigmaZWaist), edge = blurAxis(v, shape, 0, sp.sigmaZEdge);
  const w = new Float32Array(nx);
  for (let x = 0; x < nx; x++) w[x] = Math.min(1, (2 * (x / Math.max(1, nx - 1) - sp.waistX)) ** 2);
  v = waist;
  for (let i = 0; i < n; i++) v[i] = waist[i] * (1 - w[i % nx]) + edge[i] * w[i % nx];
  // stripes: shadows (and a few bright streaks) cast along x from where an absorber sits, over a range of z
  const stripes = Math.round((ny / 100) * sp.stripesPer100 * rng.uniform(0.7, 1.3));
  for (let s = 0; s < stripes; s++) {
    const yc = rng.uniform(0, ny - 1), width = rng.uniform(0.6, 2.5), x0 = rng.int(0, Math.floor(nx / 2));
    const za = rng.int(0, nz - 1), zb = Math.min(nz, za + rng.int(Math.ceil(nz / 8), nz));
    const amp = sp.stripeStrength * rng.uniform(0.4, 1) * (rng.next() < 0.8 ? -1 : 0.6);
    for (let y = Math.max(0, Math.floor(yc - 3 * width)); y <= Math.min(ny - 1, Math.ceil(yc + 3 * width)); y++) {
      const k = 1 + amp * Math.exp(-((y - yc) ** 2) / (2 * width * width));
      for (let z = za; z < zb; z++) {
        const row = (z * ny + y) * nx;
        for (let x = x0; x < nx; x++) v[row + x] *= k;
      }
    }
  }
  // attenuation, photon counting, camera
  const out = new Uint16Array(n);
  for (let z = 0; z < nz; z++) {
    const az = 1 - sp.attenuationZ * (z / Math.max(1, nz - 1));
    for (let y = 0; y < ny; y++) {
      const row = (z * ny + y) * nx;
      for (let x = 0; x < nx; x++) {
        const a = az * Math.exp(-sp.attenuationX * (x / Math.max(1, nx - 1)));
        const counts = rng.poisson(Math.max(0, v[row + x] * a * sp.photons));
        const adu = sp.offset + sp.gain * counts + sp.readNoise * rng.normal();
        out[row + x] = adu < 0 ? 0 : adu > 65535 ? 65535 : Math.round(adu);
      }
    }
  }
  return out;
}
