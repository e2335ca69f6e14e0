// 3D skeletonization by the thinning algorithm of Lee, Kashyap & Chu (1994), "Building skeleton models via
// 3-D medial surface/axis thinning algorithms", CVGIP 56(6):462-478: the algorithm behind scikit-image's
// skeletonize_3d (and skeletonize on 3D input), which the SELMA3D evaluation uses for clDice. This follows
// scikit-image's implementation (after Arganda-Carreras' Skeletonize3D) step for step, in the same voxel
// order, so that it gives the very same skeleton: for each of six border directions, collect the simple,
// Euler-invariant, non-end border points, then re-check and delete them one by one.
//
// For speed, a voxel's 3×3×3 neighbourhood is one 27-bit integer (bit k = neighbour k in scikit-image's
// order, k = (dz+1)·9 + (dx+1)·3 + (dy+1)), and each pass walks only the surface voxels (see skeletonize3d).
import { asBinary, onesOf } from "./binary.ts";
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
 * The padded copy the thinning works on, one byte per voxel with a background margin of one voxel (zero
 * boundary conditions without bounds checks): bit FG is the foreground; bit 1 + d says "not a candidate for
 * border direction d with the present neighbourhood"; IN_SURFACE marks voxels on the worklist. One array
 * keeps a neighbourhood's reads in few cache lines. The byte length is a multiple of 4 (read as words).
 */
interface Grid {
  vox: Uint8Array;
  /** Padded voxels, and the strides of the padded planes and rows. */
  size: number;
  sP: number;
  sR: number;
  shape: Shape3;
  foreground: number;
}

const FG = 1, IN_SURFACE = 0x80, KEEP_ON_CHANGE = FG | IN_SURFACE;

function paddedGrid(mask: ArrayLike<number>, shape: Shape3): Grid {
  const [nz, ny, nx] = shape;
  if (mask.length !== nz * ny * nx) throw new Error(`mask holds ${mask.length} voxels, shape ${shape.join("×")} needs ${nz * ny * nx}`);
  const m = asBinary(mask);
  const R = ny + 2, C = nx + 2, sP = R * C, size = (nz + 2) * sP;
  const vox = new Uint8Array((size + 3) & ~3);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) {
    const src = (z * ny + y) * nx;
    vox.set(m.subarray(src, src + nx), ((z + 1) * R + y + 1) * C + 1);
  }
  return { vox, size, sP, sR: C, shape, foreground: onesOf(m) };
}

/** The foreground bits of the three voxels b − 1, b, b + 1 of a row, at neighbourhood bits 0, 3 and 6. */
function row3(vox: Uint8Array, b: number): number {
  return (vox[b - 1] & FG) | ((vox[b] & FG) << 3) | ((vox[b + 1] & FG) << 6);
}

/**
 * The 3×3×3 neighbourhood of padded voxel i: bit (dp+1)·9 + (dc+1)·3 + (dr+1), as scikit-image's
 * get_neighborhood orders it (c is the padded array's fastest axis).
 */
function neighbourhood(vox: Uint8Array, i: number, sP: number, sR: number): number {
  return row3(vox, i - sP - sR) | (row3(vox, i - sP) << 1) | (row3(vox, i - sP + sR) << 2)
    | (row3(vox, i - sR) << 9) | (row3(vox, i) << 10) | (row3(vox, i + sR) << 11)
    | (row3(vox, i + sP - sR) << 18) | (row3(vox, i + sP) << 19) | (row3(vox, i + sP + sR) << 20);
}

/**
 * The worklist: a bitmap of the surface voxels (bit i of word i >>> 5), walked in ascending index, the raster
 * order in which scikit-image visits voxels; voxels join and leave it without any sorting. A second bitmap
 * marks the words that may be non-zero, so that a sparse surface costs little to walk.
 */
