// Drawing primitives for the phantom: solid shapes stamped into a label mask (what is annotated) and a signal
// volume (how much fluorophore is there), and the separable Gaussian blur used for the optics.
export type Shape3 = [number, number, number];
export type P3 = [number, number, number];

/** A label mask and a fluorophore density of one shape, z-major. */
export interface Canvas {
  shape: Shape3;
  label: Uint8Array;
  signal: Float32Array;
}

export function makeCanvas(shape: Shape3): Canvas {
  const n = shape[0] * shape[1] * shape[2];
  return { shape, label: new Uint8Array(n), signal: new Float32Array(n) };
}

/**
 * Stamps an axis-aligned ellipsoid with radii (rz, ry, rx) at `c`: label 1 inside (when `labelled`), signal
 * raised to `value` inside. Cut at the canvas border.
 */
export function stampEllipsoid(cv: Canvas, c: P3, radii: P3, value: number, labelled = true): void {
  const [nz, ny, nx] = cv.shape;
  const [rz, ry, rx] = radii.map((r) => Math.max(r, 0.5)) as P3;
  const z0 = Math.max(0, Math.ceil(c[0] - rz)), z1 = Math.min(nz - 1, Math.floor(c[0] + rz));
  const y0 = Math.max(0, Math.ceil(c[1] - ry)), y1 = Math.min(ny - 1, Math.floor(c[1] + ry));
  const x0 = Math.max(0, Math.ceil(c[2] - rx)), x1 = Math.min(nx - 1, Math.floor(c[2] + rx));
  for (let z = z0; z <= z1; z++) {
    const dz = (z - c[0]) / rz;
    for (let y = y0; y <= y1; y++) {
      const dy = (y - c[1]) / ry;
      const dzy = dz * dz + dy * dy;
      if (dzy > 1) continue;
      const row = (z * ny + y) * nx;
      for (let x = x0; x <= x1; x++) {
        const dx = (x - c[2]) / rx;
        if (dzy + dx * dx > 1) continue;
        if (labelled) cv.label[row + x] = 1;
        if (cv.signal[row + x] < value) cv.signal[row + x] = value;
      }
    }
  }
}

export function stampSphere(cv: Canvas, c: P3, r: number, value: number, labelled = true): void {
  stampEllipsoid(cv, c, [r, r, r], value, labelled);
}

/** Adds `value` to the signal in a shell between radius r and r+width around `c` (a halo, not labelled). */
export function addHalo(cv: Canvas, c: P3, r: number, width: number, value: number): void {
  const [nz, ny, nx] = cv.shape;
  const R = r + width;
  for (let z = Math.max(0, Math.ceil(c[0] - R)); z <= Math.min(nz - 1, c[0] + R); z++) {
    for (let y = Math.max(0, Math.ceil(c[1] - R)); y <= Math.min(ny - 1, c[1] + R); y++) {
      for (let x = Math.max(0, Math.ceil(c[2] - R)); x <= Math.min(nx - 1, c[2] + R); x++) {
        const d = Math.hypot(z - c[0], y - c[1], x - c[2]);
        if (d > r && d <= R) cv.signal[(z * ny + y) * nx + x] += value * (1 - (d - r) / width);
      }
    }
  }
}

/**
 * Draws a tube along the polyline `pts` with radius `radius(t)` (t in [0, 1] along the line), stamping
 * ellipsoids every half voxel so that even one-voxel tubes stay 26-connected. `flatten` squashes the cross
 * section along z (flattened lymphatic vessels).
 */
export function drawTube(cv: Canvas, pts: P3[], radius: (t: number) => number, value: number, flatten = 1): void {
  if (pts.length === 0) return;
  let total = 0;
  for (let i = 1; i < pts.length; i++) total += dist(pts[i - 1], pts[i]);
  let along = 0;
  stampTubePoint(cv, pts[0], radius(0), value, flatten);
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1], b = pts[i];
    const len = dist(a, b);
    const steps = Math.max(1, Math.ceil(len / 0.5));
    for (let s = 1; s <= steps; s++) {
      const f = s / steps;
      const p: P3 = [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
      stampTubePoint(cv, p, radius(total > 0 ? (along + len * f) / total : 0), value, flatten);
    }
    along += len;
  }
}

function stampTubePoint(cv: Canvas, p: P3, r: number, value: number, flatten: number): void {
  if (r < 0.87) {
    // thinner than a voxel: the nearest voxel only
    const [nz, ny, nx] = cv.shape;
    const z = Math.round(p[0]), y = Math.round(p[1]), x = Math.round(p[2]);
    if (z < 0 || y < 0 || x < 0 || z >= nz || y >= ny || x >= nx) return;
    const i = (z * ny + y) * nx + x;
    cv.label[i] = 1;
    if (cv.signal[i] < value) cv.signal[i] = value;
    return;
  }
  stampEllipsoid(cv, p, [Math.max(0.87, r * flatten), r, r], value);
}

export function dist(a: P3, b: P3): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

/**
 * A smooth random walk of `steps` steps of `stepLen` voxels from `start` along `dir`, turning by at most
 * `turn` (radians-ish) per step; the direction is renormalised each step.
 */
export function randomWalk(rnd: { normal(): number }, start: P3, dir: P3, steps: number, stepLen: number, turn: number): P3[] {
  const pts: P3[] = [[...start]];
  let d: P3 = [...dir];
  let p: P3 = [...start];
  for (let i = 0; i < steps; i++) {
    d = normalize([d[0] + turn * rnd.normal(), d[1] + turn * rnd.normal(), d[2] + turn * rnd.normal()]);
    p = [p[0] + d[0] * stepLen, p[1] + d[1] * stepLen, p[2] + d[2] * stepLen];
    pts.push(p);
  }
  return pts;
}

export function normalize(v: P3): P3 {
  const n = Math.hypot(v[0], v[1], v[2]) || 1;
  return [v[0] / n, v[1] / n, v[2] / n];
}

function gaussianKernel(sigma: number): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float32Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= s;
  return k;
}

/** Gaussian blur of `v` (shape z, y, x) along one axis (0 = z, 1 = y, 2 = x), borders clamped. */
export function blurAxis(v: Float32Array, shape: Shape3, axis: 0 | 1 | 2, sigma: number): Float32Array {
  if (sigma <= 0.05) return v;
  const [nz, ny, nx] = shape;
  const k = gaussianKernel(sigma);
  const r = (k.length - 1) >> 1;
  const out = new Float32Array(v.length);
  const n = shape[axis];
  const stride = axis === 0 ? ny * nx : axis === 1 ? nx : 1;
  const line = new Float32Array(n + 2 * r);
  // every line along `axis`: copy with clamped padding, convolve, write back
  const outer = axis === 0 ? ny * nx : axis === 1 ? nz * nx : nz * ny;
  for (let o = 0; o < outer; o++) {
    const base = axis === 0 ? o : axis === 1 ? Math.floor(o / nx) * ny * nx + (o % nx) : o * nx;
    for (let i = 0; i < n + 2 * r; i++) line[i] = v[base + Math.min(n - 1, Math.max(0, i - r)) * stride];
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < k.length; j++) s += k[j] * line[i + j];
      out[base + i * stride] = s;
    }
  }
  return out;
}

/** Separable 3D Gaussian blur with sigmas (z, y, x) in voxels. */
export function blur3d(v: Float32Array, shape: Shape3, sigma: P3): Float32Array {
  return blurAxis(blurAxis(blurAxis(v, shape, 2, sigma[2]), shape, 1, sigma[1]), shape, 0, sigma[0]);
}
