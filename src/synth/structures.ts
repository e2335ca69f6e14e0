// The structure types of the synthetic dataset: the challenge's ten (with its names and categories) and
// unannotated-only types that make pretraining data more diverse than the labels, as in SELMA3D; the taxonomy
// (names, categories, densities, roles) is src/dataset/taxonomy.ts's, in its order.
// Each draws its objects, in voxel units, into a Canvas: the label (what an annotator marks) and the signal.
import { type Canvas, type P3, addHalo, dist, drawTube, normalize, randomWalk, stampEllipsoid, stampSphere } from "./draw.ts";
import { type Rng } from "./rng.ts";
import { type Category, type Density, type Role, type StructureTaxon, selma3dType } from "../dataset/taxonomy.ts";

export type { Category, Density, Role };

/** A SELMA3D type (name, category, density and role from src/dataset's taxonomy) and how the phantom draws it. */
export interface StructureType extends StructureTaxon {
  description: string;
  draw: (rng: Rng, cv: Canvas) => void;
}

const volumeOf = (cv: Canvas) => cv.shape[0] * cv.shape[1] * cv.shape[2];
const meanSide = (cv: Canvas) => Math.cbrt(volumeOf(cv));
const randomPoint = (rng: Rng, cv: Canvas): P3 => [rng.uniform(0, cv.shape[0] - 1), rng.uniform(0, cv.shape[1] - 1), rng.uniform(0, cv.shape[2] - 1)];
/** How many objects for a density of one per `voxelsPerObject`, at least `min`. */
const countFor = (rng: Rng, cv: Canvas, voxelsPerObject: number, min = 1) =>
  Math.max(min, Math.round((volumeOf(cv) / voxelsPerObject) * rng.uniform(0.8, 1.2)));

/** A point on a random face of the canvas and a direction towards a point of its central half. */
function entry(rng: Rng, cv: Canvas): { p: P3; d: P3 } {
  const axis = rng.int(0, 2), high = rng.next() < 0.5;
  const p = randomPoint(rng, cv);
  p[axis] = high ? cv.shape[axis] - 1 : 0;
  const target = cv.shape.map((n) => rng.uniform(n / 4, (3 * n) / 4)) as P3;
  return { p, d: normalize([target[0] - p[0], target[1] - p[1], target[2] - p[2]]) };
}

/** Places non-overlapping ellipsoids (gap ≥ 1 voxel) by dart throwing over a hash grid. */
function packEllipsoids(rng: Rng, cv: Canvas, target: number, radius: () => P3, value: () => number, near?: () => P3): void {
  const cell = 12;
  const grid = new Map<string, Array<{ c: P3; r: number }>>();
  const key = (c: P3, dz = 0, dy = 0, dx = 0) => `${Math.floor(c[0] / cell) + dz},${Math.floor(c[1] / cell) + dy},${Math.floor(c[2] / cell) + dx}`;
  let placed = 0;
  for (let tries = 0; placed < target && tries < target * 20; tries++) {
    const c = near ? near() : randomPoint(rng, cv);
    const r = radius();
    const rmax = Math.max(...r);
    let free = true;
    for (let dz = -1; dz <= 1 && free; dz++) for (let dy = -1; dy <= 1 && free; dy++) for (let dx = -1; dx <= 1 && free; dx++) {
      for (const o of grid.get(key(c, dz, dy, dx)) ?? []) if (dist(o.c, c) < o.r + rmax + 1.5) { free = false; break; }
    }
    if (!free) continue;
    stampEllipsoid(cv, c, r, value());
    const k = key(c);
    if (!grid.has(k)) grid.set(k, []);
    grid.get(k)!.push({ c, r: rmax });
    placed++;
  }
}

/** A cell body with thin processes (microglia, astrocytes, TH neurons). */
function branchedCell(
  rng: Rng, cv: Canvas, c: P3, soma: number, processes: number, steps: [number, number], secondary: number, turn: number, procRadius: number,
): void {
  const value = rng.uniform(0.6, 1);
  stampSphere(cv, c, soma, value);
  for (let k = 0; k < processes; k++) {
    const d = rng.direction();
    const start: P3 = [c[0] + d[0] * soma * 0.8, c[1] + d[1] * soma * 0.8, c[2] + d[2] * soma * 0.8];
    const path = randomWalk(rng, start, d, rng.int(steps[0], steps[1]), 1, turn);
    drawTube(cv, path, (t) => procRadius * (1.3 - 0.5 * t), value * 0.8);
    for (let s = 0; s < secondary; s++) {
      const from = path[rng.int(Math.floor(path.length / 3), path.length - 1)];
      drawTube(cv, randomWalk(rng, from, rng.direction(), rng.int(3, Math.max(3, steps[0])), 1, turn), () => procRadius * 0.8, value * 0.7);
    }
  }
}

