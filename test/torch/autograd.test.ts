// Autograd: for each differentiable family, backward() agrees with central finite differences in
// float64; plus explicit output gradients, accumulation, noGrad, grad() and detach.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { assertClose, assertTensor, checkGradients, randomTensor } from "./helpers.ts";

const r64 = (shape: number[], seed: number, lo = -1, hi = 1) => randomTensor(shape, seed, { dtype: "float64", lo, hi });
const long = (v: number[], shape?: number[]): T.Tensor => T.tensor(v, shape, { dtype: "int64" });

test("gradients of element-wise ops (with broadcasting) match finite differences", () => {
  const a = r64([2, 3, 4], 1), b = r64([3, 1], 2, 0.5, 1.5), p = r64([2, 3, 4], 3, 0.5, 2);
  const cases: [string, (x: T.Tensor[]) => T.Tensor, T.Tensor[]][] = [
    ["add alpha", ([x, y]) => x.add(y, 0.7), [a, b]],
    ["sub", ([x, y]) => x.sub(y), [a, b]],
    ["mul", ([x, y]) => x.mul(y), [a, b]],
    ["div", ([x, y]) => x.div(y), [a, b]],
    ["pow tensor", ([x, y]) => x.pow(y), [p, b]],
    ["pow scalar", ([x]) => x.pow(3), [a]],
    ["exp, log, sqrt", ([x]) => x.exp().add(x.log()).add(x.sqrt()).add(x.rsqrt()), [p]],
    ["sigmoid, tanh, sin, cos", ([x]) => x.sigmoid().mul(x.tanh()).add(x.sin()).sub(x.cos()), [a]],
    ["abs, neg, square, reciprocal", ([x]) => x.abs().add(x.neg().square()).add(x.add(3).reciprocal()), [a]],
    ["clamp", ([x]) => x.clamp(-0.5, 0.5), [a]],
    ["maximum, minimum", ([x, y]) => x.maximum(y).add(x.minimum(y.mul(0.5))), [a, r64([2, 3, 4], 4)]],
    ["where", ([x, y]) => T.where(x.gt(0), x.mul(y), y.sub(x)), [a, b]],
    ["lerp", ([x, y]) => x.lerp(y.expand(2, 3, 4), 0.3), [a, b]],
    ["relu, leakyRelu, gelu, silu", ([x]) => T.relu(x).add(T.leakyRelu(x, 0.1)).add(T.gelu(x)).add(T.silu(x)).add(T.gelu(x, "tanh")), [a]],
  ];
  for (const [name, f, xs] of cases) checkGradients(f, xs, { msg: name });
});

test("gradients of shape ops match finite differences", () => {
  const a = r64([2, 3, 4], 10), b = r64([2, 2, 4], 11);
  const cases: [string, (x: T.Tensor[]) => T.Tensor, T.Tensor[]][] = [
    ["permute + reshape", ([x]) => x.permute(2, 0, 1).reshape(4, 6), [a]],
    ["cat + stack", ([x, y]) => T.stack([T.cat([x, y], 1), T.cat([y, x], 1)], 0), [a, b]],
    ["narrow, slice, select", ([x]) => x.narrow(1, 1, 2).slice(2, 0, 4, 2).add(x.select(1, 0).slice(1, 1, 3).unsqueeze(1)), [a]],
    ["gather", ([x]) => x.gather(2, long([0, 3, 3, 1, 2, 0, 1, 1, 2, 0, 3, 0], [2, 3, 2])), [a]],
    ["indexSelect", ([x]) => x.indexSelect(1, long([2, 0, 2])), [a]],
    ["pad reflect + replicate + constant", ([x]) => T.pad(T.pad(T.pad(x.unsqueeze(0), [2, 1, 1, 1], "reflect"), [1, 0, 0, 2], "replicate"), [1, 2], "constant", 3), [a]],
    ["flip, roll, repeat, expand", ([x]) => x.flip(1).roll(1, 2).repeat(1, 2, 1).add(x.select(1, 0).unsqueeze(1).expand(2, 6, 4)), [a]],
  ];
  for (const [name, f, xs] of cases) checkGradients(f, xs, { msg: name });
});

