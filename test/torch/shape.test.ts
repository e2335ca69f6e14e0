// Shape operators against slow JS references over flat row-major arrays. The source tensors hold
// their own flat index (arange), so every output value says exactly which element was picked.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { assertTensor, build, numel, ravel, stridesOf } from "./helpers.ts";

/** A float32 tensor whose elements are their flat indices. */
const iota = (shape: number[]): T.Tensor => T.arange(numel(shape), undefined, 1, { dtype: "float32" }).reshape(shape);
const long = (v: number[], shape?: number[]): T.Tensor => T.tensor(v, shape, { dtype: "int64" });

test("reshape, view and flatten keep row-major order; view shares storage", () => {
  const x = iota([2, 3, 4]);
  assertTensor(x.reshape(4, 6), [4, 6], build([4, 6], ([i, j]) => i * 6 + j));
  assertTensor(x.reshape([3, -1]), [3, 8], build([3, 8], ([i, j]) => i * 8 + j));
  assertTensor(x.view(24), [24], build([24], ([i]) => i));
  assertTensor(x.flatten(1), [2, 12], build([2, 12], ([i, j]) => i * 12 + j));
  const v = x.view(6, 4);
  v.select(0, 0).fill_(-1);
  assert.deepEqual(x.toArray().slice(0, 5), [-1, -1, -1, -1, 4]);
  // a transposed tensor is not viewable, but reshape copies
  assert.throws(() => x.transpose(0, 2).view(24), /view size is not compatible/);
  assert.deepEqual(x.transpose(0, 1).reshape(24).shape, [24]);
});

test("permute and transpose move elements as the index permutation says", () => {
  const shape = [2, 3, 4, 5];
  const x = iota(shape);
  const dims = [2, 0, 3, 1];
  const outShape = dims.map((d) => shape[d]);
  const ref = build(outShape, (idx) => {
    const src = new Array<number>(4);
    dims.forEach((d, k) => { src[d] = idx[k]; });
    return ravel(src, shape);
  });
  const p = x.permute(dims);
  assertTensor(p, outShape, ref);
  assert.equal(p.isContiguous(), false);
  assert.deepEqual(p.strides, dims.map((d) => stridesOf(shape)[d]));
  const c = p.contiguous();
  assert.equal(c.isContiguous(), true);
  assert.deepEqual(c.strides, stridesOf(outShape));
  assertTensor(c, outShape, ref);
  assertTensor(x.transpose(1, 3), [2, 5, 4, 3], build([2, 5, 4, 3], ([a, b, c2, d]) => ravel([a, d, c2, b], shape)));
  assertTensor(x.transpose(-1, 0), [5, 3, 4, 2], build([5, 3, 4, 2], ([a, b, c2, d]) => ravel([d, b, c2, a], shape)));
  const m = iota([2, 3]);
  assertTensor(m.T, [3, 2], [0, 3, 1, 4, 2, 5]);
});

test("squeeze and unsqueeze add and drop size-1 dimensions", () => {
  const x = iota([1, 3, 1, 2]);
  assertTensor(x.squeeze(), [3, 2], [0, 1, 2, 3, 4, 5]);
  assertTensor(x.squeeze(2), [1, 3, 2], [0, 1, 2, 3, 4, 5]);
  assertTensor(x.squeeze(1), [1, 3, 1, 2], [0, 1, 2, 3, 4, 5]);
  assertTensor(x.unsqueeze(0), [1, 1, 3, 1, 2], [0, 1, 2, 3, 4, 5]);
  assertTensor(x.unsqueeze(-1), [1, 3, 1, 2, 1], [0, 1, 2, 3, 4, 5]);
});

test("narrow, slice (with step) and select pick the right sub-blocks", () => {
  const shape = [4, 5, 6];
  const x = iota(shape);
  assertTensor(x.narrow(1, 1, 3), [4, 3, 6], build([4, 3, 6], ([a, b, c]) => ravel([a, b + 1, c], shape)));
  assertTensor(x.slice(2, 1, 6, 2), [4, 5, 3], build([4, 5, 3], ([a, b, c]) => ravel([a, b, 1 + 2 * c], shape)));
  assertTensor(x.slice(0, 2), [2, 5, 6], build([2, 5, 6], ([a, b, c]) => ravel([a + 2, b, c], shape)));
  assertTensor(x.slice(1, undefined, -1), [4, 4, 6], build([4, 4, 6], ([a, b, c]) => ravel([a, b, c], shape)));
  assertTensor(x.select(1, 3), [4, 6], build([4, 6], ([a, c]) => ravel([a, 3, c], shape)));
  assertTensor(x.select(2, -1), [4, 5], build([4, 5], ([a, b]) => ravel([a, b, 5], shape)));
  // narrow is a view: writing through it changes the base
  x.narrow(0, 3, 1).zero_();
  assert.equal(
    x.sum().item(),
    (numel(shape) * (numel(shape) - 1)) / 2 - build([5, 6], ([b, c]) => ravel([3, b, c], shape)).reduce((s, v) => s + v, 0),
  );
});

