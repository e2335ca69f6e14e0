// Element-wise maths with broadcasting, comparisons, where/clamp, reductions over dimensions and
// matmul, each against a slow JS reference in float64.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { assertClose, assertTensor, build, numel, ravel, uniform } from "./helpers.ts";

const f64 = (vals: number[], shape: number[]): T.Tensor => T.tensor(new Float64Array(vals), shape);

/** NumPy broadcasting: the output shape and, per output index, the flat index into each input. */
function broadcast(aShape: number[], bShape: number[]): { shape: number[]; ai: number[]; bi: number[] } {
  const n = Math.max(aShape.length, bShape.length);
  const pa = [...new Array(n - aShape.length).fill(1), ...aShape];
  const pb = [...new Array(n - bShape.length).fill(1), ...bShape];
  const shape = pa.map((s, i) => {
    if (s !== pb[i] && s !== 1 && pb[i] !== 1) throw new Error("not broadcastable");
    return Math.max(s, pb[i]);
  });
  const ai = build(shape, (idx) => ravel(idx.map((v, i) => (pa[i] === 1 ? 0 : v)), pa));
  const bi = build(shape, (idx) => ravel(idx.map((v, i) => (pb[i] === 1 ? 0 : v)), pb));
  return { shape, ai, bi };
}

/** Reduces `dims` of a row-major array with `fn` over each group of values. */
function reduceRef(
  data: number[], shape: number[], dims: number[], keepdim: boolean, fn: (v: number[]) => number,
): { shape: number[]; values: number[] } {
  const dd = dims.map((d) => (d < 0 ? d + shape.length : d));
  const kept = shape.map((s, i) => (dd.includes(i) ? 1 : s));
  const groups: number[][] = Array.from({ length: numel(kept) }, () => []);
  for (let i = 0; i < data.length; i++) {
    const idx = build([shape.length], () => 0);
    let f = i;
    for (let d = shape.length - 1; d >= 0; d--) { idx[d] = f % shape[d]; f = Math.floor(f / shape[d]); }
    groups[ravel(idx.map((v, k) => (dd.includes(k) ? 0 : v)), kept)].push(data[i]);
  }
  return { shape: keepdim ? kept : shape.filter((_, i) => !dd.includes(i)), values: groups.map(fn) };
}

const sum = (v: number[]) => v.reduce((s, x) => s + x, 0);
const mean = (v: number[]) => sum(v) / v.length;
const variance = (c: number) => (v: number[]) => { const m = mean(v); return sum(v.map((x) => (x - m) ** 2)) / Math.max(0, v.length - c); };
const argmax = (v: number[]) => v.indexOf(Math.max(...v));
const argmin = (v: number[]) => v.indexOf(Math.min(...v));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
/** Python's modulo: the result has the sign of the divisor. */
const pyMod = (a: number, b: number) => a - Math.floor(a / b) * b;
/** Round half to even, as torch.round. */
const roundEven = (x: number) => { const r = Math.round(x); return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r; };

