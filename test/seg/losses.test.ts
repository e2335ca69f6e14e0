// Segmentation losses against their formulas.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as T from "../../src/torch/index.ts";
import { deepSupervisionWeights, diceCeLoss, downsampleTarget, segmentationLoss, softClDiceLoss, softDiceLoss, softSkeleton } from "../../src/seg/losses.ts";

test("nnU-Net's deep-supervision weights: 1/2^i, the lowest resolution 0, normalised", () => {
  assert.deepEqual(deepSupervisionWeights(1), [1]);
  const w = deepSupervisionWeights(4);
  const raw = [1, 0.5, 0.25, 0];
  const s = 1.75;
  w.forEach((x, i) => assert.ok(Math.abs(x - raw[i] / s) < 1e-12));
});

test("soft Dice equals 1 − (2Σpg + s)/(Σp + Σg + s) over the foreground class, batch Dice", () => {
  T.tidy(() => {
    const logits = T.randn([2, 2, 4, 4, 4]);
    const target = T.randint(0, 2, [2, 4, 4, 4]);
    const p = (T.softmax(logits, 1).select(1, 1).data() as Float32Array);
    const g = target.toArray();
    let pg = 0, sp = 0, sg = 0;
    for (let i = 0; i < p.length; i++) { pg += p[i] * g[i]; sp += p[i]; sg += g[i]; }
    const want = 1 - (2 * pg + 1e-5) / (sp + sg + 1e-5);
    assert.ok(Math.abs(softDiceLoss(logits, target).item() - want) < 1e-5);
    const ce = T.crossEntropy(logits, target).item();
    assert.ok(Math.abs(diceCeLoss(logits, target).item() - (ce + want)) < 1e-5);
  });
});

test("a perfect prediction has soft Dice loss ≈ 0 and clDice loss ≈ 0", () => {
  T.tidy(() => {
    const target = T.zeros([1, 12, 12, 12], { dtype: "int64" });
    const tube = target.slice(1, 5, 7).slice(2, 5, 7);
    tube.fill_(1);
    const logits = T.stack([target.eq(0).float(), target.eq(1).float()], 1).mul(40);
    assert.ok(softDiceLoss(logits, target).item() < 1e-4);
    assert.ok(softClDiceLoss(logits, target).item() < 1e-3);
  });
});

test("the soft skeleton of a thick bar keeps its centre line and drops its border", () => {
  T.tidy(() => {
    const x = T.zeros([1, 1, 9, 9, 20]);
    x.slice(2, 2, 7).slice(3, 2, 7).slice(4, 2, 18).fill_(1);
    const s = softSkeleton(x, 5);
    const d = s.data() as Float32Array;
    const at = (z: number, y: number, xx: number) => d[(z * 9 + y) * 20 + xx];
    assert.ok(at(4, 4, 10) > 0.5, "centre line kept");
    assert.equal(at(2, 2, 10), 0, "corner dropped");
    assert.equal(at(0, 0, 0), 0);
  });
});

test("deep supervision: targets downsampled by nearest neighbour and losses weighted", () => {
  T.tidy(() => {
    const t = T.randint(0, 2, [1, 8, 8, 8]);
    const d = downsampleTarget(t, [4, 4, 4]);
    assert.deepEqual(d.shape, [1, 4, 4, 4]);
    assert.ok(d.eq(t.slice(1, 0, 8, 2).slice(2, 0, 8, 2).slice(3, 0, 8, 2)).all().item() === 1);
    const outs = [T.randn([1, 2, 8, 8, 8]), T.randn([1, 2, 4, 4, 4]), T.randn([1, 2, 2, 2, 2])];
    const w = deepSupervisionWeights(3);
    const want = diceCeLoss(outs[0], t).item() * w[0] + diceCeLoss(outs[1], d).item() * w[1];
    assert.ok(Math.abs(segmentationLoss(outs, t).item() - want) < 1e-5);
  });
});

// The ignore label (sparse annotation): a slow reference over the labelled voxels, and invariance to what
// happens at ignored ones.
const IGNORE = 255;

/** CE (mean over labelled voxels) + batch soft Dice over labelled voxels, written out voxel by voxel. */
function referenceIgnoreLoss(logits: Float32Array, target: ArrayLike<number>, voxels: number, batch: number): number {
  let ce = 0, n = 0, pg = 0, sp = 0, sg = 0;
  for (let b = 0; b < batch; b++) for (let v = 0; v < voxels; v++) {
    const t = Number(target[b * voxels + v]);
    if (t === IGNORE) continue;
    const l0 = logits[(b * 2) * voxels + v], l1 = logits[(b * 2 + 1) * voxels + v];
    const m = Math.max(l0, l1), lse = m + Math.log(Math.exp(l0 - m) + Math.exp(l1 - m));
    ce += lse - (t === 1 ? l1 : l0);
    n++;
    const p = Math.exp(l1 - lse);
    pg += p * t; sp += p; sg += t;
  }
  return ce / n + 1 - (2 * pg + 1e-5) / (sp + sg + 1e-5);
}

test("ignore label: Dice + CE over the labelled voxels only (known answer); loss and gradient do not see ignored voxels", () => {
  T.tidy(() => {
    T.manualSeed(11);
    const shape = [2, 4, 4, 4], voxels = 64;
    const labels = T.randint(0, 2, shape);
    const ignored = T.rand(shape).lt(0.4);
    const target = labels.maskedFill(ignored, IGNORE);
    const base = T.randn([2, 2, 4, 4, 4]);
    const want = referenceIgnoreLoss(base.data() as Float32Array, target.toArray(), voxels, 2);
    const lossAndGrad = (logits: T.Tensor, t: T.Tensor) => {
      const x = logits.clone().requiresGrad_();
      const l = diceCeLoss(x, t, { ignore: true });
      l.backward();
      return { loss: l.item(), grad: x.grad!.clone() };
    };
    const a = lossAndGrad(base, target);
    assert.ok(Math.abs(a.loss - want) < 1e-5, `${a.loss} vs reference ${want}`);
    // other logits at the ignored voxels: the same loss and the same gradient; the gradient there is 0
    const mask = ignored.unsqueeze(1).expand([2, 2, 4, 4, 4]);
    const changed = T.where(mask, T.randn([2, 2, 4, 4, 4]).mul(10), base);
    const b = lossAndGrad(changed, target);
    assert.ok(Math.abs(a.loss - b.loss) < 1e-6, `${a.loss} vs ${b.loss}`);
    assert.ok(a.grad.sub(b.grad).abs().max().item() < 1e-7, "gradient unchanged");
    assert.equal(a.grad.maskedSelect(mask).abs().max().item(), 0, "no gradient at ignored voxels");
    assert.ok(a.grad.abs().sum().item() > 0);
    // the deep-supervised loss too, and without ignored voxels the ignore path equals the plain loss
    const ds = (logits: T.Tensor) =>
      segmentationLoss([logits, logits.slice(2, 0, 4, 2).slice(3, 0, 4, 2).slice(4, 0, 4, 2)], target, { ignore: true }).item();
    assert.ok(Math.abs(ds(base) - ds(changed)) < 1e-6);
    assert.ok(Math.abs(diceCeLoss(base, labels, { ignore: true }).item() - diceCeLoss(base, labels).item()) < 1e-6);
    // a batch with no labelled voxel: CE 0 (nnU-Net skips it), Dice 1 − smooth/smooth = 0
    const none = T.full(shape, IGNORE, { dtype: "int64" });
    assert.ok(Math.abs(diceCeLoss(base, none, { ignore: true }).item()) < 1e-6);
  });
});