test("indexSelect, gather, scatter and scatterAdd follow their index formulas", () => {
  const shape = [3, 4, 5];
  const x = iota(shape);
  const idx = [3, 0, 3];
  assertTensor(x.indexSelect(1, long(idx)), [3, 3, 5], build([3, 3, 5], ([a, b, c]) => ravel([a, idx[b], c], shape)));
  // gather along dim 2: out[a][b][c] = x[a][b][index[a][b][c]]
  const gShape = [3, 4, 2];
  const gIndex = build(gShape, ([a, b, c]) => (a + 2 * b + 3 * c) % 5);
  assertTensor(x.gather(2, long(gIndex, gShape)), gShape, build(gShape, ([a, b, c]) => ravel([a, b, gIndex[ravel([a, b, c], gShape)]], shape)));
  // scatter along dim 0 with a permutation per column: out[index[i][j]][j] = src[i][j]
  const sIndex = [[2, 0, 1, 1], [0, 2, 2, 0], [1, 1, 0, 2]];
  const src = iota([3, 4]).add(100);
  const ref = new Array(12).fill(0);
  sIndex.forEach((row, i) => row.forEach((k, j) => { ref[k * 4 + j] = 100 + i * 4 + j; }));
  assertTensor(T.zeros([3, 4]).scatter(0, long(sIndex.flat(), [3, 4]), src), [3, 4], ref);
  const refValue = new Array(12).fill(0);
  sIndex.forEach((row) => row.forEach((k, j) => { refValue[k * 4 + j] = 9; }));
  assertTensor(T.zeros([3, 4]).scatter(0, long(sIndex.flat(), [3, 4]), 9), [3, 4], refValue);
  // scatterAdd accumulates duplicates
  const aIndex = long([0, 1, 0, 0, 2, 1], [6]);
  assertTensor(T.zeros([3]).scatterAdd(0, aIndex, T.tensor([1, 2, 3, 4, 5, 6])), [3], [1 + 3 + 4, 2 + 6, 5]);
});

test("maskedSelect and maskedFill", () => {
  const x = iota([2, 3]);
  const mask = x.remainder(2).eq(0);
  assertTensor(x.maskedSelect(mask), [3], [0, 2, 4]);
  assertTensor(x.maskedFill(mask, -1), [2, 3], [-1, 1, -1, 3, -1, 5]);
});

test("cat, stack, split, chunk and unbind agree with block-wise references", () => {
  const a = iota([2, 3]);
  const b = iota([2, 2]).add(100);
  assertTensor(T.cat([a, b], 1), [2, 5], [0, 1, 2, 100, 101, 3, 4, 5, 102, 103]);
  assertTensor(T.cat([a, a.add(10)], 0), [4, 3], [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]);
  const s = T.stack([a, a.add(10)], 1);
  assertTensor(s, [2, 2, 3], build([2, 2, 3], ([i, k, j]) => k * 10 + i * 3 + j));
  assertTensor(T.stack([a, a], -1), [2, 3, 2], build([2, 3, 2], ([i, j]) => i * 3 + j));
  const x = iota([7, 2]);
  const parts = x.split(3);
  assert.deepEqual(parts.map((p) => p.shape), [[3, 2], [3, 2], [1, 2]]);
  assertTensor(parts[2], [1, 2], [12, 13]);
  const sized = x.split([2, 5], 0);
  assert.deepEqual(sized.map((p) => p.shape), [[2, 2], [5, 2]]);
  assertTensor(sized[1], [5, 2], build([5, 2], ([i, j]) => (i + 2) * 2 + j));
  const cols = x.split(1, 1);
  assertTensor(cols[1], [7, 1], [1, 3, 5, 7, 9, 11, 13]);
  const chunks = x.chunk(3);
  assert.deepEqual(chunks.map((p) => p.shape), [[3, 2], [3, 2], [1, 2]]);
  assertTensor(T.cat(chunks, 0), [7, 2], x.toArray());
  const rows = a.unbind(0);
  assert.equal(rows.length, 2);
  assertTensor(rows[1], [3], [3, 4, 5]);
});

