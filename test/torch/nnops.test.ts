// Network operators against naive JS implementations of their textbook formulas: convolution and
// its transpose, pooling, resampling, normalisation, softmax, losses, dropout and activations.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { callOp } from "../../src/torch/tensor.ts";
import { assertClose, assertTensor, build, numel, ravel, uniform } from "./helpers.ts";

const f64 = (vals: number[], shape: number[]): T.Tensor => T.tensor(new Float64Array(vals), shape);
const rnd = (shape: number[], seed: number, lo = -1, hi = 1) => { const v = uniform(numel(shape), seed, lo, hi); return { v, t: f64(v, shape) }; };
const long = (v: number[], shape?: number[]): T.Tensor => T.tensor(v, shape, { dtype: "int64" });
const TIGHT = { rtol: 1e-10, atol: 1e-12 };

type V3 = [number, number, number];

/** Naive grouped, strided, padded, dilated 3D convolution. x: [B, Cin, D, H, W]; w: [Cout, Cin/g, kD, kH, kW]. */
function conv3dRef(x: number[], xs: number[], w: number[], ws: number[], bias: number[] | null, s: V3, p: V3, d: V3, groups: number) {
  const [B, , ...inSp] = xs;
  const [Cout, cpg, ...k] = ws;
  const outSp = [0, 1, 2].map((i) => Math.floor((inSp[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1) / s[i]) + 1);
  const outShape = [B, Cout, ...outSp];
  const opg = Cout / groups;
  const out = build(outShape, ([b, co, od, oh, ow]) => {
    const g = Math.floor(co / opg);
    let acc = bias ? bias[co] : 0;
    for (let ci = 0; ci < cpg; ci++) {
      for (let kd = 0; kd < k[0]; kd++) for (let kh = 0; kh < k[1]; kh++) for (let kw = 0; kw < k[2]; kw++) {
        const id = od * s[0] - p[0] + kd * d[0], ih = oh * s[1] - p[1] + kh * d[1], iw = ow * s[2] - p[2] + kw * d[2];
        if (id < 0 || ih < 0 || iw < 0 || id >= inSp[0] || ih >= inSp[1] || iw >= inSp[2]) continue;
        acc += x[ravel([b, g * cpg + ci, id, ih, iw], xs)] * w[ravel([co, ci, kd, kh, kw], ws)];
      }
    }
    return acc;
  });
  return { shape: outShape, values: out };
}

/** Naive transposed convolution: every input voxel scatters its kernel-weighted value. w: [Cin, Cout/g, kD, kH, kW]. */
function convTranspose3dRef(
  x: number[], xs: number[], w: number[], ws: number[], bias: number[] | null, s: V3, p: V3, op: V3, d: V3, groups: number,
) {
  const [B, Cin, ...inSp] = xs;
  const [, opg, ...k] = ws;
  const Cout = opg * groups;
  const ipg = Cin / groups;
  const outSp = [0, 1, 2].map((i) => (inSp[i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1);
  const outShape = [B, Cout, ...outSp];
  const out = new Array<number>(numel(outShape)).fill(0);
  for (let b = 0; b < B; b++) for (let ci = 0; ci < Cin; ci++) {
    const g = Math.floor(ci / ipg);
    for (let id = 0; id < inSp[0]; id++) for (let ih = 0; ih < inSp[1]; ih++) for (let iw = 0; iw < inSp[2]; iw++) {
      const xv = x[ravel([b, ci, id, ih, iw], xs)];
      for (let oc = 0; oc < opg; oc++) for (let kd = 0; kd < k[0]; kd++) for (let kh = 0; kh < k[1]; kh++) for (let kw = 0; kw < k[2]; kw++) {
        const od = id * s[0] - p[0] + kd * d[0], oh = ih * s[1] - p[1] + kh * d[1], ow = iw * s[2] - p[2] + kw * d[2];
        if (od < 0 || oh < 0 || ow < 0 || od >= outSp[0] || oh >= outSp[1] || ow >= outSp[2]) continue;
        out[ravel([b, g * opg + oc, od, oh, ow], outShape)] += xv * w[ravel([ci, oc, kd, kh, kw], ws)];
      }
    }
  }
  if (bias) for (let i = 0; i < out.length; i++) out[i] += bias[Math.floor(i / numel(outSp)) % Cout];
  return { shape: outShape, values: out };
}

test("conv3d matches the naive loop for stride, padding, dilation and groups", () => {
  const cases: { xs: number[]; ws: number[]; s: V3; p: V3; d: V3; g: number; bias: boolean }[] = [
    { xs: [2, 3, 5, 6, 4], ws: [4, 3, 3, 3, 3], s: [1, 1, 1], p: [1, 1, 1], d: [1, 1, 1], g: 1, bias: true },
    { xs: [1, 2, 7, 6, 5], ws: [3, 2, 3, 2, 3], s: [2, 1, 3], p: [0, 1, 2], d: [1, 1, 1], g: 1, bias: false },
    { xs: [1, 2, 7, 7, 6], ws: [2, 2, 3, 3, 2], s: [1, 2, 1], p: [2, 0, 1], d: [2, 1, 3], g: 1, bias: true },
    { xs: [2, 4, 4, 5, 3], ws: [6, 2, 3, 1, 3], s: [1, 1, 1], p: [1, 0, 1], d: [1, 1, 1], g: 2, bias: true },
    { xs: [1, 3, 4, 4, 4], ws: [3, 1, 3, 3, 3], s: [2, 2, 2], p: [1, 1, 1], d: [1, 1, 1], g: 3, bias: false },
    // 1×1×1 with few output channels: a batched matrix product (ops.ts), with and without bias
    { xs: [3, 5, 2, 3, 4], ws: [2, 5, 1, 1, 1], s: [1, 1, 1], p: [0, 0, 0], d: [1, 1, 1], g: 1, bias: true },
    { xs: [2, 4, 3, 2, 2], ws: [3, 4, 1, 1, 1], s: [1, 1, 1], p: [0, 0, 0], d: [1, 1, 1], g: 1, bias: false },
  ];
  cases.forEach((c, i) => {
    const x = rnd(c.xs, 100 + i), w = rnd(c.ws, 200 + i);
    const b = c.bias ? rnd([c.ws[0]], 300 + i) : null;
    const ref = conv3dRef(x.v, c.xs, w.v, c.ws, b?.v ?? null, c.s, c.p, c.d, c.g);
    const out = T.conv3d(x.t, w.t, b?.t ?? null, { stride: c.s, padding: c.p, dilation: c.d, groups: c.g });
    assertTensor(out, ref.shape, ref.values, { ...TIGHT, msg: `case ${i}` });
    // float32 agrees to float32 precision
    const out32 = T.conv3d(x.t.float(), w.t.float(), b?.t.float() ?? null, { stride: c.s, padding: c.p, dilation: c.d, groups: c.g });
    assertTensor(out32, ref.shape, ref.values, { rtol: 1e-4, atol: 1e-5, msg: `case ${i} float32` });
  });
  // scalar options expand to all three dims
  const x = rnd([1, 1, 5, 5, 5], 1), w = rnd([1, 1, 3, 3, 3], 2);
  assertTensor(
    T.conv3d(x.t, w.t, null, { stride: 2, padding: 1 }), [1, 1, 3, 3, 3],
    conv3dRef(x.v, [1, 1, 5, 5, 5], w.v, [1, 1, 3, 3, 3], null, [2, 2, 2], [1, 1, 1], [1, 1, 1], 1).values, TIGHT,
  );
});

test("convTranspose3d matches the naive scatter for stride, padding, output padding, dilation and groups", () => {
  const cases: { xs: number[]; ws: number[]; s: V3; p: V3; op: V3; d: V3; g: number; bias: boolean }[] = [
    { xs: [2, 3, 3, 4, 2], ws: [3, 2, 2, 2, 2], s: [2, 2, 2], p: [0, 0, 0], op: [0, 0, 0], d: [1, 1, 1], g: 1, bias: true },
    { xs: [1, 2, 3, 3, 4], ws: [2, 3, 3, 3, 3], s: [2, 1, 3], p: [1, 1, 0], op: [1, 0, 2], d: [1, 1, 1], g: 1, bias: false },
    { xs: [1, 4, 3, 2, 3], ws: [4, 1, 2, 3, 2], s: [1, 2, 1], p: [0, 1, 1], op: [0, 0, 0], d: [2, 1, 2], g: 2, bias: true },
    // kernel = stride, anisotropic: a 1×1×1 convolution and a reshuffle into tiles (ops.ts), no bias
    { xs: [2, 3, 2, 3, 2], ws: [3, 4, 1, 2, 3], s: [1, 2, 3], p: [0, 0, 0], op: [0, 0, 0], d: [1, 1, 1], g: 1, bias: false },
  ];
  cases.forEach((c, i) => {
    const x = rnd(c.xs, 400 + i), w = rnd(c.ws, 500 + i);
    const b = c.bias ? rnd([c.ws[1] * c.g], 600 + i) : null;
    const ref = convTranspose3dRef(x.v, c.xs, w.v, c.ws, b?.v ?? null, c.s, c.p, c.op, c.d, c.g);
    const out = T.convTranspose3d(x.t, w.t, b?.t ?? null, { stride: c.s, padding: c.p, outputPadding: c.op, dilation: c.d, groups: c.g });
    assertTensor(out, ref.shape, ref.values, { ...TIGHT, msg: `case ${i}` });
  });
});

test("convTranspose3d with kernel = stride has libtorch's conv_transpose3d gradients, and autocast's dtype", () => {
  const x = rnd([2, 3, 3, 2, 4], 410), w = rnd([3, 2, 2, 1, 2], 510), b = rnd([2], 610);
  const g = rnd([2, 2, 6, 2, 8], 710);
  const grads = (fn: (xt: T.Tensor, wt: T.Tensor, bt: T.Tensor) => T.Tensor): T.Tensor[] => T.tidy(() => {
    const [xt, wt, bt] = [x.t, w.t, b.t].map((t) => t.detach().clone().requiresGrad_(true));
    fn(xt, wt, bt).mul(g.t).sum().backward();
    return [xt, wt, bt].map((t) => T.keep(t.grad!));
  });
  const ours = grads((xt, wt, bt) => T.convTranspose3d(xt, wt, bt, { stride: [2, 1, 2] }));
  const ref = grads((xt, wt, bt) => callOp("conv_transpose3d.input", xt, wt, bt, [2, 1, 2], [0, 0, 0], [0, 0, 0], 1, [1, 1, 1]) as T.Tensor);
  ours.forEach((t, i) => assertClose(t.toArray(), ref[i].toArray(), { ...TIGHT, msg: ["input", "weight", "bias"][i] }));
  const y = T.autocast(() => T.convTranspose3d(x.t.float(), w.t.float(), b.t.float(), { stride: [2, 1, 2] }));
  assert.equal(y.dtype, "bfloat16");
  for (const t of [...ours, ...ref, y]) t.dispose();
});

test("a 1×1×1 conv3d with few output channels has libtorch's conv3d gradients, and autocast's dtype", () => {
  const x = rnd([2, 6, 3, 2, 4], 420), w = rnd([2, 6, 1, 1, 1], 520), b = rnd([2], 620), g = rnd([2, 2, 3, 2, 4], 720);
  const grads = (fn: (xt: T.Tensor, wt: T.Tensor, bt: T.Tensor) => T.Tensor): T.Tensor[] => T.tidy(() => {
    const [xt, wt, bt] = [x.t, w.t, b.t].map((t) => t.detach().clone().requiresGrad_(true));
    fn(xt, wt, bt).mul(g.t).sum().backward();
    return [xt, wt, bt].map((t) => T.keep(t.grad!));
  });
  const ours = grads((xt, wt, bt) => T.conv3d(xt, wt, bt));
  const ref = grads((xt, wt, bt) => callOp("conv3d", xt, wt, bt, [1, 1, 1], [0, 0, 0], [1, 1, 1], 1) as T.Tensor);
  ours.forEach((t, i) => assertClose(t.toArray(), ref[i].toArray(), { ...TIGHT, msg: ["input", "weight", "bias"][i] }));
  const y = T.autocast(() => T.conv3d(x.t.float(), w.t.float(), b.t.float()));
  assert.equal(y.dtype, "bfloat16");
  for (const t of [...ours, ...ref, y]) t.dispose();
});

test("maxPool3d and avgPool3d match naive window loops", () => {
  const xs = [2, 2, 5, 6, 7];
  const x = rnd(xs, 700);
  const [, , D, H, W] = xs;
  const pool = (k: V3, s: V3, p: V3, dil: V3, ceil: boolean, fn: (vals: number[], inWindow: number) => number) => {
    const osz = [D, H, W].map((n, i) => {
      const span = n + 2 * p[i] - dil[i] * (k[i] - 1) - 1;
      let o = (ceil ? Math.ceil(span / s[i]) : Math.floor(span / s[i])) + 1;
      if (ceil && (o - 1) * s[i] >= n + p[i]) o--; // the last window must start inside the input or left padding
      return o;
    });
    const shape = [2, 2, ...osz];
    return {
      shape,
      values: build(shape, ([b, c, od, oh, ow]) => {
        const vals: number[] = [];
        let inWindow = 0; // window cells inside input-plus-padding (for count_include_pad)
        for (let a = 0; a < k[0]; a++) for (let e = 0; e < k[1]; e++) for (let f = 0; f < k[2]; f++) {
          const i = od * s[0] - p[0] + a * dil[0], j = oh * s[1] - p[1] + e * dil[1], l = ow * s[2] - p[2] + f * dil[2];
          if (i < D + p[0] && j < H + p[1] && l < W + p[2]) inWindow++;
          if (i >= 0 && j >= 0 && l >= 0 && i < D && j < H && l < W) vals.push(x.v[ravel([b, c, i, j, l], xs)]);
        }
        return fn(vals, inWindow);
      }),
    };
  };
  const max = (v: number[]) => Math.max(...v);
  let r = pool([2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], false, max);
  assertTensor(T.maxPool3d(x.t, 2), r.shape, r.values, TIGHT);
  r = pool([3, 3, 3], [2, 1, 2], [1, 1, 0], [1, 1, 1], false, max);
  assertTensor(T.maxPool3d(x.t, 3, { stride: [2, 1, 2], padding: [1, 1, 0] }), r.shape, r.values, TIGHT);
  r = pool([2, 2, 2], [1, 2, 2], [0, 0, 0], [2, 1, 3], false, max);
  assertTensor(T.maxPool3d(x.t, 2, { stride: [1, 2, 2], dilation: [2, 1, 3] }), r.shape, r.values, TIGHT);
  r = pool([2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], true, max);
  assertTensor(T.maxPool3d(x.t, 2, { ceilMode: true }), r.shape, r.values, TIGHT);
  const avgIncl = (v: number[], n: number) => v.reduce((s, a) => s + a, 0) / n;
  const avgExcl = (v: number[]) => v.reduce((s, a) => s + a, 0) / v.length;
  r = pool([2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], false, avgExcl);
  assertTensor(T.avgPool3d(x.t, 2), r.shape, r.values, TIGHT);
  r = pool([3, 3, 3], [2, 2, 2], [1, 1, 1], [1, 1, 1], false, avgIncl);
  assertTensor(T.avgPool3d(x.t, 3, { stride: 2, padding: 1 }), r.shape, r.values, { ...TIGHT, msg: "count_include_pad" });
  r = pool([3, 3, 3], [2, 2, 2], [1, 1, 1], [1, 1, 1], false, avgExcl);
  assertTensor(T.avgPool3d(x.t, 3, { stride: 2, padding: 1, countIncludePad: false }), r.shape, r.values, { ...TIGHT, msg: "exclude pad" });
  // adaptive average pooling: bins [floor(i·n/o), ceil((i+1)·n/o))
  const o: V3 = [2, 4, 3];
  const ashape = [2, 2, ...o];
  const bins = (i: number, n: number, on: number) => [Math.floor((i * n) / on), Math.ceil(((i + 1) * n) / on)];
  const aref = build(ashape, ([b, c, i, j, l]) => {
    const [d0, d1] = bins(i, D, o[0]), [h0, h1] = bins(j, H, o[1]), [w0, w1] = bins(l, W, o[2]);
    let s = 0, n = 0;
    for (let a = d0; a < d1; a++) for (let e = h0; e < h1; e++) for (let f = w0; f < w1; f++) { s += x.v[ravel([b, c, a, e, f], xs)]; n++; }
    return s / n;
  });
  assertTensor(T.adaptiveAvgPool3d(x.t, o), ashape, aref, TIGHT);
});

test("interpolate nearest and trilinear match the naive formulas", () => {
  const xs = [1, 2, 3, 4, 5];
  const x = rnd(xs, 800);
  const inSp = xs.slice(2);
  const sample = (
    outSp: number[], coord: (o: number, axis: number) => number[] /* [i0, i1, lambda] */,
  ) => build([1, 2, ...outSp], ([b, c, od, oh, ow]) => {
    const [d0, d1, ld] = coord(od, 0), [h0, h1, lh] = coord(oh, 1), [w0, w1, lw] = coord(ow, 2);
    let acc = 0;
    for (const [dd, wd] of [[d0, 1 - ld], [d1, ld]]) for (const [hh, wh] of [[h0, 1 - lh], [h1, lh]]) {
      for (const [ww, www] of [[w0, 1 - lw], [w1, lw]]) acc += wd * wh * www * x.v[ravel([b, c, dd, hh, ww], xs)];
    }
    return acc;
  });
  for (const outSp of [[6, 8, 10], [2, 3, 7], [5, 4, 3]]) {
    // nearest: src = floor(dst · in / out)
    const near = sample(outSp, (o, a) => { const i = Math.min(Math.floor((o * inSp[a]) / outSp[a]), inSp[a] - 1); return [i, i, 0]; });
    assertTensor(T.interpolate(x.t, { size: outSp }), [1, 2, ...outSp], near, { ...TIGHT, msg: `nearest ${outSp}` });
    // trilinear, align_corners=false: src = (dst + 0.5) · in / out − 0.5, clamped at 0
    const tri = sample(outSp, (o, a) => {
      const src = Math.max(((o + 0.5) * inSp[a]) / outSp[a] - 0.5, 0);
      const i0 = Math.min(Math.floor(src), inSp[a] - 1);
      return [i0, Math.min(i0 + 1, inSp[a] - 1), src - i0];
    });
    assertTensor(T.interpolate(x.t, { size: outSp, mode: "trilinear" }), [1, 2, ...outSp], tri, { ...TIGHT, msg: `trilinear ${outSp}` });
    // trilinear, align_corners=true: src = dst · (in − 1) / (out − 1)
    const triA = sample(outSp, (o, a) => {
      const src = outSp[a] > 1 ? (o * (inSp[a] - 1)) / (outSp[a] - 1) : 0;
      const i0 = Math.min(Math.floor(src), inSp[a] - 1);
      return [i0, Math.min(i0 + 1, inSp[a] - 1), src - i0];
    });
    assertTensor(T.interpolate(x.t, { size: outSp, mode: "trilinear", alignCorners: true }), [1, 2, ...outSp], triA, { ...TIGHT, msg: `trilinear aligned ${outSp}` });
  }
  // a scale factor gives the same result as the equivalent size
  assertTensor(T.interpolate(x.t, { scale: 2, mode: "trilinear" }), [1, 2, 6, 8, 10], T.interpolate(x.t, { size: [6, 8, 10], mode: "trilinear" }).toArray(), TIGHT);
  assertTensor(T.interpolate(x.t, { scale: [1, 2, 1] }), [1, 2, 3, 8, 5], T.interpolate(x.t, { size: [3, 8, 5] }).toArray(), TIGHT);
  assert.throws(() => T.interpolate(x.t, {}), /exactly one of size and scale/);
  assert.throws(() => T.interpolate(x.t, { size: [2, 2, 2], scale: 2 }), /exactly one of size and scale/);
  assert.throws(() => T.interpolate(T.zeros([2, 3, 4]), { size: [2, 2, 2] }), /expected a 5-d input/);
});

test("affineGrid + gridSample: identity reproduces the input, a translation shifts by whole voxels", () => {
  const xs = [2, 2, 3, 4, 5];
  const x = rnd(xs, 900);
  const [B, , D, H, W] = xs;
  const theta = (tx: number, ty: number, tz: number) =>
    f64(Array.from({ length: B }, () => [1, 0, 0, tx, 0, 1, 0, ty, 0, 0, 1, tz]).flat(), [B, 3, 4]);
  for (const alignCorners of [true, false]) {
    const grid = T.affineGrid(theta(0, 0, 0), xs, alignCorners);
    assert.deepEqual(grid.shape, [B, D, H, W, 3]);
    assertTensor(T.gridSample(x.t, grid, { alignCorners }), xs, x.v, { rtol: 1e-10, atol: 1e-12, msg: `identity, alignCorners ${alignCorners}` });
    assertTensor(T.gridSample(x.t, grid, { alignCorners, mode: "nearest" }), xs, x.v, { msg: `identity nearest, alignCorners ${alignCorners}` });
  }
  // grid x moves along W, y along H, z along D; with alignCorners one voxel is 2/(n−1)
  const shifted = T.gridSample(x.t, T.affineGrid(theta(2 / (W - 1), -2 / (H - 1), 0), xs, true), { alignCorners: true });
  const ref = build(xs, ([b, c, d, h, w]) => (w + 1 < W && h - 1 >= 0 ? x.v[ravel([b, c, d, h - 1, w + 1], xs)] : 0));
  assertTensor(shifted, xs, ref, { rtol: 1e-10, atol: 1e-12, msg: "shift (+1 in W, −1 in H), zero padding" });
  const border = T.gridSample(x.t, T.affineGrid(theta(0, 0, 2 / (D - 1)), xs, true), { alignCorners: true, padding: "border" });
  assertTensor(border, xs, build(xs, ([b, c, d, h, w]) => x.v[ravel([b, c, Math.min(d + 1, D - 1), h, w], xs)]), { rtol: 1e-10, atol: 1e-12, msg: "shift in D, border padding" });
  // an arbitrary grid against trilinear sampling with zero padding (alignCorners true)
  const gs = [B, 2, 3, 2, 3];
  const g = rnd(gs, 901, -1.2, 1.2);
  const at = (b: number, c: number, d: number, h: number, w: number) =>
    (d < 0 || h < 0 || w < 0 || d >= D || h >= H || w >= W ? 0 : x.v[ravel([b, c, d, h, w], xs)]);
  const gref = build([B, 2, 2, 3, 2], ([b, c, i, j, k]) => {
    const base = ravel([b, i, j, k, 0], gs);
    const [px, py, pz] = [((g.v[base] + 1) / 2) * (W - 1), ((g.v[base + 1] + 1) / 2) * (H - 1), ((g.v[base + 2] + 1) / 2) * (D - 1)];
    const [x0, y0, z0] = [Math.floor(px), Math.floor(py), Math.floor(pz)];
    let acc = 0;
    for (const dz of [0, 1]) for (const dy of [0, 1]) for (const dx of [0, 1]) {
      const wgt = (dx ? px - x0 : 1 - (px - x0)) * (dy ? py - y0 : 1 - (py - y0)) * (dz ? pz - z0 : 1 - (pz - z0));
      acc += wgt * at(b, c, z0 + dz, y0 + dy, x0 + dx);
    }
    return acc;
  });
  assertTensor(T.gridSample(x.t, g.t, { alignCorners: true }), [B, 2, 2, 3, 2], gref, { rtol: 1e-10, atol: 1e-12, msg: "random grid" });
});

/** mean and biased variance of a list. */
const moments = (v: number[]) => {
  const m = v.reduce((s, a) => s + a, 0) / v.length;
  return [m, v.reduce((s, a) => s + (a - m) ** 2, 0) / v.length];
};

test("instanceNorm, groupNorm and layerNorm match their formulas", () => {
  const xs = [2, 4, 3, 2, 3];
  const [B, C] = xs;
  const S = numel(xs.slice(2));
  const x = rnd(xs, 1000, -2, 3);
  const w = rnd([C], 1001, 0.5, 1.5), b = rnd([C], 1002);
  const eps = 1e-5;
  const groupRef = (G: number, affine: boolean) => {
    const cpg = C / G;
    const stats = Array.from({ length: B * G }, (_, k) => {
      const n = Math.floor(k / G), g = k % G;
      const vals: number[] = [];
      for (let c = g * cpg; c < (g + 1) * cpg; c++) for (let s = 0; s < S; s++) vals.push(x.v[(n * C + c) * S + s]);
      return moments(vals);
    });
    return x.v.map((a, i) => {
      const c = Math.floor(i / S) % C, n = Math.floor(i / (S * C));
      const [m, v] = stats[n * G + Math.floor(c / cpg)];
      const y = (a - m) / Math.sqrt(v + eps);
      return affine ? y * w.v[c] + b.v[c] : y;
    });
  };
  assertTensor(T.instanceNorm(x.t, w.t, b.t), xs, groupRef(C, true), { rtol: 1e-9, atol: 1e-10, msg: "instance norm" });
  assertTensor(T.instanceNorm(x.t, null, null), xs, groupRef(C, false), { rtol: 1e-9, atol: 1e-10, msg: "instance norm, no affine" });
  assertTensor(T.groupNorm(x.t, 2, w.t, b.t), xs, groupRef(2, true), { rtol: 1e-9, atol: 1e-10, msg: "group norm" });
  assertTensor(T.groupNorm(x.t, 1, null, null), xs, groupRef(1, false), { rtol: 1e-9, atol: 1e-10, msg: "group norm, one group" });
  // layer norm over the last two dims with an elementwise affine
  const ls = [3, 4, 5];
  const lx = rnd(ls, 1003), lw = rnd([4, 5], 1004), lb = rnd([4, 5], 1005);
  const lref = lx.v.map((a, i) => {
    const row = Math.floor(i / 20);
    const [m, v] = moments(lx.v.slice(row * 20, row * 20 + 20));
    return ((a - m) / Math.sqrt(v + eps)) * lw.v[i % 20] + lb.v[i % 20];
  });
  assertTensor(T.layerNorm(lx.t, [4, 5], lw.t, lb.t), ls, lref, { rtol: 1e-9, atol: 1e-10, msg: "layer norm" });
});

test("batchNorm normalises with batch statistics in training, updates running stats, and uses them in eval", () => {
  const xs = [3, 2, 2, 3, 2];
  const [N, C] = xs;
  const S = numel(xs.slice(2));
  const x = rnd(xs, 1100, -1, 2);
  const w = rnd([C], 1101, 0.5, 1.5), b = rnd([C], 1102);
  const rm0 = [0.5, -0.25], rv0 = [2, 0.5];
  const runningMean = f64(rm0, [C]), runningVar = f64(rv0, [C]);
  const momentum = 0.2, eps = 1e-5;
  const perChannel = Array.from({ length: C }, (_, c) => {
    const vals: number[] = [];
    for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) vals.push(x.v[(n * C + c) * S + s]);
    return moments(vals);
  });
  const cnt = N * S;
  const y = T.batchNorm(x.t, runningMean, runningVar, w.t, b.t, true, momentum, eps);
  assertTensor(y, xs, x.v.map((a, i) => {
    const c = Math.floor(i / S) % C;
    const [m, v] = perChannel[c];
    return ((a - m) / Math.sqrt(v + eps)) * w.v[c] + b.v[c];
  }), { rtol: 1e-9, atol: 1e-10 });
  // running stats: (1 − momentum)·old + momentum·batch, with the UNBIASED batch variance
  assertClose(runningMean.toArray(), rm0.map((m, c) => (1 - momentum) * m + momentum * perChannel[c][0]), TIGHT);
  assertClose(runningVar.toArray(), rv0.map((v, c) => (1 - momentum) * v + (momentum * perChannel[c][1] * cnt) / (cnt - 1)), TIGHT);
  // eval uses the running statistics and leaves them alone
  const rm = runningMean.toArray(), rv = runningVar.toArray();
  const ye = T.batchNorm(x.t, runningMean, runningVar, w.t, b.t, false, momentum, eps);
  assertTensor(ye, xs, x.v.map((a, i) => {
    const c = Math.floor(i / S) % C;
    return ((a - rm[c]) / Math.sqrt(rv[c] + eps)) * w.v[c] + b.v[c];
  }), { rtol: 1e-9, atol: 1e-10 });
  assert.deepEqual(runningMean.toArray(), rm);
  assert.deepEqual(runningVar.toArray(), rv);
});

test("softmax and logSoftmax along a dimension", () => {
  const xs = [2, 3, 4];
  const x = rnd(xs, 1200, -5, 5);
  for (const dim of [0, 1, 2, -1]) {
    const d = dim < 0 ? dim + 3 : dim;
    const ref = build(xs, (idx) => {
      const vals = Array.from({ length: xs[d] }, (_, k) => { const j = [...idx]; j[d] = k; return x.v[ravel(j, xs)]; });
      const m = Math.max(...vals);
      const lse = m + Math.log(vals.reduce((s, a) => s + Math.exp(a - m), 0));
      return x.v[ravel(idx, xs)] - lse;
    });
    assertTensor(T.logSoftmax(x.t, dim), xs, ref, { ...TIGHT, msg: `logSoftmax dim ${dim}` });
    assertTensor(T.softmax(x.t, dim), xs, ref.map(Math.exp), { ...TIGHT, msg: `softmax dim ${dim}` });
  }
  // stable for large logits
  assertTensor(T.softmax(f64([1000, 1000, -1000], [3]), 0), [3], [0.5, 0.5, 0]);
});

test("crossEntropy matches PyTorch's formula with class weights, ignore index and label smoothing", () => {
  // logits [B, C, D, H, W], targets [B, D, H, W]
  const xs = [2, 4, 2, 3, 1];
  const [B, C] = xs;
  const S = numel(xs.slice(2));
  const x = rnd(xs, 1300, -3, 3);
  const tv = build([B, ...xs.slice(2)], ([b, d, h]) => (b * 7 + d * 3 + h) % C);
  tv[1] = -100; tv[8] = 2;
  const weights = [0.5, 2, 1, 3];
  const logp = (n: number, s: number) => {
    const vals = Array.from({ length: C }, (_, c) => x.v[(n * C + c) * S + s]);
    const m = Math.max(...vals);
    const lse = m + Math.log(vals.reduce((a, v) => a + Math.exp(v - m), 0));
    return vals.map((v) => v - lse);
  };
  /** Per-voxel terms: loss numerator and its normaliser, as torch.nn.functional.cross_entropy defines them. */
  const terms = (w: number[] | null, ignore: number, eps: number, targets = tv) => {
    const out: { loss: number; norm: number; ignored: boolean }[] = [];
    for (let n = 0; n < B; n++) for (let s = 0; s < S; s++) {
      const y = targets[n * S + s];
      if (y === ignore) { out.push({ loss: 0, norm: 0, ignored: true }); continue; }
      const lp = logp(n, s);
      const wy = w ? w[y] : 1;
      const nll = -wy * lp[y];
      const smooth = -lp.reduce((a, v, c) => a + (w ? w[c] : 1) * v, 0);
      out.push({ loss: (1 - eps) * nll + (eps / C) * smooth, norm: wy, ignored: false });
    }
    return out;
  };
  const target = long(tv, [B, ...xs.slice(2)]);
  const wt = f64(weights, [C]);
  for (const [w, eps] of [[null, 0], [weights, 0], [null, 0.1], [weights, 0.2]] as const) {
    const r = terms(w as number[] | null, -100, eps);
    const opts = { weight: w ? wt : undefined, labelSmoothing: eps };
    const tag = `weights ${w !== null}, smoothing ${eps}`;
    assertTensor(T.crossEntropy(x.t, target, { ...opts, reduction: "none" }), [B, ...xs.slice(2)], r.map((t) => t.loss), { ...TIGHT, msg: tag });
    assertClose([T.crossEntropy(x.t, target, { ...opts, reduction: "sum" }).item()], [r.reduce((a, t) => a + t.loss, 0)], { ...TIGHT, msg: tag });
    const mean = r.reduce((a, t) => a + t.loss, 0) / r.reduce((a, t) => a + t.norm, 0);
    assertClose([T.crossEntropy(x.t, target, opts).item()], [mean], { ...TIGHT, msg: `${tag} mean` });
  }
  // a custom ignore index
  const tv2 = tv.map((v) => Math.max(v, 0));
  const r = terms(null, 2, 0, tv2);
  assert.ok(r.some((t) => t.ignored));
  assertClose(
    [T.crossEntropy(x.t, long(tv2, target.shape), { ignoreIndex: 2 }).item()],
    [r.reduce((a, t) => a + t.loss, 0) / r.filter((t) => !t.ignored).length],
    TIGHT,
  );
  // the plain 2-D case: [N, C] with [N]
  const logits = f64([2, 0, 0, 0, 3, 1], [2, 3]);
  const lse0 = Math.log(Math.exp(2) + 2), lse1 = Math.log(1 + Math.exp(3) + Math.exp(1));
  assertClose([T.crossEntropy(logits, long([0, 2])).item()], [((lse0 - 2) + (lse1 - 1)) / 2], TIGHT);
});

test("mse, l1, smoothL1 and bceWithLogits losses", () => {
  const xs = [3, 5];
  const a = rnd(xs, 1400, -3, 3), b = rnd(xs, 1401, -3, 3);
  const d = a.v.map((v, i) => v - b.v[i]);
  const red = (v: number[]) => ({ none: v, sum: [v.reduce((s, x) => s + x, 0)], mean: [v.reduce((s, x) => s + x, 0) / v.length] });
  const checkAll = (name: string, fn: (r: T.Reduction) => T.Tensor, per: number[]) => {
    const r = red(per);
    assertTensor(fn("none"), xs, r.none, { ...TIGHT, msg: `${name} none` });
    assertClose([fn("sum").item()], r.sum, { ...TIGHT, msg: `${name} sum` });
    assertClose([fn("mean").item()], r.mean, { ...TIGHT, msg: `${name} mean` });
  };
  checkAll("mse", (r) => T.mseLoss(a.t, b.t, r), d.map((v) => v * v));
  checkAll("l1", (r) => T.l1Loss(a.t, b.t, r), d.map(Math.abs));
  for (const beta of [1, 0.5, 2]) {
    checkAll(`smoothL1 β=${beta}`, (r) => T.smoothL1Loss(a.t, b.t, beta, r), d.map((v) => (Math.abs(v) < beta ? (0.5 * v * v) / beta : Math.abs(v) - 0.5 * beta)));
  }
  // BCE with logits: −w·[p·y·log σ(x) + (1 − y)·log(1 − σ(x))], p the positive weight per class (last dim)
  const y = rnd(xs, 1402, 0, 1);
  const w = rnd(xs, 1403, 0.5, 2);
  const pw = [1, 2, 0.5, 3, 1.5];
  const logSig = (v: number) => -Math.log1p(Math.exp(-v));
  const bce = (useW: boolean, usePw: boolean) => a.v.map((v, i) => {
    const p = usePw ? pw[i % 5] : 1;
    return -(useW ? w.v[i] : 1) * (p * y.v[i] * logSig(v) + (1 - y.v[i]) * logSig(-v));
  });
  checkAll("bce", (r) => T.bceWithLogits(a.t, y.t, { reduction: r }), bce(false, false));
  checkAll("bce weighted", (r) => T.bceWithLogits(a.t, y.t, { weight: w.t, posWeight: f64(pw, [5]), reduction: r }), bce(true, true));
});

test("dropout: identity at p = 0 and in eval; in training zeros about p and scales survivors by 1/(1 − p)", () => {
  const x = T.rand([100000], { generator: new T.Generator(9) }).add(0.5);
  assert.deepEqual(T.dropout(x, 0, true).toArray(), x.toArray());
  assert.deepEqual(T.dropout(x, 0.5, false).toArray(), x.toArray());
  T.manualSeed(31);
  for (const p of [0.2, 0.5]) {
    const y = T.dropout(x, p, true);
    const xv = x.toArray(), yv = y.toArray();
    let zeros = 0;
    for (let i = 0; i < yv.length; i++) {
      if (yv[i] === 0) zeros++;
      else assertClose([yv[i]], [xv[i] / (1 - p)], { rtol: 1e-6, msg: `survivor ${i}` });
    }
    // binomial sd at 100k is ≤ 0.0016; allow 5 sd
    assert.ok(Math.abs(zeros / yv.length - p) < 0.008, `dropped fraction ${zeros / yv.length} vs p ${p}`);
  }
  assert.throws(() => T.dropout(x, 1, true), RangeError);
  assert.throws(() => T.dropout(x, -0.1, true), RangeError);
});

/** erf by its Maclaurin series (exact to ~1e-13 for |x| ≤ 3). */
function erf(x: number): number {
  let term = x, sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

test("activations match their formulas", () => {
  const v = uniform(64, 1500, -3, 3);
  v[0] = 0;
  const x = f64(v, [8, 8]);
  const sig = (a: number) => 1 / (1 + Math.exp(-a));
  assertTensor(T.relu(x), [8, 8], v.map((a) => Math.max(a, 0)), TIGHT);
  assertTensor(T.leakyRelu(x), [8, 8], v.map((a) => (a > 0 ? a : 0.01 * a)), TIGHT);
  assertTensor(T.leakyRelu(x, 0.2), [8, 8], v.map((a) => (a > 0 ? a : 0.2 * a)), TIGHT);
  assertTensor(T.gelu(x), [8, 8], v.map((a) => 0.5 * a * (1 + erf(a / Math.SQRT2))), { rtol: 1e-9, atol: 1e-12 });
  assertTensor(T.gelu(x, "tanh"), [8, 8], v.map((a) => 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a ** 3)))), TIGHT);
  assertTensor(T.silu(x), [8, 8], v.map((a) => a * sig(a)), TIGHT);
  assertTensor(T.sigmoid(x), [8, 8], v.map(sig), TIGHT);
  assertTensor(T.tanh(x), [8, 8], v.map(Math.tanh), TIGHT);
  // in-place variants overwrite and return their input
  const y = x.clone();
  assert.equal(T.leakyRelu_(y, 0.1), y);
  assertTensor(y, [8, 8], v.map((a) => (a > 0 ? a : 0.1 * a)), TIGHT);
  const z = x.clone();
  assert.equal(T.relu_(z), z);
  assertTensor(z, [8, 8], v.map((a) => Math.max(a, 0)), TIGHT);
  // one-hot
  const oh = T.oneHot(long([2, 0, 1], [3]), 4);
  assertTensor(oh, [3, 4], [0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0]);
});

test("argmaxAlong is torch.argmax: first index on ties, NaN the largest, any dim", () => {
  const vals = (n: number, seed: number) => uniform(n, seed, -1, 1).map((v) => Math.round(v * 3) / 3); // many ties
  for (const shape of [[2, 3, 4], [3, 5, 2], [5, 2, 3], [1, 4, 2]]) {
    const v = vals(numel(shape), shape[0] * 10 + shape[1]);
    [1, 7, 11, 20].forEach((k) => { if (k < v.length) v[k] = NaN; });
    if (shape[0] > 1) v[3 + shape[1] * shape[2]] = NaN; // two NaN at one place along dim 0
    const x = T.tensor(new Float32Array(v), shape);
    for (const dim of [0, 1, -1]) {
      const ours = T.argmaxAlong(x, dim), ref = x.argmax(dim);
      assert.deepEqual(ours.shape, ref.shape);
      assert.equal(ours.dtype, "int64");
      assert.deepEqual(ours.toArray(), ref.toArray(), `shape [${shape}] dim ${dim}`);
      ours.dispose();
      ref.dispose();
    }
    x.dispose();
  }
});
