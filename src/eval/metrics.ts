// The SELMA3D metrics, exactly as the challenge's evaluation computes them (its evaluate.py with panoptica
// and scikit-image; definitions in ../shared/selma3d.md). Any value > 0 is foreground.
//   Dice            2|P∩G| / (|P|+|G|); 1 when both are empty, 0 when exactly one is
//   clDice          Tprec = |S(G)∩P|/|S(G)|, Tsens = |S(P)∩G|/|S(P)|, 2·Tprec·Tsens/(Tprec+Tsens), with the
//                   Lee (1994) skeleton S; no guard, so 0/0 gives NaN as in the challenge (empty P or G, or
//                   Tprec = Tsens = 0)
//   panoptic quality  26-connected components of P and G are the instances; pairs with IoU ≥ 0.3 are
//                   matched greedily by decreasing IoU, one-to-one; RQ = TP/(TP+½FP+½FN), SQ = mean Dice of
//                   the matched pairs, PQ = RQ·SQ (panoptica's pq_dsc). With no TP, RQ = SQ = PQ = 0, except
//                   when neither P nor G has an instance: then all three are NaN (panoptica's edge cases).
// Extras, not part of the 2026 challenge's scores or aggregates (`extra` in CaseMetrics):
//   Betti errors    |β0(P) − β0(G)| and |β1(P) − β1(G)|, as the 2024–2025 editions scored (topology.ts)
//   HD95            the larger directed 95th-percentile surface distance, MONAI's definition (surface.ts)
import { binaryWithCount, countOnes, onesOf, withBinaryMasks } from "./binary.ts";
import { componentRuns, type ComponentRuns, type Shape3 } from "./components.ts";
import { skeletonVoxels } from "./skeleton.ts";
import { hausdorff95, type SurfaceDistanceResult } from "./surface.ts";
import { bettiNumbers, type Betti } from "./topology.ts";
import type { Category } from "../dataset/index.ts";

export type Mask = ArrayLike<number>;

/** The challenge's matching threshold on IoU (NaiveThresholdMatching(matching_threshold=0.3), with ≥). */
export const PQ_IOU_THRESHOLD = 0.3;

function checkShape(pred: Mask, gt: Mask, shape: Shape3): void {
  const n = shape[0] * shape[1] * shape[2];
  if (pred.length !== n || gt.length !== n) {
    throw new Error(`prediction holds ${pred.length} voxels and ground truth ${gt.length}; shape ${shape.join("×")} needs ${n}`);
  }
}

/** Volumetric Dice; 1 when both masks are empty, 0 when exactly one is. */
export function dice(pred: Mask, gt: Mask): number {
  if (pred.length !== gt.length) throw new Error(`prediction holds ${pred.length} voxels, ground truth ${gt.length}`);
  let p = 0, g = 0, both = 0;
  for (let i = 0; i < pred.length; i++) {
    const a = pred[i] > 0, b = gt[i] > 0;
    if (a) p++;
    if (b) g++;
    if (a && b) both++;
  }
  return diceOfCounts(p, g, both);
}

/** Dice from the voxel counts of the prediction, the ground truth and their intersection. */
function diceOfCounts(p: number, g: number, both: number): number {
  if (p === 0 && g === 0) return 1;
  if (p === 0 || g === 0) return 0;
  return (2 * both) / (p + g);
}

export interface ClDiceResult {
  clDice: number;
  /** Topology precision |S(G)∩P| / |S(G)|. */
  tprec: number;
  /** Topology sensitivity |S(P)∩G| / |S(P)|. */
  tsens: number;
  skeletonGtVoxels: number;
  skeletonPredVoxels: number;
}

/** Centerline Dice (Shit et al. 2021) with scikit-image's 3D skeleton, as panoptica's cldice computes it. */
export function clDice(pred: Mask, gt: Mask, shape: Shape3): ClDiceResult {
  checkShape(pred, gt, shape);
  const skelGt = skeletonVoxels(gt, shape), skelPred = skeletonVoxels(pred, shape);
  const sg = skelGt.length, sp = skelPred.length;
  let sgInP = 0, spInG = 0;
  for (let k = 0; k < sg; k++) if (pred[skelGt[k]] > 0) sgInP++;
  for (let k = 0; k < sp; k++) if (gt[skelPred[k]] > 0) spInG++;
  // no guard: 0/0 is NaN, as numpy gives it in the challenge's code
  const tprec = sgInP / sg;
  const tsens = spInG / sp;
  return { clDice: (2 * tprec * tsens) / (tprec + tsens), tprec, tsens, skeletonGtVoxels: sg, skeletonPredVoxels: sp };
}

