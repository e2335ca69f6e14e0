// 3D skeletonization by the thinning algorithm of Lee, Kashyap & Chu (1994), "Building skeleton models via
// 3-D medial surface/axis thinning algorithms", CVGIP 56(6):462-478: the algorithm behind scikit-image's
// skeletonize_3d (and skeletonize on 3D input), which the SELMA3D evaluation uses for clDice. This follows
// scikit-image's implementation (after Arganda-Carreras' Skeletonize3D) step for step, in the same voxel
// order, so that it gives the very same skeleton: for each of six border directions, collect the simple,
// Euler-invariant, non-end border points, then re-check and delete them one by one.
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

// Neighbourhood indices of the eight octants, for the Euler characteristic.
const EULER_OCTANTS = [
  [2, 1, 11, 10, 5, 4, 14], [0, 9, 3, 12, 1, 10, 4], [8, 7, 17, 16, 5, 4, 14], [6, 15, 7, 16, 3, 12, 4],
  [20, 23, 19, 22, 11, 14, 10], [18, 21, 9, 12, 19, 22, 10], [26, 23, 17, 14, 25, 22, 16], [24, 25, 15, 16, 21, 22, 12],
];

// Octree for labelling the 26 neighbours (centre removed): per octant, its cube indices and, per index, the
// octants to visit next (Figs. 6 and 7 of Lee et al.).
const OCTREE: Array<[number[], number[][]]> = [
  [[0, 1, 3, 4, 9, 10, 12], [[], [2], [3], [2, 3, 4], [5], [2, 5, 6], [3, 5, 7]]],
  [[1, 4, 10, 2, 5, 11, 13], [[1], [1, 3, 4], [1, 5, 6], [], [4], [6], [4, 6, 8]]],
  [[3, 4, 12, 6, 7, 14, 15], [[1], [1, 2, 4], [1, 5, 7], [], [4], [7], [4, 7, 8]]],
  [[4, 5, 13, 7, 15, 8, 16], [[1, 2, 3], [2], [2, 6, 8], [3], [3, 7, 8], [], [8]]],
  [[9, 10, 12, 17, 18, 20, 21], [[1], [1, 2, 6], [1, 3, 7], [], [6], [7], [6, 7, 8]]],
  [[10, 11, 13, 18, 21, 19, 22], [[1, 2, 5], [2], [2, 4, 8], [5], [5, 7, 8], [], [8]]],
  [[12, 14, 15, 20, 21, 23, 24], [[1, 3, 5], [3], [3, 4, 8], [5], [5, 6, 8], [], [8]]],
  [[13, 15, 16, 21, 22, 24, 25], [[2, 4, 6], [3, 4, 7], [4], [5, 6, 7], [6], [7], []]],
];
// The octant to start labelling from for each cube index.
const START_OCTANT = [1, 1, 2, 1, 1, 2, 3, 3, 4, 1, 1, 2, 1, 2, 3, 3, 4, 5, 5, 6, 5, 5, 6, 7, 7, 8];

function octreeLabeling(octant: number, label: number, cube: Uint8Array): void {
  const [indices, next] = OCTREE[octant - 1];
  for (let k = 0; k < 7; k++) {
    const idx = indices[k];
    if (cube[idx] === 1) {
      cube[idx] = label;
      for (const o of next[k]) octreeLabeling(o, label, cube);
    }
  }
}

const cube = new Uint8Array(26);

/** Whether deleting the centre keeps the 26 neighbours in one connected piece. */
function isSimplePoint(nb: Uint8Array): boolean {
  for (let i = 0; i < 13; i++) cube[i] = nb[i];
  for (let i = 14; i < 27; i++) cube[i - 1] = nb[i];
  let label = 2;
  for (let i = 0; i < 26; i++) {
    if (cube[i] === 1) {
      octreeLabeling(START_OCTANT[i], label, cube);
      label++;
      if (label - 2 >= 2) return false;
    }
  }
  return true;
}

function isEulerInvariant(nb: Uint8Array): boolean {
  let euler = 0;
  for (const oct of EULER_OCTANTS) {
    let n = 1;
    for (let j = 0; j < 7; j++) if (nb[oct[j]] === 1) n |= 1 << (7 - j);
    euler += EULER_LUT[n];
  }
  return euler === 0;
}

function isEndpoint(nb: Uint8Array): boolean {
  let s = 0;
  for (let j = 0; j < 27; j++) s += nb[j];
  return s === 2;
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
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
    if (mask[(z * ny + y) * nx + x] > 0) img[((z + 1) * R + y + 1) * C + x + 1] = 1;
  }
  const sP = R * C, sR = C;
  // neighbourhood index (dp+1)·9 + (dc+1)·3 + (dr+1), as scikit-image's get_neighborhood orders it
  const offsets = new Int32Array(27);
  for (let dp = -1; dp <= 1; dp++) for (let dc = -1; dc <= 1; dc++) for (let dr = -1; dr <= 1; dr++) {
    offsets[(dp + 1) * 9 + (dc + 1) * 3 + (dr + 1)] = dp * sP + dr * sR + dc;
  }
  const nb = new Uint8Array(27);
  const neighbourhood = (i: number) => { for (let k = 0; k < 27; k++) nb[k] = img[i + offsets[k]]; };
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
      for (let p = 1; p < P - 1; p++) for (let r = 1; r < R - 1; r++) {
        let i = p * sP + r * sR + 1;
        for (let c = 1; c < C - 1; c++, i++) {
          if (img[i] !== 1 || img[i + off] !== 0) continue;
          neighbourhood(i);
          if (isEndpoint(nb) || !isEulerInvariant(nb) || !isSimplePoint(nb)) continue;
          candidates.push(i);
        }
      }
      let noChange = true;
      for (const i of candidates) {
        neighbourhood(i);
        if (isSimplePoint(nb)) { img[i] = 0; noChange = false; }
      }
      if (noChange) unchanged++;
    }
  }
  const out = new Uint8Array(nz * ny * nx);
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
    out[(z * ny + y) * nx + x] = img[((z + 1) * R + y + 1) * C + x + 1];
  }
  return out;
}

/** Number of skeleton voxels: the skeleton's length in voxels (as clDice counts it). */
export function skeletonLength(skeleton: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < skeleton.length; i++) if (skeleton[i] > 0) n++;
  return n;
}