test("gradients of reductions match finite differences", () => {
  const a = r64([3, 4, 5], 20, 0.2, 2);
  const cases: [string, (x: T.Tensor[]) => T.Tensor][] = [
    ["sum all", ([x]) => x.sum()],
    ["sum dims keepdim", ([x]) => x.sum([0, 2], true)],
    ["mean dim", ([x]) => x.mean(1)],
    ["max dim", ([x]) => x.max(2)],
    ["min dim keepdim", ([x]) => x.min(0, true)],
    ["amax", ([x]) => x.amax([1, 2])],
    ["max all", ([x]) => x.max()],
    ["std", ([x]) => x.std(2)],
    ["var correction 0", ([x]) => x.var([0, 1], { correction: 0, keepdim: true })],
    ["norm", ([x]) => x.norm(2, 1)],
    ["prod", ([x]) => x.prod(1)],
    ["cumsum", ([x]) => x.cumsum(2)],
  ];
  for (const [name, f] of cases) checkGradients(f, [a], { msg: name });
});

test("gradients of matmul and linear match finite differences", () => {
  checkGradients(([x, y]) => T.matmul(x, y), [r64([3, 4], 30), r64([4, 2], 31)], { msg: "matmul 2-d" });
  checkGradients(([x, y]) => T.matmul(x, y), [r64([2, 1, 3, 4], 32), r64([3, 4, 2], 33)], { msg: "matmul batched, broadcast" });
  checkGradients(([x, y]) => T.matmul(x, y), [r64([4], 34), r64([4, 3], 35)], { msg: "vector-matrix" });
  checkGradients(([x, w, b]) => T.linear(x, w, b), [r64([2, 5], 36), r64([3, 5], 37), r64([3], 38)], { msg: "linear" });
});

test("gradients of conv3d and convTranspose3d match finite differences (input, weight, bias)", () => {
  checkGradients(([x, w, b]) => T.conv3d(x, w, b, { stride: [1, 2, 1], padding: 1 }), [r64([1, 2, 3, 4, 3], 40), r64([3, 2, 2, 3, 2], 41), r64([3], 42)], { msg: "conv3d stride/padding" });
  checkGradients(([x, w]) => T.conv3d(x, w, null, { dilation: [2, 1, 1], groups: 2 }), [r64([2, 4, 4, 3, 3], 43), r64([2, 2, 2, 2, 2], 44)], { msg: "conv3d dilation/groups" });
  checkGradients(([x, w, b]) => T.convTranspose3d(x, w, b, { stride: 2, padding: [0, 1, 0], outputPadding: [1, 0, 0] }), [r64([1, 2, 2, 3, 2], 45), r64([2, 3, 2, 3, 2], 46), r64([3], 47)], { msg: "convTranspose3d" });
  checkGradients(([x, w]) => T.convTranspose3d(x, w, null, { groups: 2, dilation: [1, 2, 1] }), [r64([1, 4, 2, 2, 2], 48), r64([4, 1, 2, 2, 2], 49)], { msg: "convTranspose3d groups/dilation" });
});

test("gradients of pooling and resampling match finite differences", () => {
  const x = r64([1, 2, 3, 4, 4], 50);
  checkGradients(([t]) => T.maxPool3d(t, 2, { stride: [2, 1, 2], padding: [1, 0, 1] }), [x], { msg: "maxPool3d" });
  checkGradients(([t]) => T.avgPool3d(t, 3, { stride: 2, padding: 1 }), [x], { msg: "avgPool3d" });
  checkGradients(([t]) => T.avgPool3d(t, 2, { countIncludePad: false, padding: 1 }), [x], { msg: "avgPool3d exclude pad" });
  checkGradients(([t]) => T.adaptiveAvgPool3d(t, [2, 3, 3]), [x], { msg: "adaptiveAvgPool3d" });
  const y = r64([1, 2, 2, 3, 3], 51);
  checkGradients(([t]) => T.interpolate(t, { size: [3, 5, 4], mode: "trilinear" }), [y], { msg: "trilinear" });
  checkGradients(([t]) => T.interpolate(t, { scale: 2, mode: "trilinear", alignCorners: true }), [y], { msg: "trilinear aligned" });
  checkGradients(([t]) => T.interpolate(t, { size: [4, 5, 6] }), [y], { msg: "nearest" });
});

