// The SELMA3D metrics: known answers on hand-made volumes, agreement with a slow, obvious reference
// (flood-filled instances, per-instance masks, brute-force overlaps), and with the challenge's own
// computation in Python (fixtures/eval/make_metric_fixtures.py: numpy, scikit-image, panoptica's steps).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { Shape3 } from "../../src/eval/components.ts";
import { evaluateCase, evaluateFolder } from "../../src/eval/evaluate.ts";
import { caseMetrics, clDice, dice, panopticQuality } from "../../src/eval/metrics.ts";
import { floodFill } from "./reference.ts";

/** A volume of `shape` with the boxes [z0, z1) × [y0, y1) × [x0, x1) set. */
function boxes(shape: Shape3, ...bs: Array<[number, number, number, number, number, number]>): Uint8Array {
  const [, ny, nx] = shape;
  const m = new Uint8Array(shape[0] * ny * nx);
  for (const [z0, z1, y0, y1, x0, x1] of bs) {
    for (let z = z0; z < z1; z++) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[(z * ny + y) * nx + x] = 1;
  }
  return m;
}

const close = (got: number, want: number, what: string, tol = 1e-12) => {
  if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `${what}: ${got}, expected NaN`);
  else assert.ok(Math.abs(got - want) <= tol, `${what}: ${got}, expected ${want}`);
};

test("Dice: two cubes, one shifted; both empty is 1, one empty is 0; any value > 0 is foreground", () => {
  const s: Shape3 = [6, 6, 8];
  const g = boxes(s, [1, 5, 1, 5, 1, 5]);
  const p = boxes(s, [1, 5, 1, 5, 2, 6]); // 4×4×3 = 48 shared of 64 + 64
  close(dice(p, g), 96 / 128, "shifted cube");
  close(dice(g, g), 1, "identical");
  const empty = new Uint8Array(g.length);
  close(dice(empty, empty), 1, "both empty");
  close(dice(empty, g), 0, "prediction empty");
  close(dice(g, empty), 0, "truth empty");
  const weighted = Float32Array.from(p, (v) => (v ? 0.7 : -1));
  close(dice(weighted, g), 96 / 128, "values > 0");
});

test("PQ: IoU exactly 0.3 matches (≥), just below does not", () => {
  const s: Shape3 = [1, 1, 24];
  const g = boxes(s, [0, 1, 0, 1, 0, 13]);
  const at = panopticQuality(boxes(s, [0, 1, 0, 1, 7, 20]), g, s); // I = 6, union 20: IoU 0.3
  assert.deepEqual([at.tp, at.fp, at.fn], [1, 0, 0]);
  close(at.sq, 12 / 26, "SQ is the Dice of the pair");
  close(at.pq, 12 / 26, "PQ");
  const below = panopticQuality(boxes(s, [0, 1, 0, 1, 8, 21]), g, s); // I = 5, union 21
  assert.deepEqual([below.tp, below.fp, below.fn], [0, 1, 1]);
  assert.equal(below.pq, 0);
  assert.equal(below.rq, 0);
});

test("PQ: greedy by decreasing IoU, each instance matched once; ties go to the lower label", () => {
  // one truth [0, 10) on a row; predictions [0, 6) (IoU 0.6) and [7, 10) (IoU 0.3): the better one wins
  const s: Shape3 = [1, 1, 12];
  const g = boxes(s, [0, 1, 0, 1, 0, 10]);
  const r = panopticQuality(boxes(s, [0, 1, 0, 1, 0, 6], [0, 1, 0, 1, 7, 10]), g, s);
  assert.deepEqual([r.tp, r.fp, r.fn], [1, 1, 0]);
  assert.deepEqual([r.matches[0].gt, r.matches[0].pred], [1, 1]);
  close(r.rq, 2 / 3, "RQ = TP/(TP + FP/2 + FN/2)");
  close(r.sq, 12 / 16, "SQ");
  close(r.pq, 0.5, "PQ");
  // one prediction over two truths with equal IoU 4/9: panoptica's order (pred label, then truth label)
  const s2: Shape3 = [1, 1, 9];
  const r2 = panopticQuality(boxes(s2, [0, 1, 0, 1, 0, 9]), boxes(s2, [0, 1, 0, 1, 0, 4], [0, 1, 0, 1, 5, 9]), s2);
  assert.deepEqual([r2.tp, r2.fp, r2.fn], [1, 0, 1]);
  assert.deepEqual([r2.matches[0].gt, r2.matches[0].pred], [1, 1]);
});

