// 3D skeletonization by the thinning algorithm of Lee, Kashyap & Chu (1994), "Building skeleton models via
// 3-D medial surface/axis thinning algorithms", CVGIP 56(6):462-478: the algorithm behind scikit-image's
// skeletonize_3d (and skeletonize on 3D input), which the SELMA3D evaluation uses for clDice. This follows
// scikit-image's implementation (after Arganda-Carreras' Skeletonize3D) step for step, in the same voxel
// order, so that it gives the very same skeleton: for each of six border directions, collect the simple,
// Euler-invariant, non-end border points, then re-check and delete them one by one.
//
// For speed, a voxel's 3×3×3 neighbourhood is one 27-bit integer (bit k = neighbour k in scikit-image's
// order, k = (dz+1)·9 + (dx+1)·3 + (dy+1)), and each pass walks only the remaining foreground voxels.
import type { Shape3 } from "./components.ts";

// Column δG26 of Table 2 of Lee et al. (1994), at odd indices of a 256-entry table.
const EULER_ODD = [1, -1, -1, 1, -3, -1, -1, 1, -1, 1, 1, -1, 3, 1, 1, -1, -3, -1,
  3, 1, 1, -1, 3, 1, -1, 1, 1, -1, 3, 1, 1, -1, -3, 3, -1, 1, 1,
  3, -1, 1, -1, 1, 1, -1, 3, 1, 1, -1, 1, 3, 3, 1, 5, 3, 3, 1,
  -1, 1, 1, -1, 3, 1, 1, -1, -7, -1, -1, 1, -3, -1, -1, 1, -1,
  1, 1, -1, 3, 1, 1, -1, -3, -1, 3, 1, 1, -1, 3, 1, -1, 1, 1,
  -1, 3, 1, 1, -1, -3, 3, -1, 1, 1, 3, -1, 1, -1, 1, 1, -1, 3,
  1, 1, -1, 1, 3, 3, 1, 5, 3, 3, 1, -1, 1, 1, -1, 3, 1, 1, -1];
const EULER_LUT = new Int8Array(256);
EULER_ODD.forEach((v, k) => { EULER_LUT[2 * k + 1] = v; });

// Neighbourhood indices of the eight octants, for the Euler characteristic (the first is bit 7 of the
// octant's table index, the last bit 1; bit 0, the centre, is always set).
const EULER_OCTANTS = [
  [2, 1, 11, 10, 5, 4, 14], [0, 9, 3, 12, 1, 10, 4], [8, 7, 17, 16, 5, 4, 14], [6, 15, 7, 16, 3, 12, 4],
  [20, 23, 19, 22, 11, 14, 10], [18, 21, 9, 12, 19, 22, 10], [26, 23, 17, 14, 25, 22, 16], [24, 25, 15, 16, 21, 22, 12],
];

// The four lower octants use neighbourhood bits 0–17 only, the four upper ones bits 9–26: two tables of
// 2¹⁸ entries give each half's sum of δG26 in one look-up (built on first use).
let eulerLow: Int8Array | null = null, eulerHigh: Int8Array | null = null;
function eulerTables(): [Int8Array, Int8Array] {
  if (!eulerLow || !eulerHigh) {
    const low = new Int8Array(1 << 18), high = new Int8Array(1 << 18);
    for (let v = 0; v < 1 << 18; v++) {
      for (let o = 0; o < 8; o++) {
        const shift = o < 4 ? 0 : 9;
        let n = 1;
        for (let j = 0; j < 7; j++) n |= ((v >>> (EULER_OCTANTS[o][j] - shift)) & 1) << (7 - j);
        if (o < 4) low[v] += EULER_LUT[n];
        else high[v] += EULER_LUT[n];
      }
    }
    eulerLow = low;
    eulerHigh = high;
  }
  return [eulerLow, eulerHigh];
}

const CENTRE = 1 << 13;
// bits whose coordinate along an axis (stride 1, 3 or 9 in the bit index) is 0 or 2: the ones that
// cannot move down or up along that axis
const AXIS_LOW: number[] = [], AXIS_HIGH: number[] = [];
for (const stride of [1, 3, 9]) {
  let low = 0, high = 0;
  for (let k = 0; k < 27; k++) {
    const coord = Math.floor(k / stride) % 3;
    if (coord === 0) low |= 1 << k;
    if (coord === 2) high |= 1 << k;
  }
  AXIS_LOW.push(low);
  AXIS_HIGH.push(high);
}

/** The 26-neighbour dilation of a set of cube positions (a 3×3×3 box, one axis at a time). */
function dilate(m: number): number {
  m |= ((m & ~AXIS_HIGH[0]) << 1) | ((m & ~AXIS_LOW[0]) >>> 1);
  m |= ((m & ~AXIS_HIGH[1]) << 3) | ((m & ~AXIS_LOW[1]) >>> 3);
  m |= ((m & ~AXIS_HIGH[2]) << 9) | ((m & ~AXIS_LOW[2]) >>> 9);
  return m;
}