class Worklist {
  readonly bits: Int32Array;
  readonly words: Int32Array;
  constructor(size: number) {
    this.bits = new Int32Array((size + 31) >>> 5);
    this.words = new Int32Array((this.bits.length + 31) >>> 5);
  }
  add(i: number): void {
    const w = i >>> 5;
    this.bits[w] |= 1 << (i & 31);
    this.words[w >>> 5] |= 1 << (w & 31);
  }
  remove(i: number): void {
    this.bits[i >>> 5] &= ~(1 << (i & 31));
  }
}

/** Surface voxels (foreground with a 6-neighbour in the background) onto the worklist, marked IN_SURFACE. */
function surfaceWorklist(g: Grid): Worklist {
  const { vox, size, sP, sR } = g;
  const list = new Worklist(size);
  const words = new Uint32Array(vox.buffer, vox.byteOffset, vox.length >>> 2);
  for (let w = sP >>> 2; w < words.length; w++) {
    if ((words[w] & 0x01010101) === 0) continue; // four background voxels (only 0 and 1 so far)
    for (let i = w * 4, end = Math.min(i + 4, size - sP); i < end; i++) {
      if (vox[i] === 0) continue;
      if ((vox[i + 1] & vox[i - 1] & vox[i + sR] & vox[i - sR] & vox[i + sP] & vox[i - sP] & FG) === 0) {
        vox[i] |= IN_SURFACE;
        list.add(i);
      }
    }
  }
  return list;
}

/** Deletes padded voxel i: off the worklist, its neighbours' verdicts stale, its face neighbours on the surface. */
function deleteVoxel(g: Grid, list: Worklist, i: number): void {
  const { vox, sP, sR } = g;
  vox[i] = 0;
  list.remove(i);
  for (let dp = -sP; dp <= sP; dp += sP) for (let dr = -sR; dr <= sR; dr += sR) {
    const b = i + dp + dr;
    vox[b - 1] &= KEEP_ON_CHANGE;
    vox[b] &= KEEP_ON_CHANGE;
    vox[b + 1] &= KEEP_ON_CHANGE;
  }
  joinSurface(vox, list, i + 1);
  joinSurface(vox, list, i - 1);
  joinSurface(vox, list, i + sR);
  joinSurface(vox, list, i - sR);
  joinSurface(vox, list, i + sP);
  joinSurface(vox, list, i - sP);
}

/** A face neighbour of a deleted voxel is on the surface now (if it is foreground and not there yet). */
function joinSurface(vox: Uint8Array, list: Worklist, q: number): void {
  if (vox[q] === FG) { vox[q] |= IN_SURFACE; list.add(q); }
}

/**
 * One sub-iteration for border direction j (whose background neighbour is at offset `off`): collect the
 * simple, Euler-invariant, non-end border points, then re-check and delete them one by one. Returns the
 * number deleted.
 */
function thinBorder(g: Grid, list: Worklist, j: number, off: number, candidates: Int32Array): number {
  const ncand = borderCandidates(g, list, j, off, candidates);
  const { vox, sP, sR } = g;
  const notCandidate = 2 << j;
  let deleted = 0;
  for (let c = 0; c < ncand; c++) {
    const i = candidates[c];
    // re-checked as scikit-image does, unless no neighbour was deleted since the test above
    if ((vox[i] & notCandidate) === 0 && !isSimplePoint(neighbourhood(vox, i, sP, sR))) continue;
    deleteVoxel(g, list, i);
    deleted++;
  }
  return deleted;
}

/**
 * The simple, Euler-invariant, non-end border points for direction j, in ascending order (the worklist's
 * walk), into `candidates`; returns how many.
 */