test("PQ: instances are 26-connected (corner contact joins), and the empty cases", () => {
  const s: Shape3 = [2, 2, 2];
  const diag = new Uint8Array(8);
  diag[0] = diag[7] = 1; // (0,0,0) and (1,1,1) touch by a corner: one instance
  const r = panopticQuality(diag, diag, s);
  assert.deepEqual([r.predInstances, r.gtInstances, r.tp], [1, 1, 1]);
  assert.equal(r.pq, 1);
  const empty = new Uint8Array(8);
  const both = panopticQuality(empty, empty, s);
  assert.ok(Number.isNaN(both.pq) && Number.isNaN(both.sq) && Number.isNaN(both.rq), "both empty: NaN, as panoptica");
  const noPred = panopticQuality(empty, diag, s);
  assert.deepEqual([noPred.pq, noPred.rq, noPred.sq, noPred.fn], [0, 0, 0, 1]);
  const noTruth = panopticQuality(diag, empty, s);
  assert.deepEqual([noTruth.pq, noTruth.fp], [0, 1]);
});

test("clDice: known answers and the challenge's NaNs", () => {
  // a one-voxel line is its own skeleton; half of it predicted: Tprec 1/2, Tsens 1, clDice 2/3
  const s: Shape3 = [3, 3, 22];
  const line = boxes(s, [1, 2, 1, 2, 1, 21]);
  const half = boxes(s, [1, 2, 1, 2, 1, 11]);
  const r = clDice(half, line, s);
  close(r.tprec, 0.5, "Tprec");
  close(r.tsens, 1, "Tsens");
  close(r.clDice, 2 / 3, "clDice");
  close(clDice(line, line, s).clDice, 1, "identical");
  const empty = new Uint8Array(line.length);
  assert.ok(Number.isNaN(clDice(empty, line, s).clDice), "empty prediction: NaN");
  assert.ok(Number.isNaN(clDice(line, empty, s).clDice), "empty truth: NaN");
  assert.ok(Number.isNaN(clDice(empty, empty, s).clDice), "both empty: NaN");
  const disjoint = clDice(boxes(s, [0, 1, 0, 1, 1, 21]), line, s); // a parallel line beside it
  assert.equal(disjoint.tprec, 0);
  assert.ok(Number.isNaN(disjoint.clDice), "Tprec = Tsens = 0: 0/0");
});

test("caseMetrics picks clDice for contiguous and PQ for isolated cases", () => {
  const s: Shape3 = [3, 3, 22];
  const line = boxes(s, [1, 2, 1, 2, 1, 21]);
  const con = caseMetrics(line, line, s, "contiguous");
  assert.equal(con.cldice, 1);
  assert.equal(con.panoptic_quality, undefined);
  const iso = caseMetrics(line, line, s, "isolated");
  assert.equal(iso.panoptic_quality, 1);
  assert.equal(iso.cldice, undefined);
  assert.throws(() => caseMetrics(line, line.subarray(1), s, "isolated"), /voxels/);
});

// ---------------------------------------------------------------- a slow, obvious reference

function referencePQ(pred: Uint8Array, gt: Uint8Array, shape: Shape3) {
  const P = floodFill(pred, shape), G = floodFill(gt, shape);
  const pairs: Array<{ g: number; p: number; iou: number; dice: number }> = [];
  for (let p = 1; p <= P.count; p++) {
    const pm = P.labels.map((l) => (l === p ? 1 : 0));
    for (let g = 1; g <= G.count; g++) {
      const gm = G.labels.map((l) => (l === g ? 1 : 0));
      let inter = 0, a = 0, b = 0;
      for (let i = 0; i < pm.length; i++) { inter += pm[i] & gm[i]; a += gm[i]; b += pm[i]; }
      if (inter > 0) pairs.push({ g, p, iou: inter / (a + b - inter), dice: (2 * inter) / (a + b) });
    }
  }
  pairs.sort((x, y) => y.iou - x.iou || x.p - y.p || x.g - y.g);
  const usedG = new Set<number>(), usedP = new Set<number>();
  const dices: number[] = [];
  for (const pr of pairs) {
    if (pr.iou < 0.3 || usedG.has(pr.g) || usedP.has(pr.p)) continue;
    usedG.add(pr.g);
    usedP.add(pr.p);
    dices.push(pr.dice);
  }
  const tp = dices.length, fp = P.count - tp, fn = G.count - tp;
  if (tp === 0) return { tp, fp, fn, pq: P.count + G.count ? 0 : NaN };
  return { tp, fp, fn, pq: (tp / (tp + fp / 2 + fn / 2)) * (dices.reduce((s, d) => s + d, 0) / tp) };
}

