// The SSL methods' building blocks against known answers: MAE's mask and masked loss, SimCLR's NT-Xent
// against a hand computation, Models Genesis' transforms (permutation, monotone and invertible remap,
// painting), and the registry that finds the methods.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { Rng } from "../../src/data/rng.ts";
import { UNet } from "../../src/nn/index.ts";
import { bottleneckShape, sslMethods, trainedKeys } from "../../src/ssl/method.ts";
import { bezierLut, genesisTransform, inPaint, localShuffle, outPaint, remapIntensity } from "../../src/ssl/methods/genesis.ts";
import { blockMask, maskedMse, upsampleMask } from "../../src/ssl/methods/mae.ts";
import { ntXent } from "../../src/ssl/methods/simclr.ts";
import * as T from "../../src/torch/index.ts";

before(() => T.setNumThreads(1));

test("the registry finds every method in src/ssl/methods/ with a complete interface", async () => {
  const all = await sslMethods();
  for (const name of ["mae", "simclr", "genesis"]) {
    const m = all.get(name);
    assert.ok(m, `${name} is registered`);
    assert.equal(typeof m.create, "function");
    assert.ok(m.trains.includes("encoder"));
  }
});

test("MAE's block mask covers exactly the requested fraction of bottleneck cells, per sample and after upsampling", () => {
  const net = new UNet({ features: [4, 8, 8, 8], strides: [1, 2, 2, 2], kernelSizes: [3, 3, 3, 3] });
  const grid = bottleneckShape(net, [32, 32, 32]);
  assert.deepEqual(grid, [4, 4, 4]);
  for (const ratio of [0.75, 0.5, 0.3]) {
    const cells = blockMask(3, grid, ratio, new Rng(`mask ${ratio}`));
    for (let b = 0; b < 3; b++) {
      const n = cells.subarray(b * 64, (b + 1) * 64).reduce((s, v) => s + v, 0);
      assert.equal(n, Math.round(ratio * 64));
    }
    T.tidy(() => {
      const m = upsampleMask(cells, 3, grid, [32, 32, 32]);
      assert.deepEqual(m.shape, [3, 1, 32, 32, 32]);
      assert.ok(Math.abs(m.mean().item() - Math.round(ratio * 64) / 64) < 1e-6);
      // every 8³ block is all masked or all visible
      const blocks = T.avgPool3d(m, 8).data() as Float32Array;
      assert.ok(blocks.every((v) => v === 0 || v === 1));
    });
  }
  net.dispose();
});

test("MAE's loss counts masked voxels only: changing unmasked outputs leaves it unchanged; it matches a JS reference", () => {
  T.tidy(() => {
    T.manualSeed(1);
    const target = T.randn([2, 1, 8, 8, 8]);
    const pred = T.randn([2, 1, 8, 8, 8]);
    const mask = upsampleMask(blockMask(2, [2, 2, 2], 0.75, new Rng("m")), 2, [2, 2, 2], [8, 8, 8]);
    const loss = maskedMse(pred, target, mask).item();
    // change every unmasked output by a large amount
    const changed = pred.add(T.randn([2, 1, 8, 8, 8]).mul(100).mul(mask.neg().add(1)));
    assert.equal(maskedMse(changed, target, mask).item(), loss);
    // a masked output changes it
    assert.notEqual(maskedMse(pred.add(mask.mul(0.5)), target, mask).item(), loss);
    const p = pred.data() as Float32Array, t = target.data() as Float32Array, m = mask.data() as Float32Array;
    let se = 0, n = 0;
    for (let i = 0; i < p.length; i++) if (m[i]) { se += (p[i] - t[i]) ** 2; n++; }
    assert.ok(Math.abs(loss - se / n) < 1e-5, `${loss} vs ${se / n}`);
  });
});

test("NT-Xent equals a hand computation on tiny embeddings", () => {
  const a = [[1, 0, 0], [0, 2, 0]], b = [[1, 1, 0], [0, 1, 1]];
  const tau = 0.5;
  const loss = T.tidy(() => ntXent(T.tensor(a), T.tensor(b), tau).item());
  const norm = (v: number[]) => { const l = Math.hypot(...v); return v.map((x) => x / l); };
  const z = [...a, ...b].map(norm);
  const n = 2;
  let total = 0;
  for (let i = 0; i < 2 * n; i++) {
    const p = i < n ? i + n : i - n;
    const s = (j: number) => z[i].reduce((acc, x, k) => acc + x * z[j][k], 0) / tau;
    let denom = 0;
    for (let j = 0; j < 2 * n; j++) if (j !== i) denom += Math.exp(s(j));
    total += -Math.log(Math.exp(s(p)) / denom);
  }
  assert.ok(Math.abs(loss - total / (2 * n)) < 1e-5, `${loss} vs ${total / (2 * n)}`);
});