/** A branching tree of tubes: radius shrinks at each fork, down to `minRadius`. */
interface TreeOptions { minRadius: number; segment: number; turn: number; forks: number; depth: number; flatten: number; value: number }

function vesselTree(rng: Rng, cv: Canvas, p: P3, d: P3, r: number, opts: TreeOptions): void {
  const steps = Math.max(3, Math.round(opts.segment * rng.uniform(0.6, 1.3)));
  const path = randomWalk(rng, p, d, steps, 1, opts.turn);
  drawTube(cv, path, () => r, opts.value, opts.flatten);
  if (opts.depth <= 0 || r * 0.7 < opts.minRadius) return;
  const end = path[path.length - 1];
  const dirEnd = normalize([end[0] - path[path.length - 2][0], end[1] - path[path.length - 2][1], end[2] - path[path.length - 2][2]]);
  for (let f = 0; f < opts.forks; f++) {
    const child = normalize(dirEnd.map((v, a) => v + 0.9 * rng.direction()[a]) as P3);
    vesselTree(rng, cv, end, child, r * rng.uniform(0.6, 0.85), { ...opts, depth: opts.depth - 1 });
  }
}

/** Vessel trees entering through the canvas faces, one root per `voxelsPerRoot` voxels. */
function vessels(rng: Rng, cv: Canvas, voxelsPerRoot: number, radius: () => number, opts: Omit<Parameters<typeof vesselTree>[5], "value">, value: [number, number]): void {
  for (let i = countFor(rng, cv, voxelsPerRoot, 1); i > 0; i--) {
    const { p, d } = entry(rng, cv);
    vesselTree(rng, cv, p, d, radius(), { ...opts, value: rng.uniform(value[0], value[1]) });
  }
}

/** Fibres following one smooth bundle path with small lateral offsets (nerves). */
function bundle(rng: Rng, cv: Canvas, fibres: number, spread: number, radius: [number, number], turn: number): void {
  const { p, d } = entry(rng, cv);
  const spine = randomWalk(rng, p, d, Math.round(meanSide(cv) * 1.6), 1, turn);
  const value = rng.uniform(0.6, 1);
  for (let f = 0; f < fibres; f++) {
    const off: P3 = [rng.normal() * spread, rng.normal() * spread, rng.normal() * spread];
    const r = rng.uniform(radius[0], radius[1]);
    let wobble: P3 = [0, 0, 0];
    const path = spine.map((q) => {
      wobble = wobble.map((w) => 0.9 * w + 0.15 * rng.normal()) as P3;
      return [q[0] + off[0] + wobble[0], q[1] + off[1] + wobble[1], q[2] + off[2] + wobble[2]] as P3;
    });
    drawTube(cv, path, () => r, value * rng.uniform(0.8, 1));
  }
}

