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