test("pad: constant, reflect, replicate and circular over the last three dimensions", () => {
  const shape = [1, 2, 3, 4, 5];
  const x = iota(shape);
  // (W before, W after, H before, H after, D before, D after), as F.pad lists them
  const p = [1, 2, 0, 1, 2, 1];
  const outShape = [1, 2, 3 + 3, 4 + 1, 5 + 3];
  const before = [p[4], p[2], p[0]];
  const sizes = [3, 4, 5];
  const mapIdx = (mode: string, i: number, n: number): number => {
    if (i >= 0 && i < n) return i;
    if (mode === "replicate") return Math.min(Math.max(i, 0), n - 1);
    if (mode === "reflect") return i < 0 ? -i : 2 * (n - 1) - i;
    if (mode === "circular") return ((i % n) + n) % n;
    return -1;
  };
  for (const mode of ["constant", "reflect", "replicate", "circular"] as const) {
    const ref = build(outShape, ([b, c, d, h, w]) => {
      const src = [d - before[0], h - before[1], w - before[2]].map((v, k) => mapIdx(mode, v, sizes[k]));
      return src.includes(-1) ? -7 : ravel([b, c, ...src], shape);
    });
    assertTensor(T.pad(x, p, mode, -7), outShape, ref, { msg: mode });
  }
  assertTensor(T.pad(iota([2, 2]), [1, 0]), [2, 3], [0, 0, 1, 0, 2, 3]);
  assert.throws(() => T.pad(x, [1, 2, 3]), /\(before, after\) pairs/);
});

test("flip, roll, repeat and expand", () => {
  const shape = [2, 3, 4];
  const x = iota(shape);
  assertTensor(x.flip([0, 2]), shape, build(shape, ([a, b, c]) => ravel([1 - a, b, 3 - c], shape)));
  assertTensor(x.flip(1), shape, build(shape, ([a, b, c]) => ravel([a, 2 - b, c], shape)));
  const mod = (v: number, n: number) => ((v % n) + n) % n;
  assertTensor(x.roll([1, -1], [1, 2]), shape, build(shape, ([a, b, c]) => ravel([a, mod(b - 1, 3), mod(c + 1, 4)], shape)));
  assertTensor(x.roll(5, 2), shape, build(shape, ([a, b, c]) => ravel([a, b, mod(c - 5, 4)], shape)));
  assertTensor(x.repeat(2, 1, 3), [4, 3, 12], build([4, 3, 12], ([a, b, c]) => ravel([a % 2, b, c % 4], shape)));
  // repeat with more repeats than dims prepends dimensions
  assertTensor(iota([2]).repeat(3, 2), [3, 4], [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
  const col = iota([3, 1]);
  const e = col.expand(3, 4);
  assertTensor(e, [3, 4], build([3, 4], ([i]) => i));
  assert.deepEqual(e.strides, [1, 0], "expand is a broadcast view (stride 0)");
  assertTensor(col.expand(2, -1, 2), [2, 3, 2], build([2, 3, 2], ([, i]) => i));
  assertTensor(col.expandAs(T.zeros([3, 5])), [3, 5], build([3, 5], ([i]) => i));
});

test("channels-last-3d keeps values and lays channels innermost", () => {
  const shape = [2, 3, 4, 5, 6];
  const [, C, D, H, W] = shape;
  const x = iota(shape);
  const cl = x.toChannelsLast3d();
  assert.deepEqual(cl.shape, shape);
  assert.equal(cl.isContiguous("channelsLast3d"), true);
  assert.equal(cl.isContiguous(), false);
  assert.equal(x.isContiguous("channelsLast3d"), false);
  assert.deepEqual(cl.strides, [C * D * H * W, 1, H * W * C, W * C, C]);
  assert.deepEqual(cl.toArray(), x.toArray(), "data() returns logical row-major order");
  const back = cl.contiguous();
  assert.deepEqual(back.strides, stridesOf(shape));
  // channels-last layout survives element-wise ops, and convolution gives the same values in either layout
  const y = cl.add(1);
  assert.equal(y.isContiguous("channelsLast3d"), true);
  const w = iota([4, 3, 1, 1, 1]).div(10);
  assertTensor(T.conv3d(cl, w), [2, 4, 4, 5, 6], T.conv3d(x, w).toArray(), { rtol: 1e-6 });
});
