// 3D skeletonization by the thinning algorithm of Lee, Kashyap & Chu (1994), "Building skeleton models via
// 3-D medial surface/axis thinning algorithms", CVGIP 56(6):462-478: the algorithm behind scikit-image's
// skeletonize_3d (and skeletonize on 3D input), which the SELMA3D evaluation uses for clDice. This follows
// scikit-image's implementation (after Arganda-Carreras' Skeletonize3D) step for step, in the same voxel
// order, so that it gives the very same skeleton: for each of six border directions, collect the simple,
// Euler-invariant, non-end border points, then re-check and delete them one by one.
//
// For speed, a voxel's 3×3×3 neighbourhood is one 27-bit integer (bit k = neighbour k in scikit-image's
// order, k = (dz+1)·9 + (dx+1)·3 + (dy+1)), and each pass walks only the surface voxels (see skeletonize3d).
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
export function isSimplePoint(nb: number): boolean {
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

/** Lee et al.'s deletion test for a border point: not an end point, Euler-invariant and simple. */
export function isDeletable(nb: number): boolean {
  const [low, high] = eulerTables();
  return !isEndpoint(nb) && isEulerInvariant(nb, low, high) && isSimplePoint(nb);
}

/**
 * The skeleton (0/1 per voxel) of a binary volume (value > 0 is foreground), exactly as scikit-image's
 * skeletonize_3d computes it (its output divided by 255).
 *
 * scikit-image scans the whole volume in every sub-iteration; only voxels on the surface (foreground with
 * a 6-neighbour in the background) can be border points, and a voxel's verdict depends only on its
 * 3×3×3 neighbourhood. So this keeps a worklist of the surface voxels in raster order, and remembers per
 * voxel and border direction that it was found not to be a candidate, until a neighbour is deleted: the
 * same candidates in the same order as scikit-image's scan, hence the same skeleton.
 */
export function skeletonize3d(mask: ArrayLike<number>, shape: Shape3): Uint8Array {
  const [nz, ny, nx] = shape;
  if (mask.length !== nz * ny * nx) throw new Error(`mask holds ${mask.length} voxels, shape ${shape.join("×")} needs ${nz * ny * nx}`);
  // One byte per voxel of a padded copy (zero boundary conditions without bounds checks): bit 0 is the
  // foreground; bit 1 + d says "not a candidate for border direction d with the present neighbourhood";
  // IN_SURFACE marks voxels on the worklist. One array keeps a neighbourhood's reads in few cache lines.
  const FG = 1, IN_SURFACE = 0x80, KEEP_ON_CHANGE = FG | IN_SURFACE;
  const P = nz + 2, R = ny + 2, C = nx + 2;
  const sP = R * C, sR = C;
  const vox = new Uint8Array(P * sP);
  let nfg = 0;
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) {
    const src = (z * ny + y) * nx, dst = ((z + 1) * R + y + 1) * C + 1;
    for (let x = 0; x < nx; x++) if (mask[src + x] > 0) { vox[dst + x] = FG; nfg++; }
  }
  // neighbourhood bit (dp+1)·9 + (dc+1)·3 + (dr+1), as scikit-image's get_neighborhood orders it (c is
  // the padded array's fastest axis); rowOffsets[(dp+1)·3 + (dr+1)] is the row (dp, dr) at dc = 0
  const rowOffsets = new Int32Array(9);
  for (let dp = -1; dp <= 1; dp++) for (let dr = -1; dr <= 1; dr++) rowOffsets[(dp + 1) * 3 + dr + 1] = dp * sP + dr * sR;
  const neighbourhood = (i: number): number => {
    let nb = 0;
    for (let row = 0; row < 9; row++) {
      const b = i + rowOffsets[row], bit = (row - (row % 3)) * 3 + (row % 3);
      nb |= ((vox[b - 1] & FG) << bit) | ((vox[b] & FG) << (bit + 3)) | ((vox[b + 1] & FG) << (bit + 6));
    }
    return nb;
  };
  const faceOffsets = [1, -1, sR, -sR, sP, -sP];
  // the worklist: a bitmap of the surface voxels (bit i of word i >>> 5), walked in ascending index, the
  // raster order in which scikit-image visits voxels; voxels join and leave it without any sorting
  const surface = new Int32Array((vox.length + 31) >>> 5);
  let firstWord = surface.length, lastWord = -1;
  for (let i = sP; i < vox.length - sP; i++) {
    if (vox[i] === 0) continue;
    if ((vox[i + 1] & vox[i - 1] & vox[i + sR] & vox[i - sR] & vox[i + sP] & vox[i - sP] & FG) === 0) {
      surface[i >>> 5] |= 1 << (i & 31);
      vox[i] |= IN_SURFACE;
      firstWord = Math.min(firstWord, i >>> 5);
      lastWord = i >>> 5;
    }
  }
  const candidates = new Int32Array(nfg);
  const [eulerLowHalf, eulerHighHalf] = eulerTables();
  const borders = [4, 3, 2, 1, 5, 6];
  const numBorders = P === 3 ? 4 : 6;
  // the neighbour that must be background for a border point of each type: N, S, E, W, U, B
  const borderOffset = [0, -1, 1, sR, -sR, sP, -sP];
  let unchanged = 0;
  while (unchanged < numBorders) {
    unchanged = 0;
    for (let j = 0; j < numBorders; j++) {
      const off = borderOffset[borders[j]], notCandidate = 2 << j;
      let ncand = 0;
      for (let word = firstWord; word <= lastWord; word++) {
        for (let bits = surface[word]; bits !== 0;) {
          const low = bits & -bits;
          bits ^= low;
          const i = (word << 5) + 31 - Math.clz32(low);
          if ((vox[i + off] & FG) !== 0 || (vox[i] & notCandidate) !== 0) continue;
          const nb = neighbourhood(i);
          if (isEndpoint(nb) || !isEulerInvariant(nb, eulerLowHalf, eulerHighHalf) || !isSimplePoint(nb)) { vox[i] |= notCandidate; continue; }
          // the bit now means "neighbourhood unchanged since this test": any deletion around clears it
          vox[i] |= notCandidate;
          candidates[ncand++] = i;
        }
      }
      let deleted = 0;
      for (let c = 0; c < ncand; c++) {
        const i = candidates[c];
        // re-checked as scikit-image does, unless no neighbour was deleted since the test above
        if ((vox[i] & notCandidate) === 0 && !isSimplePoint(neighbourhood(i))) continue;
        vox[i] = 0;
        surface[i >>> 5] &= ~(1 << (i & 31));
        deleted++;
        // the neighbours' verdicts are stale; face neighbours are on the surface now
        for (let row = 0; row < 9; row++) {
          const b = i + rowOffsets[row];
          vox[b - 1] &= KEEP_ON_CHANGE;
          vox[b] &= KEEP_ON_CHANGE;
          vox[b + 1] &= KEEP_ON_CHANGE;
        }
        for (const o of faceOffsets) {
          const q = i + o;
          if (vox[q] === FG) { vox[q] |= IN_SURFACE; surface[q >>> 5] |= 1 << (q & 31); }
        }
      }
      if (deleted === 0) unchanged++;
    }
  }
  const out = new Uint8Array(nz * ny * nx);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) {
    const src = ((z + 1) * R + y + 1) * C + 1, dst = (z * ny + y) * nx;
    for (let x = 0; x < nx; x++) out[dst + x] = vox[src + x] & FG;
  }
  return out;
}

/** Number of skeleton voxels: the skeleton's length in voxels (as clDice counts it). */
export function skeletonLength(skeleton: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < skeleton.length; i++) if (skeleton[i] > 0) n++;
  return n;
}