test("Genesis' local shuffling permutes voxels: the multiset is kept and the image changes", () => {
  const shape = [32, 32, 32] as const; // windows of edge 1–3
  const img = Float32Array.from({ length: 32 ** 3 }, (_, i) => Math.sin(i * 0.37) * 10 + i * 1e-3);
  const shuffled = img.slice();
  localShuffle(shuffled, shape, 500, new Rng("shuffle"));
  assert.notDeepEqual(shuffled, img);
  assert.deepEqual(shuffled.slice().sort(), img.slice().sort());
});

test("Genesis' Bézier remap is monotone, keeps [0, 1] and its ends, and the swapped curve inverts it", () => {
  for (const [c, flip] of [[[0.2, 0.4, 0.7, 0.9], false], [[0.9, 0.1, 0.1, 0.8], false], [[0.3, 0.6, 0.5, 0.2], true]] as const) {
    const lut = bezierLut([...c], flip);
    for (let i = 1; i < lut.length; i++) assert.ok(flip ? lut[i] <= lut[i - 1] + 1e-7 : lut[i] >= lut[i - 1] - 1e-7, `monotone at ${i}`);
    assert.ok(lut.every((v) => v >= 0 && v <= 1));
    assert.ok(Math.abs(lut[0] - (flip ? 1 : 0)) < 1e-6 && Math.abs(lut[lut.length - 1] - (flip ? 0 : 1)) < 1e-6);
  }
  // the curve through (x1, y1), (x2, y2) mapped back by the one through (y1, x1), (y2, x2): the identity
  const lo = -2, hi = 5;
  const img = Float32Array.from({ length: 1000 }, (_, i) => lo + ((hi - lo) * i) / 999);
  const out = img.slice();
  remapIntensity(out, bezierLut([0.2, 0.4, 0.7, 0.9], false), lo, hi);
  assert.ok(out.some((v, i) => Math.abs(v - img[i]) > 0.1), "the remap changes intensities");
  remapIntensity(out, bezierLut([0.4, 0.2, 0.9, 0.7], false), lo, hi);
  for (let i = 0; i < img.length; i++) assert.ok(Math.abs(out[i] - img[i]) < 0.02, `voxel ${i}: ${out[i]} vs ${img[i]}`);
});

test("Genesis' painting fills with values inside the crop's range; out-painting keeps some of the image", () => {
  const shape = [21, 21, 21] as const;
  const img = Float32Array.from({ length: 21 ** 3 }, (_, i) => (i % 97) / 96);
  const a = img.slice();
  inPaint(a, shape, 0, 1, new Rng("in"));
  const changed = a.reduce((s, v, i) => s + (v !== img[i] ? 1 : 0), 0);
  assert.ok(changed > 0 && changed < img.length / 2, `in-painting changed ${changed} voxels`);
  assert.ok(a.every((v) => v >= 0 && v <= 1));
  const b = img.slice();
  outPaint(b, shape, 0, 1, new Rng("out"));
  const kept = b.reduce((s, v, i) => s + (v === img[i] ? 1 : 0), 0);
  assert.ok(kept > 0.05 * img.length && kept < img.length, `out-painting kept ${kept} voxels`);
  const c = img.slice();
  genesisTransform(c, shape, new Rng("all"), { localRate: 1, nonlinearRate: 1, paintRate: 0, outpaintRate: 0 });
  assert.ok(c.every((v) => v >= 0 && v <= 1));
});

test("a method saves only what it trains: MAE the encoder and decoder, SimCLR the encoder; never the segmentation heads", async () => {
  const all = await sslMethods();
  const net = new UNet({ features: [4, 8], strides: [1, 2], kernelSizes: [3, 3], deepSupervision: false });
  const mae = trainedKeys(net, all.get("mae")!.trains), simclr = trainedKeys(net, all.get("simclr")!.trains);
  assert.ok(mae.some((k) => k.startsWith("dec.")) && mae.some((k) => k.startsWith("enc.")));
  assert.ok(simclr.every((k) => k.startsWith("enc.")));
  assert.ok(![...mae, ...simclr].some((k) => k.startsWith("head.") || k.startsWith("ds.")));
  net.dispose();
});