export const STRUCTURES: StructureType[] = [
  // ---- isolated, dense
  {
    ...selma3dType("cfos_neuron"),
    description: "c-Fos+ nuclei: many small round cells, radius 1.8–3 voxels",
    draw: (rng, cv) => packEllipsoids(rng, cv, countFor(rng, cv, 1600), () => {
      const r = rng.uniform(1.8, 3);
      return [r * rng.uniform(0.85, 1.1), r, r * rng.uniform(0.9, 1.1)];
    }, () => rng.uniform(0.4, 1)),
  },
  {
    ...selma3dType("cell_nuclei"),
    description: "cell nuclei: densely packed ellipsoids, radii 2.5–4.5 voxels",
    draw: (rng, cv) => packEllipsoids(rng, cv, countFor(rng, cv, 450),
      () => [rng.uniform(2.2, 3.4), rng.uniform(2.8, 4.5), rng.uniform(2.8, 4.5)], () => rng.uniform(0.5, 1)),
  },
  {
    ...selma3dType("microglia"),
    description: "microglia (held out of training): small soma with thin branching processes",
    draw: (rng, cv) => {
      const n = countFor(rng, cv, 6000);
      for (let i = 0; i < n; i++) branchedCell(rng, cv, randomPoint(rng, cv), rng.uniform(2.2, 3.2), rng.int(4, 6), [4, 8], 1, 0.35, 0.8);
    },
  },
  // ---- isolated, sparse
  {
    ...selma3dType("AD_plaques"),
    description: "amyloid-β plaques: few irregular blobs of varied size (radius 2.5–6) with a dim halo",
    draw: (rng, cv) => {
      const n = countFor(rng, cv, 60000, 2);
      for (let i = 0; i < n; i++) {
        const c = randomPoint(rng, cv);
        const r = rng.uniform(2.5, 6);
        const value = rng.uniform(0.7, 1);
        stampSphere(cv, c, r * 0.7, value);
        for (let k = rng.int(2, 5); k > 0; k--) {
          const d = rng.direction();
          stampSphere(cv, [c[0] + d[0] * r * 0.45, c[1] + d[1] * r * 0.45, c[2] + d[2] * r * 0.45], r * rng.uniform(0.35, 0.6), value);
        }
        addHalo(cv, c, r * 0.8, 3, 0.25 * value);
      }
    },
  },
  {
    ...selma3dType("protein"),
    description: "EGFP protein (held out of training): irregular, sparse bright patches",
    draw: (rng, cv) => {
      const n = countFor(rng, cv, 45000, 2);
      for (let i = 0; i < n; i++) {
        const c = randomPoint(rng, cv);
        for (let k = rng.int(2, 5); k > 0; k--) {
          const o: P3 = [c[0] + rng.normal() * 3, c[1] + rng.normal() * 4, c[2] + rng.normal() * 4];
          stampEllipsoid(cv, o, [rng.uniform(0.9, 1.8), rng.uniform(1, 2.6), rng.uniform(1, 2.6)], rng.uniform(0.8, 1.2));
        }
      }
    },
  },
  // ---- contiguous, dense
  {
    ...selma3dType("blood_vessel"),
    description: "blood vessels: a branching network, radii 1 to 6 voxels",
    draw: (rng, cv) => {
      const roots = countFor(rng, cv, 50000, 2);
      for (let i = 0; i < roots; i++) {
        const { p, d } = entry(rng, cv);
        vesselTree(rng, cv, p, d, rng.uniform(2, Math.min(6, meanSide(cv) / 10)), {
          minRadius: 0.9, segment: meanSide(cv) / 3, turn: 0.12, forks: 2, depth: 4, flatten: 1, value: rng.uniform(0.6, 1),
        });
      }
    },
  },
  {
    ...selma3dType("lymphatic_vessel"),
    description: "gut lymphatic vessels (held out of training): wide, flattened, sparsely branching vessels",
    draw: (rng, cv) => {
      const n = countFor(rng, cv, 90000, 2);
      for (let i = 0; i < n; i++) {
        const { p, d } = entry(rng, cv);
        d[0] *= 0.3;
        vesselTree(rng, cv, p, normalize(d), rng.uniform(4, Math.min(8, meanSide(cv) / 7)), {
          minRadius: 2.5, segment: meanSide(cv) * 0.7, turn: 0.06, forks: 1, depth: 1, flatten: 0.45, value: rng.uniform(0.5, 0.9),
        });
      }
    },
  },
  // ---- contiguous, sparse
  {
    ...selma3dType("peripheral_nerve"),
    description: "peripheral nerves: long smooth bundles of a few fibres",
    draw: (rng, cv) => {
      for (let i = countFor(rng, cv, 200000, 1); i > 0; i--) bundle(rng, cv, rng.int(3, 5), 1.2, [0.9, 1.3], 0.04);
    },
  },
  {
    ...selma3dType("axonalmarker"),
    description: "axonal markers: thin, sparse, winding axons about two voxels wide",
    draw: (rng, cv) => {
      const n = countFor(rng, cv, 45000, 2);
      for (let i = 0; i < n; i++) {
        const { p, d } = entry(rng, cv);
        const path = randomWalk(rng, p, d, Math.round(meanSide(cv) * 1.5), 1, 0.12);
        const value = rng.uniform(0.6, 1);
        drawTube(cv, path, () => 0.9, value);
        if (rng.next() < 0.5) {
          const branch = randomWalk(rng, path[rng.int(5, Math.floor(path.length / 2))], rng.direction(), Math.round(meanSide(cv) / 2), 1, 0.12);
          drawTube(cv, branch, () => 0.9, value);
        }
      }
    },
  },
  {
    ...selma3dType("gutnerve"),
    description: "gut nerves (held out of training): a mesh-like plexus of thin fibres with small ganglia",
    draw: (rng, cv) => {
      const [nz, ny, nx] = cv.shape;
      const spacing = rng.uniform(11, 15);
      const zc = rng.uniform(nz * 0.3, nz * 0.7), tiltY = rng.uniform(-0.2, 0.2), tiltX = rng.uniform(-0.2, 0.2);
      const nodes: P3[][] = [];
      for (let iy = 0; iy * spacing < ny + spacing; iy++) {
        nodes.push([]);
        for (let ix = 0; ix * spacing < nx + spacing; ix++) {
          const y = iy * spacing + rng.normal() * 2, x = ix * spacing + rng.normal() * 2;
          nodes[iy].push([zc + tiltY * (y - ny / 2) + tiltX * (x - nx / 2) + rng.normal() * 1.5, y, x]);
        }
      }
      const value = rng.uniform(0.6, 1);
      const link = (a: P3, b: P3) => {
        const mid: P3 = [(a[0] + b[0]) / 2 + rng.normal(), (a[1] + b[1]) / 2 + rng.normal() * 1.5, (a[2] + b[2]) / 2 + rng.normal() * 1.5];
        drawTube(cv, [a, mid, b], () => 0.9, value);
      };
      nodes.forEach((row, iy) => row.forEach((n, ix) => {
        if (ix + 1 < row.length) link(n, row[ix + 1]);
        if (iy + 1 < nodes.length) link(n, nodes[iy + 1][ix]);
        if (rng.next() < 0.3) stampEllipsoid(cv, n, [1.5, 2.5, 2.5], value);
      }));
    },
  },
  // ---- unannotated-only types: more diverse pretraining data than labels
  {
    ...selma3dType("astrocyte_gfap"),
    description: "astrocytes (GFAP): star-shaped cells with many short processes",
    draw: (rng, cv) => {
      for (let i = countFor(rng, cv, 9000); i > 0; i--) {
        branchedCell(rng, cv, randomPoint(rng, cv), rng.uniform(1.5, 2.2), rng.int(8, 12), [3, 6], 0, 0.2, 0.9);
      }
    },
  },
  {
    ...selma3dType("chondrocyte"),
    description: "chondrocytes: ellipsoidal cells stacked in short columns",
    draw: (rng, cv) => {
      for (let i = countFor(rng, cv, 5000); i > 0; i--) {
        const c = randomPoint(rng, cv), d = rng.direction(), r = rng.uniform(2, 3.2);
        for (let k = rng.int(2, 4); k > 0; k--) {
          const at: P3 = [c[0] + d[0] * k * 2.6 * r, c[1] + d[1] * k * 2.6 * r, c[2] + d[2] * k * 2.6 * r];
          stampEllipsoid(cv, at, [r * 0.7, r, r * 1.2], rng.uniform(0.5, 1));
        }
      }
    },
  },
  {
    ...selma3dType("sox9_chondrogenic"),
    description: "chondrogenic cells (Sox9): small nuclei clustered in condensations",
    draw: (rng, cv) => {
      const centres = Array.from({ length: rng.int(2, 4) }, () => randomPoint(rng, cv));
      packEllipsoids(rng, cv, countFor(rng, cv, 900), () => { const r = rng.uniform(1.5, 2.4); return [r, r, r]; }, () => rng.uniform(0.5, 1), () => {
        const c = rng.pick(centres);
        const s = meanSide(cv) / 5;
        return [c[0] + rng.normal() * s, c[1] + rng.normal() * s, c[2] + rng.normal() * s];
      });
    },
  },
  {
    ...selma3dType("th_neuron"),
    description: "dopaminergic neurons (TH): large sparse cells with one or two long processes",
    draw: (rng, cv) => {
      for (let i = countFor(rng, cv, 40000, 1); i > 0; i--) {
        branchedCell(rng, cv, randomPoint(rng, cv), rng.uniform(3.5, 5), rng.int(1, 2), [10, 20], 1, 0.15, 1);
      }
    },
  },
  {
    ...selma3dType("artery_sma"),
    description: "arteries (SMA): thick, smooth, rarely branching tubes",
    draw: (rng, cv) => vessels(rng, cv, 120000, () => rng.uniform(3.5, Math.min(7, meanSide(cv) / 8)),
      { minRadius: 2, segment: meanSide(cv) * 0.6, turn: 0.05, forks: 2, depth: 1, flatten: 1 }, [0.6, 1]),
  },
  {
    ...selma3dType("sympathetic_nerve_th"),
    description: "sympathetic nerves (TH): thin branching fibres",
    draw: (rng, cv) => vessels(rng, cv, 80000, () => 1.1,
      { minRadius: 0.5, segment: meanSide(cv) / 2.5, turn: 0.15, forks: 2, depth: 3, flatten: 1 }, [0.6, 1]),
  },
  {
    ...selma3dType("lyve1_lymphatic"),
    description: "lymphatic vessels (LYVE1): wide, blind-ended, slightly flattened vessels",
    draw: (rng, cv) => vessels(rng, cv, 100000, () => rng.uniform(3, Math.min(6, meanSide(cv) / 8)),
      { minRadius: 2, segment: meanSide(cv) * 0.5, turn: 0.08, forks: 2, depth: 1, flatten: 0.6 }, [0.5, 0.9]),
  },
  {
    ...selma3dType("cranial_nerve"),
    description: "cranial nerves: one thick bundle of many fibres",
    draw: (rng, cv) => bundle(rng, cv, rng.int(6, 10), 2.2, [0.9, 1.4], 0.03),
  },
];

/** The drawable type `name`; an unknown name is refused by src/dataset's selma3dType, listing the known ones. */
export function structureType(name: string): StructureType {
  const known = selma3dType(name);
  return STRUCTURES.find((s) => s.name === known.name)!;
}