test("binary element-wise ops broadcast as NumPy and match JS maths", () => {
  const pairs: [number[], number[]][] = [[[2, 3, 4], [4]], [[2, 1, 4], [3, 1]], [[1, 3, 1], [2, 1, 5]], [[3, 4], [3, 4]], [[], [2, 2]]];
  const ops: [string, (a: T.Tensor, b: T.Tensor) => T.Tensor, (a: number, b: number) => number][] = [
    ["add", (a, b) => a.add(b), (a, b) => a + b],
    ["add alpha", (a, b) => a.add(b, 2.5), (a, b) => a + 2.5 * b],
    ["sub", (a, b) => a.sub(b), (a, b) => a - b],
    ["sub alpha", (a, b) => a.sub(b, -3), (a, b) => a + 3 * b],
    ["mul", (a, b) => a.mul(b), (a, b) => a * b],
    ["div", (a, b) => a.div(b), (a, b) => a / b],
    ["pow", (a, b) => a.abs().pow(b), (a, b) => Math.abs(a) ** b],
    ["remainder", (a, b) => a.remainder(b), pyMod],
    ["maximum", (a, b) => a.maximum(b), Math.max],
    ["minimum", (a, b) => a.minimum(b), Math.min],
  ];
  pairs.forEach(([as, bs], k) => {
    const { shape, ai, bi } = broadcast(as, bs);
    const av = uniform(numel(as), 10 + k, -3, 3);
    const bv = uniform(numel(bs), 20 + k, 0.5, 2).map((x, i) => (i % 2 ? -x : x));
    const a = f64(av, as), b = f64(bv, bs);
    for (const [name, fn, ref] of ops) {
      assertTensor(fn(a, b), shape, ai.map((i, j) => ref(av[i], bv[bi[j]])), { rtol: 1e-12, atol: 1e-12, msg: `${name} ${JSON.stringify(as)} with ${JSON.stringify(bs)}` });
    }
  });
  // scalar operands
  const x = f64([1, -2, 3.5], [3]);
  assertTensor(x.add(1), [3], [2, -1, 4.5]);
  assertTensor(x.sub(0.5, 2), [3], [0, -3, 2.5]);
  assertTensor(x.mul(-2), [3], [-2, 4, -7]);
  assertTensor(x.div(4), [3], [0.25, -0.5, 0.875]);
  assertTensor(x.pow(2), [3], [1, 4, 12.25]);
  assertTensor(x.remainder(1.5), [3], [1, 1, 0.5]);
  assertTensor(x.lerp(f64([3, 2, 1.5], [3]), 0.25), [3], [1.5, -1, 3]);
});

test("dtype promotion: int with float gives float, int division is true division", () => {
  const i = T.tensor([7, -7], undefined, { dtype: "int64" });
  assert.equal(i.add(T.tensor([0.5])).dtype, "float32");
  assert.equal(i.add(1).dtype, "int64");
  assert.equal(i.mul(0.5).dtype, "float32");
  assertTensor(i.div(2), [2], [3.5, -3.5]);
  assertTensor(i.remainder(3), [2], [1, 2]);
  assert.equal(T.ones([2], { dtype: "float32" }).add(T.ones([2], { dtype: "float64" })).dtype, "float64");
  assert.equal(T.ones([2], { dtype: "bfloat16" }).add(T.ones([2], { dtype: "float32" })).dtype, "float32");
});

test("unary element-wise ops match JS Math", () => {
  const n = 40;
  const v = uniform(n, 3, -4, 4);
  v[0] = 0.5; v[1] = -2.5; v[2] = 1.5; v[3] = 0; // round-half-to-even and sign(0) cases
  const x = f64(v, [5, 8]);
  const pos = v.map((a) => Math.abs(a) + 0.1);
  const xp = f64(pos, [5, 8]);
  const unary: [string, T.Tensor, (t: T.Tensor) => T.Tensor, number[]][] = [
    ["neg", x, (t) => t.neg(), v.map((a) => -a)],
    ["exp", x, (t) => t.exp(), v.map(Math.exp)],
    ["log", xp, (t) => t.log(), pos.map(Math.log)],
    ["log1p", xp, (t) => t.log1p(), pos.map(Math.log1p)],
    ["sqrt", xp, (t) => t.sqrt(), pos.map(Math.sqrt)],
    ["rsqrt", xp, (t) => t.rsqrt(), pos.map((a) => 1 / Math.sqrt(a))],
    ["square", x, (t) => t.square(), v.map((a) => a * a)],
    ["abs", x, (t) => t.abs(), v.map(Math.abs)],
    ["sign", x, (t) => t.sign(), v.map((a) => Math.sign(a) + 0)],
    ["floor", x, (t) => t.floor(), v.map(Math.floor)],
    ["ceil", x, (t) => t.ceil(), v.map((a) => Math.ceil(a) + 0)],
    ["round", x, (t) => t.round(), v.map((a) => roundEven(a) + 0)],
    ["reciprocal", xp, (t) => t.reciprocal(), pos.map((a) => 1 / a)],
    ["sin", x, (t) => t.sin(), v.map(Math.sin)],
    ["cos", x, (t) => t.cos(), v.map(Math.cos)],
    ["sigmoid", x, (t) => t.sigmoid(), v.map(sigmoid)],
    ["tanh", x, (t) => t.tanh(), v.map(Math.tanh)],
    ["relu", x, (t) => t.relu(), v.map((a) => Math.max(a, 0))],
  ];
  for (const [name, input, fn, ref] of unary) {
    const out = fn(input);
    assert.equal(out.dtype, "float64", name);
    assertClose(out.toArray().map((a) => a + 0), ref, { rtol: 1e-12, atol: 1e-14, msg: name });
  }
  // float32 agrees with the float64 reference to float32 precision
  assertClose(x.float().exp().toArray(), v.map(Math.exp), { rtol: 1e-6, msg: "exp float32" });
  assert.deepEqual(f64([-1, 0], [2]).log().toArray(), [NaN, -Infinity]);
  assert.deepEqual(f64([NaN, 1], [2]).isnan().toArray(), [1, 0]);
});

