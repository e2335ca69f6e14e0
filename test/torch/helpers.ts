// Shared helpers of the engine tests: closeness checks, row-major index arithmetic for the slow
// JS references, a seeded JS random source, and a central finite-difference gradient checker.
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";

/** Asserts |a - e| <= atol + rtol·|e| element by element (NaN only matches NaN). */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, o: { rtol?: number; atol?: number; msg?: string } = {}): void {
  const rtol = o.rtol ?? 1e-5;
  const atol = o.atol ?? 1e-6;
  assert.equal(actual.length, expected.length, `${o.msg ?? ""} length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`${o.msg ?? "values differ"}: at flat index ${i} got ${a}, expected ${e} (rtol ${rtol}, atol ${atol})`);
    }
  }
}

/** Asserts a tensor's shape and values (closeness for floats, equality otherwise). */
export function assertTensor(
  t: T.Tensor, shape: number[], expected: ArrayLike<number>, o: { rtol?: number; atol?: number; msg?: string } = {},
): void {
  assert.deepEqual(t.shape, shape, `${o.msg ?? ""} shape`);
  if (T.isFloating(t.dtype)) assertClose(t.toArray(), expected, o);
  else assert.deepEqual(t.toArray(), Array.from(expected), o.msg);
}

export const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Row-major strides of a shape. */
export function stridesOf(shape: number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Flat index → multi-index. */
export function unravel(flat: number, shape: number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return idx;
}

/** Multi-index → flat index. */
export function ravel(idx: number[], shape: number[]): number {
  let f = 0;
  for (let d = 0; d < shape.length; d++) f = f * shape[d] + idx[d];
  return f;
}

/** out[i] = f(multi-index of i) over every element of `shape`. */
export function build(shape: number[], f: (idx: number[]) => number): number[] {
  const n = numel(shape);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = f(unravel(i, shape));
  return out;
}

/** A small deterministic PRNG (mulberry32) for reference data that does not come from libtorch. */
export function jsRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` uniform values in [lo, hi) from a seeded JS PRNG. */
export function uniform(n: number, seed: number, lo = -1, hi = 1): number[] {
  const r = jsRandom(seed);
  return Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/** A float tensor of seeded uniform values. */
export function randomTensor(shape: number[], seed: number, o: { dtype?: T.DType; lo?: number; hi?: number; requiresGrad?: boolean } = {}): T.Tensor {
  const vals = uniform(numel(shape), seed, o.lo ?? -1, o.hi ?? 1);
  const dtype = o.dtype ?? "float32";
  const arr = dtype === "float64" ? new Float64Array(vals) : new Float32Array(vals);
  return T.tensor(arr, shape, { dtype, requiresGrad: o.requiresGrad });
}

/**
 * Compares autograd with central finite differences. `f` maps the float64 inputs to a tensor; the
 * scalar checked is sum(f(inputs) · w) for a fixed random w, so every output element contributes.
 * Only the inputs listed in `wrt` (default: all) are differentiated.
 */
export function checkGradients(
  f: (xs: T.Tensor[]) => T.Tensor, inputs: T.Tensor[], o: { eps?: number; rtol?: number; atol?: number; wrt?: number[]; msg?: string } = {},
): void {
  const eps = o.eps ?? 1e-6;
  const wrt = o.wrt ?? inputs.map((_, i) => i);
  T.tidy(() => {
    for (const i of wrt) assert.equal(inputs[i].dtype, "float64", "checkGradients wants float64 inputs");
    const leaves = inputs.map((x, i) => (wrt.includes(i) ? x.detach().requiresGrad_(true) : x.detach()));
    const out0 = f(leaves);
    const w = randomTensor(out0.shape, 12345, { dtype: "float64" });
    const scalar = (xs: T.Tensor[]): number => T.noGrad(() => T.tidy(() => f(xs).mul(w).sum().item()));
    out0.mul(w).sum().backward();
    for (const i of wrt) {
      const analytic = leaves[i].grad;
      assert.ok(analytic, `${o.msg ?? ""} input ${i} got no gradient`);
      const base = inputs[i].toArray();
      const numeric = new Array<number>(base.length);
      for (let k = 0; k < base.length; k++) {
        const probe = (delta: number): number => {
          const v = Float64Array.from(base);
          v[k] += delta;
          const xs = leaves.map((l, j) => (j === i ? T.tensor(v, inputs[i].shape, { dtype: "float64" }) : l.detach()));
          return scalar(xs);
        };
        numeric[k] = (probe(eps) - probe(-eps)) / (2 * eps);
      }
      assertClose(analytic.toArray(), numeric, { rtol: o.rtol ?? 1e-5, atol: o.atol ?? 1e-7, msg: `${o.msg ?? "gradient"} (input ${i})` });
    }
  });
}
