// Connected components of a binary volume (any value > 0 is foreground), as the SELMA3D evaluation finds
// instances for panoptic quality: 26-connectivity by default, labels 1..count numbered in raster order of
// each component's first voxel (as scipy.ndimage.label and skimage.measure.label number them).

import { asBinary, wordsOf } from "./binary.ts";

export type Shape3 = readonly [number, number, number];

export interface Components {
  /** Component label per voxel (0 = background), z-major like the input. */
  labels: Int32Array;
  count: number;
  /** Voxels per label; sizes[0] is the background's. */
  sizes: Int32Array;
}

/**
 * The earlier rows (dz, dy) a run can touch, each with how far the touch reaches along x: a run [s, e) of
 * the present row is adjacent to a run [s', e') of that row when s' < e + reach and e' > s − reach.
 */
function previousRows(connectivity: 6 | 18 | 26): Array<[number, number, number]> {
  if (connectivity === 6) return [[-1, 0, 0], [0, -1, 0]];
  if (connectivity === 18) return [[-1, -1, 0], [-1, 0, 1], [-1, 1, 0], [0, -1, 1]];
  return [[-1, -1, 1], [-1, 0, 1], [-1, 1, 1], [0, -1, 1]];
}

/** Connected components as runs along x: each row's runs, and the component (1..count) of each run. */
export interface ComponentRuns {
  /** Row r = z·ny + y holds runs rowFirst[r] .. rowFirst[r + 1] − 1, in order along x. */
  rowFirst: Int32Array;
  /** Run k covers x = runStart[k] .. runEnd[k] − 1 of its row. */
  runStart: Int32Array;
  runEnd: Int32Array;
  /** The component label of each run, numbered in raster order of each component's first voxel. */
  runLabel: Int32Array;
  count: number;
  /** Voxels per label; sizes[0] is the background's. */
  sizes: Int32Array;
}

/**
 * Connected components by runs: each row's foreground is cut into runs along x, a run is joined
 * (union-find) with the runs it touches in the earlier rows, and labels are given per run. The work
 * grows with the runs and the foreground, not with the volume.
 */
export function componentRuns(mask: ArrayLike<number>, shape: Shape3, connectivity: 6 | 18 | 26 = 26): ComponentRuns {
  const { rowFirst, runStart, runEnd, runLabel, nlabels, find } = joinRuns(mask, shape, connectivity);
  const [nz, ny, nx] = shape;
  const nruns = rowFirst[nz * ny];
  // resolve and renumber in raster order of each component's first voxel, which starts its first run
  const remap = new Int32Array(nlabels);
  const sizes = new Int32Array(nlabels);
  let count = 0, foreground = 0;
  for (let k = 0; k < nruns; k++) {
    const root = find(runLabel[k]);
    if (remap[root] === 0) remap[root] = ++count;
    const l = remap[root];
    runLabel[k] = l;
    sizes[l] += runEnd[k] - runStart[k];
    foreground += runEnd[k] - runStart[k];
  }
  sizes[0] = nz * ny * nx - foreground;
  const runs = (a: Int32Array) => a.subarray(0, nruns);
  return { rowFirst, runStart: runs(runStart), runEnd: runs(runEnd), runLabel: runs(runLabel), count, sizes: sizes.slice(0, count + 1) };
}

/** Connected components, labelled voxel by voxel (see componentRuns). */
export function labelComponents(mask: ArrayLike<number>, shape: Shape3, connectivity: 6 | 18 | 26 = 26): Components {
  const { rowFirst, runStart, runEnd, runLabel, count, sizes } = componentRuns(mask, shape, connectivity);
  const [nz, ny, nx] = shape;
  const labels = new Int32Array(nz * ny * nx);
  for (let r = 0; r < nz * ny; r++) {
    const base = r * nx;
    for (let k = rowFirst[r]; k < rowFirst[r + 1]; k++) labels.fill(runLabel[k], base + runStart[k], base + runEnd[k]);
  }
  return { labels, count, sizes };
}

/** The number of connected components, without labelling the voxels. */
export function countComponents(mask: ArrayLike<number>, shape: Shape3, connectivity: 6 | 18 | 26 = 26): number {
  const { nlabels, find } = joinRuns(mask, shape, connectivity);
  let count = 0;
  for (let l = 1; l < nlabels; l++) if (find(l) === l) count++;
  return count;
}

/** The runs of each row and their provisional labels, joined by union-find. */
function joinRuns(mask: ArrayLike<number>, shape: Shape3, connectivity: 6 | 18 | 26) {
  const [nz, ny, nx] = shape;
  const n = nz * ny * nx;
  if (mask.length !== n) throw new Error(`mask holds ${mask.length} voxels, shape ${shape.join("×")} needs ${n}`);
  const m = asBinary(mask), words = wordsOf(m);
  // runs in raster order: row r = z·ny + y holds runs rowFirst[r] .. rowFirst[r + 1] − 1
  const rowFirst = new Int32Array(nz * ny + 1);
  let cap = 1 << 12, nruns = 0;
  let runStart = new Int32Array(cap), runEnd = new Int32Array(cap), runLabel = new Int32Array(cap);
  let parent = new Int32Array(cap);
  let nlabels = 1; // provisional labels 1..nlabels − 1; parent[l] = l for a root
  const find = (a: number): number => {
    while (parent[a] !== a) { parent[a] = parent[parent[a]]; a = parent[a]; }
    return a;
  };
  const rows = previousRows(connectivity);
  const cursor = new Int32Array(rows.length);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      const r = z * ny + y, base = r * nx;
      rowFirst[r] = nruns;
      for (let k = 0; k < rows.length; k++) {
        const zz = z + rows[k][0], yy = y + rows[k][1];
        cursor[k] = zz >= 0 && yy >= 0 && yy < ny ? rowFirst[zz * ny + yy] : -1;
      }
      for (let x = 0; x < nx;) {
        const i = base + x;
        if ((i & 3) === 0 && x + 4 <= nx && words[i >>> 2] === 0) { x += 4; continue; } // four background voxels
        if (m[i] === 0) { x++; continue; }
        const s = x;
        while (x < nx && m[base + x] !== 0) x++;
        if (nruns === cap) {
          cap *= 2;
          const grow = (a: Int32Array) => { const b = new Int32Array(cap); b.set(a); return b; };
          runStart = grow(runStart); runEnd = grow(runEnd); runLabel = grow(runLabel); parent = grow(parent);
        }
        let label = 0;
        for (let k = 0; k < rows.length; k++) {
          if (cursor[k] < 0) continue;
          const reach = rows[k][2], last = rowFirst[(z + rows[k][0]) * ny + y + rows[k][1] + 1];
          // runs ending before this one's reach touch no later run of this row either
          while (cursor[k] < last && runEnd[cursor[k]] <= s - reach) cursor[k]++;
          for (let q = cursor[k]; q < last && runStart[q] < x + reach; q++) {
            const other = find(runLabel[q]);
            if (label === 0) label = other;
            else if (other !== label) {
              const lo = Math.min(label, other);
              parent[Math.max(label, other)] = lo;
              label = lo;
            }
          }
        }
        if (label === 0) { label = nlabels++; parent[label] = label; }
        runStart[nruns] = s; runEnd[nruns] = x; runLabel[nruns] = label;
        nruns++;
      }
    }
  }
  rowFirst[nz * ny] = nruns;
  return { rowFirst, runStart, runEnd, runLabel, nlabels, find };
}