test("comparisons and logical ops give bool tensors with broadcasting", () => {
  const a = f64([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = f64([2, 2, 5], [3]);
  const { ai, bi } = broadcast([2, 3], [3]);
  const av = a.toArray(), bv = b.toArray();
  const cmp: [string, (x: T.Tensor, y: T.Tensor) => T.Tensor, (x: number, y: number) => boolean][] = [
    ["eq", (x, y) => x.eq(y), (x, y) => x === y], ["ne", (x, y) => x.ne(y), (x, y) => x !== y],
    ["lt", (x, y) => x.lt(y), (x, y) => x < y], ["le", (x, y) => x.le(y), (x, y) => x <= y],
    ["gt", (x, y) => x.gt(y), (x, y) => x > y], ["ge", (x, y) => x.ge(y), (x, y) => x >= y],
  ];
  for (const [name, fn, ref] of cmp) {
    const out = fn(a, b);
    assert.equal(out.dtype, "bool", name);
    assertTensor(out, [2, 3], ai.map((i, j) => Number(ref(av[i], bv[bi[j]]))), { msg: name });
  }
  assertTensor(a.gt(3), [2, 3], [0, 0, 0, 1, 1, 1]);
  assertTensor(a.eq(2), [2, 3], [0, 1, 0, 0, 0, 0]);
  assertTensor(a.le(2), [2, 3], [1, 1, 0, 0, 0, 0]);
  const p = a.gt(2), q = a.remainder(2).eq(0);
  assertTensor(p.logicalAnd(q), [2, 3], [0, 0, 0, 1, 0, 1]);
  assertTensor(p.logicalOr(q), [2, 3], [0, 1, 1, 1, 1, 1]);
  assertTensor(p.logicalNot(), [2, 3], [1, 1, 0, 0, 0, 0]);
  assert.equal(a.allClose(a.add(1e-9)), true);
  assert.equal(a.allClose(a.add(1e-3)), false);
  assert.equal(p.any().item(), 1);
  assert.equal(p.all().item(), 0);
});

test("where picks element-wise with broadcasting and scalar branches", () => {
  const cond = T.tensor([1, 0, 1, 0, 0, 1], [2, 3], { dtype: "bool" });
  const a = f64([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = f64([-1, -2, -3], [3]);
  assertTensor(T.where(cond, a, b), [2, 3], [1, -2, 3, -1, -2, 6]);
  assertTensor(T.where(cond, a, 0), [2, 3], [1, 0, 3, 0, 0, 6]);
  assertTensor(T.where(cond, 9, b), [2, 3], [9, -2, 9, -1, -2, 9]);
  assertTensor(T.where(cond, 1, -1), [2, 3], [1, -1, 1, -1, -1, 1]);
  // a [2, 1] condition broadcasts across columns
  assertTensor(T.where(T.tensor([1, 0], [2, 1], { dtype: "bool" }), a, b), [2, 3], [1, 2, 3, -1, -2, -3]);
});

test("clamp with min, max or both, in and out of place", () => {
  const v = [-3, -0.5, 0, 0.7, 2, 9];
  const x = f64(v, [6]);
  assertTensor(x.clamp(-1, 1), [6], v.map((a) => Math.min(Math.max(a, -1), 1)));
  assertTensor(x.clamp(0), [6], v.map((a) => Math.max(a, 0)));
  assertTensor(x.clamp(null, 0.5), [6], v.map((a) => Math.min(a, 0.5)));
  assert.throws(() => x.clamp(), /give min, max or both/);
  const y = x.clone();
  assert.equal(y.clamp_(-1, 1), y);
  assertTensor(y, [6], v.map((a) => Math.min(Math.max(a, -1), 1)));
});

test("in-place ops modify the tensor itself and return it", () => {
  const x = f64([1, 2, 3], [3]);
  assert.equal(x.add_(1), x);
  assertTensor(x, [3], [2, 3, 4]);
  x.sub_(f64([1, 1, 1], [3]), 0.5);
  assertTensor(x, [3], [1.5, 2.5, 3.5]);
  x.mul_(2).div_(f64([1, 5, 7], [3]));
  assertTensor(x, [3], [3, 1, 1]);
  x.lerp_(f64([5, 5, 5], [3]), 0.5);
  assertTensor(x, [3], [4, 3, 3]);
  x.maskedFill_(x.eq(3), -1);
  assertTensor(x, [3], [4, -1, -1]);
  x.copy_(f64([7, 8, 9], [3]));
  assertTensor(x, [3], [7, 8, 9]);
  x.fill_(2);
  assertTensor(x, [3], [2, 2, 2]);
  x.zero_();
  assertTensor(x, [3], [0, 0, 0]);
  // copy_ broadcasts and converts
  const z = T.zeros([2, 2], { dtype: "int32" }).copy_(f64([1.9, -2.2], [2]));
  assertTensor(z, [2, 2], [1, -2, 1, -2]);
});

test("reductions over dims with keepdim agree with the JS reference", () => {
  const shape = [3, 4, 5];
  const v = uniform(numel(shape), 77, -2, 2);
  const x = f64(v, shape);
  const dimSets: number[][] = [[0], [1], [2], [-1], [0, 2], [1, 2]];
  for (const dims of dimSets) {
    for (const keepdim of [false, true]) {
      const tag = `dims ${JSON.stringify(dims)} keepdim ${keepdim}`;
      const check = (name: string, t: T.Tensor, fn: (g: number[]) => number) => {
        const r = reduceRef(v, shape, dims, keepdim, fn);
        assertTensor(t, r.shape, r.values, { rtol: 1e-12, atol: 1e-12, msg: `${name} ${tag}` });
      };
      check("sum", x.sum(dims, keepdim), sum);
      check("mean", x.mean(dims, keepdim), mean);
      check("amax", x.amax(dims, keepdim), (g) => Math.max(...g));
      check("amin", x.amin(dims, keepdim), (g) => Math.min(...g));
      for (const correction of [0, 1, 2]) {
        check(`var c=${correction}`, x.var(dims, { correction, keepdim }), variance(correction));
        check(`std c=${correction}`, x.std(dims, { correction, keepdim }), (g) => Math.sqrt(variance(correction)(g)));
      }
      check("norm 2", x.norm(2, dims, keepdim), (g) => Math.sqrt(sum(g.map((a) => a * a))));
      check("norm 1", x.norm(1, dims, keepdim), (g) => sum(g.map(Math.abs)));
      if (dims.length === 1) {
        const d = dims[0];
        check("max", x.max(d, keepdim), (g) => Math.max(...g));
        check("min", x.min(d, keepdim), (g) => Math.min(...g));
        check("prod", x.prod(d, keepdim), (g) => g.reduce((p, a) => p * a, 1));
        const am = x.argmax(d, keepdim);
        assert.equal(am.dtype, "int64");
        check("argmax", am, argmax);
        check("argmin", x.argmin(d, keepdim), argmin);
        const { values, indices } = x.maxWithIndices(d, keepdim);
        check("maxWithIndices values", values, (g) => Math.max(...g));
        check("maxWithIndices indices", indices, argmax);
      }
    }
  }
  // full reductions
  assertClose([x.sum().item()], [sum(v)], { rtol: 1e-12 });
  assertClose([x.mean().item()], [mean(v)], { rtol: 1e-12 });
  assert.equal(x.max().item(), Math.max(...v));
  assert.equal(x.min().item(), Math.min(...v));
  assert.equal(x.argmax().item(), argmax(v));
  assert.equal(x.argmin().item(), argmin(v));
  assertClose([x.var().item()], [variance(1)(v)], { rtol: 1e-12 });
  assertClose([x.std(undefined, { correction: 0 }).item()], [Math.sqrt(variance(0)(v))], { rtol: 1e-12 });
  assertClose([x.norm().item()], [Math.sqrt(sum(v.map((a) => a * a)))], { rtol: 1e-12 });
  assertClose(
    [x.narrow(2, 0, 1).prod().item()],
    [reduceRef(v, shape, [0, 1, 2], false, (g) => g.filter((_, i) => i % 5 === 0).reduce((p, a) => p * a, 1)).values[0]],
    { rtol: 1e-12 },
  );
  // cumsum along a dimension
  const c = x.cumsum(1);
  assertTensor(c, shape, build(shape, ([a, b, k]) => {
    let s = 0;
    for (let j = 0; j <= b; j++) s += v[ravel([a, j, k], shape)];
    return s;
  }), { rtol: 1e-12, atol: 1e-12 });
  // sums of integers stay integers (int64)
  const ints = T.tensor([1, 2, 3, 4], [2, 2], { dtype: "int32" });
  assert.equal(ints.sum().dtype, "int64");
  assertTensor(ints.sum(0), [2], [4, 6]);
});

test("matmul agrees with the triple loop, with batch broadcasting and vectors", () => {
  const mm = (a: number[], b: number[], n: number, k: number, m: number): number[] => {
    const out = new Array<number>(n * m).fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) for (let p = 0; p < k; p++) out[i * m + j] += a[i * k + p] * b[p * m + j];
    return out;
  };
  const av = uniform(4 * 6, 1), bv = uniform(6 * 5, 2);
  assertTensor(T.matmul(f64(av, [4, 6]), f64(bv, [6, 5])), [4, 5], mm(av, bv, 4, 6, 5), { rtol: 1e-12, atol: 1e-12 });
  assertTensor(f64(av, [4, 6]).float().matmul(f64(bv, [6, 5]).float()), [4, 5], mm(av, bv, 4, 6, 5), { rtol: 1e-5, atol: 1e-5 });
  // batched: [2, 1, 3, 4] @ [3, 4, 2] → [2, 3, 3, 2]
  const A = uniform(2 * 3 * 4, 3), B = uniform(3 * 4 * 2, 4);
  const ref: number[] = [];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) ref.push(...mm(A.slice(i * 12, i * 12 + 12), B.slice(j * 8, j * 8 + 8), 3, 4, 2));
  assertTensor(T.matmul(f64(A, [2, 1, 3, 4]), f64(B, [3, 4, 2])), [2, 3, 3, 2], ref, { rtol: 1e-12, atol: 1e-12 });
  // vector cases: [k] @ [k, m] → [m], [n, k] @ [k] → [n], [k] @ [k] → []
  assertTensor(T.matmul(f64(av.slice(0, 6), [6]), f64(bv, [6, 5])), [5], mm(av.slice(0, 6), bv, 1, 6, 5), { rtol: 1e-12, atol: 1e-12 });
  assertTensor(T.matmul(f64(av, [4, 6]), f64(bv.slice(0, 6), [6])), [4], mm(av, bv.slice(0, 6), 4, 6, 1), { rtol: 1e-12, atol: 1e-12 });
  assertTensor(T.matmul(f64([1, 2, 3], [3]), f64([4, 5, 6], [3])), [], [32]);
  // linear(x, W, b) = x Wᵀ + b and einsum agree with the same loop
  const W = uniform(5 * 6, 5), bias = uniform(5, 6);
  const Wt = build([6, 5], ([i, j]) => W[j * 6 + i]);
  assertTensor(
    T.linear(f64(av, [4, 6]), f64(W, [5, 6]), f64(bias, [5])), [4, 5], mm(av, Wt, 4, 6, 5).map((s, i) => s + bias[i % 5]),
    { rtol: 1e-12, atol: 1e-12 },
  );
  assertTensor(T.einsum("ik,kj->ij", [f64(av, [4, 6]), f64(bv, [6, 5])]), [4, 5], mm(av, bv, 4, 6, 5), { rtol: 1e-12, atol: 1e-12 });
});
