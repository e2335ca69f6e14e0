// Sliding-window inference: window placement, the Gaussian map, and exact reconstruction of the
// input by a network that returns it (the importance weights must normalise out everywhere).
import assert from "node:assert/strict";
import { test } from "node:test";
import * as T from "../../src/torch/index.ts";
import { gaussianImportance, slidingWindow, windowStarts } from "../../src/seg/sliding_window.ts";

test("window starts cover the axis evenly with the first at 0 and the last at n - p", () => {
  assert.deepEqual(windowStarts(64, 64, 0.5), [0]);
  assert.deepEqual(windowStarts(40, 64, 0.5), [0]);
  assert.deepEqual(windowStarts(128, 64, 0.5), [0, 32, 64]);
  assert.deepEqual(windowStarts(100, 64, 0.5), [0, 18, 36]);
  assert.deepEqual(windowStarts(160, 64, 0.5), [0, 32, 64, 96]);
  // the same rule as the PyTorch anchor: k = ceil((n - p) / (p * step)) + 1, round(i * (n - p) / (k - 1))
  for (const n of [65, 97, 130, 201]) {
    const k = Math.ceil((n - 64) / 32) + 1;
    assert.deepEqual(windowStarts(n, 64, 0.5), Array.from({ length: k }, (_, i) => Math.round((i * (n - 64)) / (k - 1))));
  }
});

test("the Gaussian importance map has σ = patch/8, peak 1 at the centre and no zeros", () => {
  const g = gaussianImportance([16, 16, 8]);
  assert.deepEqual(g.shape, [16, 16, 8]);
  const d = g.data() as Float32Array;
  const at = (z: number, y: number, x: number) => d[(z * 16 + y) * 8 + x];
  const ref = (z: number, y: number, x: number) =>
    Math.exp(-0.5 * (((z - 7.5) / 2) ** 2 + ((y - 7.5) / 2) ** 2 + ((x - 3.5) / 1) ** 2)) / Math.exp(-0.5 * (0.25 / 4 + 0.25 / 4 + 0.25));
  // every voxel, corners included, is the Gaussian itself (no value here is small enough to be clamped)
  for (const [z, y, x] of [[7, 7, 3], [0, 0, 0], [3, 12, 6], [15, 15, 7]]) {
    assert.ok(Math.abs(at(z, y, x) - ref(z, y, x)) <= 1e-5 * ref(z, y, x), `at ${[z, y, x]}: ${at(z, y, x)} vs ${ref(z, y, x)}`);
  }
  assert.ok(Math.abs(at(7, 7, 3) - 1) < 1e-6);
  assert.ok(Math.abs(at(3, 12, 6) - ref(3, 12, 6)) < 1e-6);
  assert.ok(Math.min(...d) > 0);
  g.dispose();
});

test("a network that returns its input is reproduced exactly, with and without mirroring, for sizes below and above the patch", () => {
  for (const shape of [[2, 20, 33, 17], [1, 8, 8, 8], [2, 40, 12, 25]]) {
    T.tidy(() => {
      const img = T.randn(shape);
      const identity = (x: T.Tensor) => x.mul(1);
      for (const mirror of [false, true]) {
        const out = slidingWindow(identity, img, { patchSize: [16, 16, 16], numClasses: shape[0], step: 0.5, batchSize: 3, mirror, precision: "fp32" });
        assert.deepEqual(out.shape, shape);
        const err = out.sub(img).abs().max().item();
        assert.ok(err < 1e-5, `shape [${shape}] mirror ${mirror}: max error ${err}`);
      }
    });
  }
});

test("a network that returns a constant per window gives the importance-weighted mean of the constants", () => {
  T.tidy(() => {
    // Two windows along x (n = 24, p = 16 → starts 0 and 8); window values 1 and 3.
    let calls = 0;
    const net = (x: T.Tensor) => {
      const vals = Array.from({ length: x.shape[0] }, () => (calls++ === 0 ? 1 : 3));
      return T.stack(vals.map((v) => T.full([1, 16, 16, 16], v)));
    };
    const out = slidingWindow(net, T.zeros([1, 16, 16, 24]), { patchSize: [16, 16, 16], numClasses: 1, batchSize: 1, precision: "fp32" });
    const d = out.data() as Float32Array;
    assert.equal(d[0], 1);              // x = 0: only the first window
    assert.equal(d[23], 3);             // x = 23: only the second
    // x = 12 lies at position 12 of the first window and 4 of the second: weights from the 1-D Gaussian
    // along x (the z and y factors are equal for both windows and cancel).
    const g = (pos: number) => Math.exp(-0.5 * ((pos - 7.5) / 2) ** 2);
    const want = (1 * g(12) + 3 * g(4)) / (g(12) + g(4));
    const mid = d[8 * 24 * 16 + 8 * 24 + 12];
    assert.ok(Math.abs(mid - want) < 1e-5, `x=12 gives ${mid}, want ${want}`);
  });
});

test("batches run several per forward pass give the same result bit for bit, with the windows of whole batches", () => {
  T.tidy(() => {
    const img = T.randn([1, 20, 40, 37]);
    const sizes: number[] = [];
    // a network that treats each sample alone (a per-window affine map and a sum over the window)
    const net = (x: T.Tensor) => { sizes.push(x.shape[0]); return T.cat([x.mul(2).add(1), x.sum([1, 2, 3, 4], true).expand(x.shape)], 1); };
    const o = { patchSize: [16, 16, 16] as [number, number, number], numClasses: 2, batchSize: 3, precision: "fp32" as const };
    const one = slidingWindow(net, img, { ...o, batchesPerForward: 1 });
    const perForward1 = sizes.splice(0);
    const grouped = slidingWindow(net, img, { ...o, batchesPerForward: 2 });
    assert.deepEqual(sizes, perForward1.reduce<number[]>((acc, n, i) => (i % 2 ? [...acc.slice(0, -1), acc[acc.length - 1] + n] : [...acc, n]), []));
    const bytes = (t: T.Tensor) => { const a = t.data() as Float32Array; return Buffer.from(a.buffer, a.byteOffset, a.byteLength); };
    assert.ok(bytes(one).equals(bytes(grouped)), "bit for bit");
  });
});