function borderCandidates(g: Grid, list: Worklist, j: number, off: number, candidates: Int32Array): number {
  const { vox, sP, sR } = g;
  const { bits, words } = list;
  const notCandidate = 2 << j;
  const [low, high] = eulerTables();
  let ncand = 0;
  for (let s = 0; s < words.length; s++) {
    for (let ws = words[s]; ws !== 0;) {
      const lowWord = ws & -ws;
      ws ^= lowWord;
      const w = (s << 5) + 31 - Math.clz32(lowWord);
      let b = bits[w];
      if (b === 0) { words[s] &= ~lowWord; continue; } // emptied since: off the second bitmap
      while (b !== 0) {
        const lowBit = b & -b;
        b ^= lowBit;
        const i = (w << 5) + 31 - Math.clz32(lowBit);
        if ((vox[i + off] & FG) !== 0 || (vox[i] & notCandidate) !== 0) continue;
        const nb = neighbourhood(vox, i, sP, sR);
        // the bit now means "not a candidate", or for a candidate "neighbourhood unchanged since this test":
        // any deletion around clears it
        vox[i] |= notCandidate;
        if (isEndpoint(nb) || !isEulerInvariant(nb, low, high) || !isSimplePoint(nb)) continue;
        candidates[ncand++] = i;
      }
    }
  }
  return ncand;
}

/** The voxels (indices into the unpadded volume, ascending) still foreground in the grid. */
function remainingVoxels(g: Grid): Int32Array {
  const { vox, sP, sR } = g;
  const [, ny, nx] = g.shape;
  const words = new Uint32Array(vox.buffer, vox.byteOffset, vox.length >>> 2);
  const found: number[] = [];
  for (let w = 0; w < words.length; w++) {
    if ((words[w] & 0x01010101) === 0) continue;
    for (let i = w * 4; i < w * 4 + 4; i++) {
      if ((vox[i] & FG) === 0) continue;
      const z = Math.floor(i / sP) - 1, y = Math.floor((i % sP) / sR) - 1, x = (i % sR) - 1;
      found.push((z * ny + y) * nx + x);
    }
  }
  return Int32Array.from(found);
}

/**
 * The skeleton of a binary volume (value > 0 is foreground) as the indices of its voxels, ascending: exactly
 * scikit-image's skeletonize_3d.
 *
 * scikit-image scans the whole volume in every sub-iteration; only voxels on the surface (foreground with
 * a 6-neighbour in the background) can be border points, and a voxel's verdict depends only on its
 * 3×3×3 neighbourhood. So this keeps a worklist of the surface voxels in raster order, and remembers per
 * voxel and border direction that it was found not to be a candidate, until a neighbour is deleted: the
 * same candidates in the same order as scikit-image's scan, hence the same skeleton.
 */
export function skeletonVoxels(mask: ArrayLike<number>, shape: Shape3): Int32Array {
  const g = paddedGrid(mask, shape);
  const list = surfaceWorklist(g);
  const candidates = new Int32Array(g.foreground);
  const borders = [4, 3, 2, 1, 5, 6];
  const numBorders = shape[0] === 1 ? 4 : 6;
  // the neighbour that must be background for a border point of each type: N, S, E, W, U, B
  const borderOffset = [0, -1, 1, g.sR, -g.sR, g.sP, -g.sP];
  for (let unchanged = 0; unchanged < numBorders;) {
    unchanged = 0;
    for (let j = 0; j < numBorders; j++) if (thinBorder(g, list, j, borderOffset[borders[j]], candidates) === 0) unchanged++;
  }
  return remainingVoxels(g);
}

/** The skeleton (0/1 per voxel) of a binary volume (value > 0 is foreground), as scikit-image's skeletonize_3d (divided by 255). */
export function skeletonize3d(mask: ArrayLike<number>, shape: Shape3): Uint8Array {
  const voxels = skeletonVoxels(mask, shape);
  const out = new Uint8Array(shape[0] * shape[1] * shape[2]);
  for (let k = 0; k < voxels.length; k++) out[voxels[k]] = 1;
  return out;
}

/** Number of skeleton voxels: the skeleton's length in voxels (as clDice counts it). */
export function skeletonLength(skeleton: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < skeleton.length; i++) if (skeleton[i] > 0) n++;
  return n;
}