export interface InstancePair {
  /** Ground-truth and predicted instance labels (26-connected components, numbered in raster order). */
  gt: number;
  pred: number;
  intersection: number;
  iou: number;
  dice: number;
}

export interface PanopticResult {
  pq: number;
  sq: number;
  rq: number;
  tp: number;
  fp: number;
  fn: number;
  predInstances: number;
  gtInstances: number;
  /** The matched pairs, in the order they were matched. */
  matches: InstancePair[];
}

/**
 * Every (gt, pred) instance pair that shares a voxel, with its IoU and Dice, sorted as panoptica sorts
 * them: by decreasing IoU; ties keep panoptica's order of increasing pred label, then gt label.
 * The overlaps come from the two labellings' runs, row by row, counted in a hash map keyed by the pair.
 */
export function overlappingPairs(gt: ComponentRuns, pred: ComponentRuns): InstancePair[] {
  const stride = gt.sizes.length; // gt labels are 1..stride-1
  const counts = new Map<number, number>();
  const rows = gt.rowFirst.length - 1;
  for (let r = 0; r < rows; r++) {
    let a = gt.rowFirst[r], b = pred.rowFirst[r];
    const aEnd = gt.rowFirst[r + 1], bEnd = pred.rowFirst[r + 1];
    while (a < aEnd && b < bEnd) {
      const overlap = Math.min(gt.runEnd[a], pred.runEnd[b]) - Math.max(gt.runStart[a], pred.runStart[b]);
      if (overlap > 0) {
        const key = pred.runLabel[b] * stride + gt.runLabel[a];
        counts.set(key, (counts.get(key) ?? 0) + overlap);
      }
      // the run that ends first overlaps nothing further
      if (gt.runEnd[a] <= pred.runEnd[b]) a++;
      else b++;
    }
  }
  const keys = Array.from(counts.keys()).sort((x, y) => x - y);
  const pairs: InstancePair[] = keys.map((key) => {
    const g = key % stride, p = Math.floor(key / stride);
    const inter = counts.get(key)!;
    const sa = gt.sizes[g], sb = pred.sizes[p];
    return { gt: g, pred: p, intersection: inter, iou: inter / (sa + sb - inter), dice: (2 * inter) / (sa + sb) };
  });
  // Array.prototype.sort is stable: equal IoUs stay in key order, as Python's sorted(reverse=True) keeps them
  return pairs.sort((x, y) => y.iou - x.iou);
}

/** Panoptic quality with Dice as the segmentation quality (panoptica's pq_dsc), as the challenge scores it. */
export function panopticQuality(pred: Mask, gt: Mask, shape: Shape3, iouThreshold = PQ_IOU_THRESHOLD): PanopticResult {
  checkShape(pred, gt, shape);
  const P = componentRuns(pred, shape, 26);
  const G = componentRuns(gt, shape, 26);
  const pairs = overlappingPairs(G, P);
  const gtTaken = new Uint8Array(G.count + 1), predTaken = new Uint8Array(P.count + 1);
  const matches: InstancePair[] = [];
  for (const pair of pairs) {
    if (!(pair.iou >= iouThreshold)) break; // sorted: the rest are below too
    if (gtTaken[pair.gt] || predTaken[pair.pred]) continue;
    gtTaken[pair.gt] = 1;
    predTaken[pair.pred] = 1;
    matches.push(pair);
  }
  return panopticFromMatches(matches, P.count, G.count);
}