/**
 * Whether deleting the centre keeps its foreground neighbours in at most one 26-connected piece. This is
 * what Lee et al.'s octree labelling (Figs. 6 and 7) decides: two positions of the cube are 26-adjacent
 * exactly when an octant holds both. Like scikit-image, no neighbours at all counts as simple.
 */
function isSimplePoint(nb: number): boolean {
  const m = nb & ~CENTRE;
  if (m === 0) return true;
  let piece = m & -m;
  for (;;) {
    const grown = dilate(piece) & m;
    if (grown === piece) return piece === m;
    piece = grown;
  }
}

/** Whether deleting the centre keeps the Euler characteristic (Lee et al., Table 2). */
function isEulerInvariant(nb: number, low: Int8Array, high: Int8Array): boolean {
  return low[nb & 0x3ffff] + high[nb >>> 9] === 0;
}

/** An end point: the centre and exactly one neighbour. */
function isEndpoint(nb: number): boolean {
  const m = nb & ~CENTRE;
  return m !== 0 && (m & (m - 1)) === 0;
}

/**
 * The skeleton (0/1 per voxel) of a binary volume (value > 0 is foreground), exactly as scikit-image's
 * skeletonize_3d computes it (its output divided by 255).
 */
export function skeletonize3d(mask: ArrayLike<number>, shape: Shape3): Uint8Array {
  const [nz, ny, nx] = shape;
  if (mask.length !== nz * ny * nx) throw new Error(`mask holds ${mask.length} voxels, shape ${shape.join("×")} needs ${nz * ny * nx}`);
  // padded copy: zero boundary conditions without bounds checks
  const P = nz + 2, R = ny + 2, C = nx + 2;
  const img = new Uint8Array(P * R * C);
  let nfg = 0;
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
    if (mask[(z * ny + y) * nx + x] > 0) { img[((z + 1) * R + y + 1) * C + x + 1] = 1; nfg++; }
  }
  // the foreground voxels in raster order (ascending padded index), the order in which scikit-image
  // visits them; only these can be border points, so each pass walks this list, not the whole volume
  const fg = new Int32Array(nfg);
  for (let i = 0, k = 0; k < nfg; i++) if (img[i] === 1) fg[k++] = i;
  const sP = R * C, sR = C;
  // neighbourhood bit (dp+1)·9 + (dc+1)·3 + (dr+1), as scikit-image's get_neighborhood orders it
  const offsets = new Int32Array(27);
  for (let dp = -1; dp <= 1; dp++) for (let dc = -1; dc <= 1; dc++) for (let dr = -1; dr <= 1; dr++) {
    offsets[(dp + 1) * 9 + (dc + 1) * 3 + (dr + 1)] = dp * sP + dr * sR + dc;
  }
  const neighbourhood = (i: number): number => {
    let nb = 0;
    for (let k = 0; k < 27; k++) nb |= img[i + offsets[k]] << k;
    return nb;
  };
  const [eulerLowHalf, eulerHighHalf] = eulerTables();
  const borders = [4, 3, 2, 1, 5, 6];
  const numBorders = P === 3 ? 4 : 6;
  // the neighbour that must be background for a border point of each type: N, S, E, W, U, B
  const borderOffset = [0, -1, 1, sR, -sR, sP, -sP];
  const candidates: number[] = [];
  let unchanged = 0;
  while (unchanged < numBorders) {
    unchanged = 0;
    for (let j = 0; j < numBorders; j++) {
      const off = borderOffset[borders[j]];
      candidates.length = 0;
      for (let k = 0; k < nfg; k++) {
        const i = fg[k];
        if (img[i + off] !== 0) continue;
        const nb = neighbourhood(i);
        if (isEndpoint(nb) || !isEulerInvariant(nb, eulerLowHalf, eulerHighHalf) || !isSimplePoint(nb)) continue;
        candidates.push(i);
      }
      let noChange = true;
      for (const i of candidates) {
        if (isSimplePoint(neighbourhood(i))) { img[i] = 0; noChange = false; }
      }
      if (noChange) unchanged++;
      else {
        let m = 0;
        for (let k = 0; k < nfg; k++) if (img[fg[k]] === 1) fg[m++] = fg[k];
        nfg = m;
      }
    }
  }
  const out = new Uint8Array(nz * ny * nx);
  for (let k = 0; k < nfg; k++) {
    const i = fg[k];
    const p = Math.floor(i / sP), r = Math.floor((i % sP) / sR), c = i % sR;
    out[((p - 1) * ny + r - 1) * nx + c - 1] = 1;
  }
  return out;
}

/** Number of skeleton voxels: the skeleton's length in voxels (as clDice counts it). */
export function skeletonLength(skeleton: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < skeleton.length; i++) if (skeleton[i] > 0) n++;
  return n;
}