test("gradients of affineGrid + gridSample match finite differences (input, grid and theta)", () => {
  const x = r64([1, 2, 3, 3, 4], 60);
  const grid = r64([1, 2, 2, 3, 3], 61, -0.9, 0.9);
  checkGradients(([t, g]) => T.gridSample(t, g, { alignCorners: true }), [x, grid], { msg: "gridSample aligned" });
  checkGradients(([t, g]) => T.gridSample(t, g, { padding: "border" }), [x, grid], { msg: "gridSample border" });
  const theta = T.tensor(new Float64Array([0.9, 0.1, 0, 0.05, -0.1, 1.1, 0.05, 0, 0.02, 0, 0.95, -0.1]), [1, 3, 4]);
  checkGradients(([t, th]) => T.gridSample(t, T.affineGrid(th, [1, 2, 3, 3, 4], false)), [x, theta], { msg: "affine warp" });
});

test("gradients of normalisation layers match finite differences", () => {
  const x = r64([2, 4, 2, 2, 3], 70, -1, 2);
  const w = r64([4], 71, 0.5, 1.5), b = r64([4], 72);
  checkGradients(([t, ww, bb]) => T.instanceNorm(t, ww, bb), [x, w, b], { msg: "instanceNorm" });
  checkGradients(([t, ww, bb]) => T.groupNorm(t, 2, ww, bb), [x, w, b], { msg: "groupNorm" });
  checkGradients(([t, ww, bb]) => T.batchNorm(t, null, null, ww, bb, true), [x, w, b], { msg: "batchNorm train" });
  const rm = r64([4], 73), rv = r64([4], 74, 0.5, 2);
  checkGradients(([t, ww, bb]) => T.batchNorm(t, rm, rv, ww, bb, false), [x, w, b], { msg: "batchNorm eval" });
  checkGradients(([t, ww, bb]) => T.layerNorm(t, [2, 3], ww, bb), [x, r64([2, 3], 75), r64([2, 3], 76)], { msg: "layerNorm" });
});

test("gradients of softmax, logSoftmax and losses match finite differences", () => {
  const logits = r64([2, 3, 2, 2, 1], 80, -2, 2);
  checkGradients(([t]) => T.softmax(t, 1), [logits], { msg: "softmax" });
  checkGradients(([t]) => T.logSoftmax(t, -1), [r64([3, 5], 81)], { msg: "logSoftmax" });
  const target = long([0, 2, 1, -100, 2, 2, 0, 1], [2, 2, 2, 1]);
  const weight = T.tensor(new Float64Array([0.5, 2, 1]));
  checkGradients(([t]) => T.crossEntropy(t, target), [logits], { msg: "crossEntropy" });
  checkGradients(([t]) => T.crossEntropy(t, target, { weight, labelSmoothing: 0.1 }), [logits], { msg: "crossEntropy weights + smoothing" });
  checkGradients(([t]) => T.crossEntropy(t, target.clamp(0), { ignoreIndex: 1, reduction: "sum" }), [logits], { msg: "crossEntropy ignoreIndex" });
  const a = r64([3, 4], 82), c = r64([3, 4], 83);
  checkGradients(([x, y]) => T.mseLoss(x, y), [a, c], { msg: "mse" });
  checkGradients(([x, y]) => T.l1Loss(x, y, "sum"), [a, c], { msg: "l1" });
  checkGradients(([x, y]) => T.smoothL1Loss(x, y, 0.5, "none"), [a, c], { msg: "smoothL1" });
  const y01 = r64([3, 4], 84, 0, 1);
  checkGradients(([x]) => T.bceWithLogits(x, y01, { posWeight: T.tensor(new Float64Array([1, 2, 0.5, 3])) }), [a], { msg: "bceWithLogits" });
});

test("backward with an explicit output gradient gives the vector-Jacobian product", () => {
  const x = T.tensor(new Float64Array([1, -2, 3]), [3], { requiresGrad: true });
  const y = x.mul(x).mul(x); // dy/dx = 3x²
  assert.throws(() => y.backward(), /pass a gradient of that shape or reduce it to a scalar/);
  y.backward(T.tensor(new Float64Array([1, 0.5, -2])));
  assertTensor(x.grad!, [3], [3, 6, -54]);
  assert.equal(x.isLeaf, true);
  assert.equal(y.isLeaf, false);
  assert.match(y.gradFn ?? "", /Mul/);
  assert.equal(x.gradFn, null);
});