test("PQ agrees with a brute-force reference on random volumes", () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const s: Shape3 = [10, 12, 14];
  const n = s[0] * s[1] * s[2];
  const totals = [0, 0, 0];
  for (let trial = 0; trial < 12; trial++) {
    // random blobs: sparse seeds grown once, so components have varied sizes and overlaps
    const blob = (density: number) => {
      const seeds = Uint8Array.from({ length: n }, () => (rand() < density ? 1 : 0));
      const m = new Uint8Array(n);
      for (let i = 0; i < n; i++) if (seeds[i]) for (const d of [0, 1, -1, s[2], -s[2]]) if (i + d >= 0 && i + d < n) m[i + d] = 1;
      return m;
    };
    const g = blob(0.02 + 0.01 * (trial % 3));
    // the prediction: the truth shifted by 0 or 1 voxel along x, with voxels dropped and noise added
    const shift = trial % 2;
    const p = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const src = i % s[2] >= shift ? g[i - shift] : 0;
      p[i] = (src && rand() > 0.25) || rand() < 0.004 ? 1 : 0;
    }
    const got = panopticQuality(p, g, s), want = referencePQ(p, g, s);
    assert.deepEqual([got.tp, got.fp, got.fn], [want.tp, want.fp, want.fn], `trial ${trial}`);
    close(got.pq, want.pq, `PQ, trial ${trial}`);
    totals[0] += got.tp; totals[1] += got.fp; totals[2] += got.fn;
  }
  assert.ok(totals.every((t) => t > 10), `matches, false positives and false negatives all occur: ${totals}`);
});

// ---------------------------------------------------------------- the challenge's computation in Python

interface Expected {
  cases: Record<string, {
    dice: number; cldice?: number | null; tprec?: number | null; tsens?: number | null; panoptic_quality?: number | null;
    panoptic?: { sq: number | null; rq: number | null; tp: number; fp: number; fn: number; n_pred: number; n_ref: number };
  }>;
  aggregates: Record<string, number | null>;
}
const fixtureDir = join(import.meta.dirname, "../../fixtures/eval/metrics");
const expected = JSON.parse(readFileSync(join(fixtureDir, "expected.json"), "utf8")) as Expected;
const num = (v: number | null | undefined) => (v === null || v === undefined ? NaN : v);

for (const [name, want] of Object.entries(expected.cases)) {
  test(`fixture ${name}: the challenge's numbers (numpy + scikit-image)`, async () => {
    const r = await evaluateCase(join(fixtureDir, "pred", `${name}.nii.gz`), join(fixtureDir, "gt", `${name}.nii.gz`));
    close(r.dice, want.dice, "dice");
    if (want.panoptic) {
      close(r.panoptic_quality!, num(want.panoptic_quality), "panoptic_quality");
      const d = r.details.panoptic!;
      const w = want.panoptic;
      assert.deepEqual([d.tp, d.fp, d.fn, d.predInstances, d.gtInstances], [w.tp, w.fp, w.fn, w.n_pred, w.n_ref]);
      close(d.sq, num(want.panoptic.sq), "sq");
      close(d.rq, num(want.panoptic.rq), "rq");
    } else {
      close(r.cldice!, num(want.cldice), "cldice");
      close(r.details.clDice!.tprec, num(want.tprec), "tprec");
      close(r.details.clDice!.tsens, num(want.tsens), "tsens");
    }
  });
}

test("fixtures: evaluateFolder's aggregates equal the challenge's (with NaN cases), metrics.json holds them", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "lsmseg-eval-"));
  try {
    const out = join(tmp, "metrics.json");
    const m = await evaluateFolder(join(fixtureDir, "pred"), join(fixtureDir, "gt"), { out, workers: 2, quiet: true });
    for (const [key, want] of Object.entries(expected.aggregates)) close(m.aggregates[key], num(want), key);
    const written = JSON.parse(readFileSync(out, "utf8")) as { aggregates: Record<string, number | null> };
    assert.equal(written.aggregates.con_cldice_mean, null, "NaN is written as null");
    assert.equal(written.aggregates.con_cldice_nan_cases, 2);
    close(written.aggregates.iso_dice_mean!, num(expected.aggregates.iso_dice_mean), "iso_dice_mean in the file");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