/** RQ, SQ and PQ from the matched pairs and the instance counts, with panoptica's zero-TP edge cases. */
export function panopticFromMatches(matches: InstancePair[], predInstances: number, gtInstances: number): PanopticResult {
  const tp = matches.length, fp = predInstances - tp, fn = gtInstances - tp;
  let rq: number, sq: number;
  if (tp === 0) {
    rq = sq = predInstances + gtInstances > 0 ? 0 : NaN;
  } else {
    rq = tp / (tp + 0.5 * fp + 0.5 * fn);
    sq = matches.reduce((s, m) => s + m.dice, 0) / tp;
  }
  return { pq: sq * rq, sq, rq, tp, fp, fn, predInstances, gtInstances, matches };
}

/** Metrics beyond the challenge's, marked as extra wherever they are written. */
export interface ExtraMetrics {
  /** |β0(P) − β0(G)|: difference in 26-connected components. */
  betti0_error: number;
  /** |β1(P) − β1(G)|: difference in tunnels/handles. */
  betti1_error: number;
  /** 95th-percentile Hausdorff distance in voxels, and in µm with the ground truth's spacing; NaN when a mask is empty. */
  hd95_voxels: number;
  hd95_um: number;
  details: { bettiPred: Betti; bettiGt: Betti; surface: Omit<SurfaceDistanceResult, "hd95Voxels" | "hd95Um"> };
}

/** The extra metrics of one case: Betti-0/Betti-1 errors and HD95 (spacing z, y, x in µm). */
export function extraMetrics(pred: Mask, gt: Mask, shape: Shape3, spacingUm: readonly [number, number, number] = [1, 1, 1]): ExtraMetrics {
  checkShape(pred, gt, shape);
  const bettiPred = bettiNumbers(pred, shape), bettiGt = bettiNumbers(gt, shape);
  const { hd95Voxels, hd95Um, ...surface } = hausdorff95(pred, gt, shape, spacingUm);
  return {
    betti0_error: Math.abs(bettiPred.b0 - bettiGt.b0),
    betti1_error: Math.abs(bettiPred.b1 - bettiGt.b1),
    hd95_voxels: hd95Voxels,
    hd95_um: hd95Um,
    details: { bettiPred, bettiGt, surface },
  };
}

export interface CaseMetrics {
  dice: number;
  /** Contiguous cases. */
  cldice?: number;
  /** Isolated cases. */
  panoptic_quality?: number;
  /** What the headline numbers were computed from. */
  details: {
    predVoxels: number;
    gtVoxels: number;
    intersectionVoxels: number;
    clDice?: Omit<ClDiceResult, "clDice">;
    panoptic?: Omit<PanopticResult, "pq" | "matches">;
  };
  /** Extra metrics (not the challenge's), when asked for. */
  extra?: ExtraMetrics;
}

/**
 * The challenge's metrics for one case of a category: Dice with clDice (contiguous) or PQ (isolated); with
 * `extra`, also the extra metrics (spacing z, y, x in µm for HD95).
 */
export function caseMetrics(
  pred: Mask, gt: Mask, shape: Shape3, category: Category, opts: { extra?: boolean; spacingUm?: readonly [number, number, number] } = {},
): CaseMetrics {
  checkShape(pred, gt, shape);
  const p = binaryWithCount(pred), g = binaryWithCount(gt);
  return withBinaryMasks([p, g], () => binaryCaseMetrics(p.mask, g.mask, shape, category, opts));
}

function binaryCaseMetrics(
  p: Uint8Array, g: Uint8Array, shape: Shape3, category: Category, opts: { extra?: boolean; spacingUm?: readonly [number, number, number] },
): CaseMetrics {
  const pv = onesOf(p), gv = onesOf(g), both = countOnes(p, g);
  const details: CaseMetrics["details"] = { predVoxels: pv, gtVoxels: gv, intersectionVoxels: both };
  const result: CaseMetrics = { dice: diceOfCounts(pv, gv, both), details };
  if (category === "contiguous") {
    const { clDice: cl, ...rest } = clDice(p, g, shape);
    result.cldice = cl;
    details.clDice = rest;
  } else {
    const { pq, matches: _matches, ...rest } = panopticQuality(p, g, shape);
    result.panoptic_quality = pq;
    details.panoptic = rest;
  }
  if (opts.extra) result.extra = extraMetrics(p, g, shape, opts.spacingUm);
  return result;
}