test("gradients accumulate across backward calls until reset", () => {
  const w = T.tensor(new Float64Array([2, -1]), [2], { requiresGrad: true });
  w.mul(3).sum().backward();
  w.mul(w).sum().backward();
  assertTensor(w.grad!, [2], [3 + 4, 3 - 2]);
  // retainGraph lets one graph be walked twice
  const s = w.exp().sum();
  s.backward(undefined, { retainGraph: true });
  s.backward();
  assertClose(w.grad!.toArray(), [7 + 2 * Math.exp(2), 1 + 2 * Math.exp(-1)], { rtol: 1e-12 });
  w.grad = null;
  assert.equal(w.grad, null);
  w.sum().backward();
  assertTensor(w.grad!, [2], [1, 1]);
  // a non-leaf keeps its gradient only with retainGrad
  const h = w.mul(2).retainGrad();
  h.square().sum().backward();
  assertTensor(h.grad!, [2], [8, -4]);
});

test("noGrad switches autograd off inside, enableGrad back on, and both restore the mode", () => {
  const x = T.ones([3], { requiresGrad: true });
  assert.equal(T.isGradEnabled(), true);
  const y = T.noGrad(() => {
    assert.equal(T.isGradEnabled(), false);
    const inner = T.enableGrad(() => x.mul(2));
    assert.equal(inner.requiresGrad, true);
    assert.equal(T.isGradEnabled(), false);
    return x.mul(2).add(1);
  });
  assert.equal(T.isGradEnabled(), true);
  assert.equal(y.requiresGrad, false);
  assert.equal(y.gradFn, null);
  assert.equal(x.mul(2).requiresGrad, true);
  // the mode is restored after a throw too
  assert.throws(() => T.noGrad(() => { throw new Error("boom"); }), /boom/);
  assert.equal(T.isGradEnabled(), true);
  // in-place updates of a leaf are allowed under noGrad (the optimizer step)
  T.noGrad(() => x.sub_(T.full([3], 0.5)));
  assertTensor(x, [3], [0.5, 0.5, 0.5]);
  assert.equal(x.requiresGrad, true);
});

test("T.grad returns gradients without touching .grad, and supports second derivatives", () => {
  const x = T.tensor(new Float64Array([0.5, 2]), [2], { requiresGrad: true });
  const w = T.tensor(new Float64Array([3, -1]), [2], { requiresGrad: true });
  const y = x.pow(3).mul(w).sum();
  const [gx, gw] = T.grad([y], [x, w], { createGraph: true });
  assertClose(gx.toArray(), [3 * 0.25 * 3, 3 * 4 * -1], { rtol: 1e-12 });
  assertClose(gw.toArray(), [0.125, 8], { rtol: 1e-12 });
  assert.equal(x.grad, null);
  // d/dx of sum(dy/dx) = 6·x·w
  const [gxx] = T.grad([gx.sum()], [x]);
  assertClose(gxx.toArray(), [6 * 0.5 * 3, 6 * 2 * -1], { rtol: 1e-12 });
  // explicit output gradients
  const z = x.mul(x);
  const [gz] = T.grad([z], [x], { gradOutputs: [T.tensor(new Float64Array([1, 10]))] });
  assertClose(gz.toArray(), [1, 40], { rtol: 1e-12 });
});

test("detach stops gradients and shares values", () => {
  const x = T.tensor(new Float64Array([1, 2, 3]), [3], { requiresGrad: true });
  const d = x.mul(2).detach();
  assert.equal(d.requiresGrad, false);
  assert.equal(d.isLeaf, true);
  assertTensor(d, [3], [2, 4, 6]);
  x.mul(d).sum().backward();
  assertTensor(x.grad!, [3], [2, 4, 6], { msg: "the detached factor is a constant" });
  // requiresGrad can be switched on a leaf
  const leaf = T.zeros([2]);
  assert.equal(leaf.requiresGrad, false);
  leaf.requiresGrad = true;
  assert.equal(leaf.requiresGrad, true);
  assert.equal(leaf.requiresGrad_(false), leaf);
  assert.equal(leaf.requiresGrad, false);
});
