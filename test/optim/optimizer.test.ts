// Optimizers against their update rules written out in JS (PyTorch's documented pseudo-code) on
// small float64 tensors over several steps; the learning-rate setter; state round trips; gradient
// clipping; the schedules' known values.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as T from "../../src/torch/index.ts";
import {
  AdamW, type AdamWOptions, type Optimizer, SGD, type SGDOptions, clipGradNorm, constant, cosine, linearWarmup, makeSchedule, poly,
} from "../../src/optim/index.ts";
import { assertClose, uniform } from "../torch/helpers.ts";

// Two parameters, [2, 3] and [4], float64.
const SHAPES = [[2, 3], [4]];
const P0 = [uniform(6, 1, -1, 1), uniform(4, 2, -1, 1)];
const C = [uniform(6, 3, 0.5, 2), uniform(4, 4, 0.5, 2)];
const D = [uniform(6, 5, -1, 1), uniform(4, 6, -1, 1)];
// Gradient of Σ c·p²/2 + s_t·d·p: large at the first step and at step 4, small otherwise, so that
// Adam's second moment falls between them (which is when amsgrad changes anything).
const S = [10, 0.1, 0.1, 2, 0.1, 0.1, 0.5, 0.1];
const gradOf = (k: number, p: number[], t: number): number[] => p.map((v, i) => C[k][i] * v + S[(t - 1) % S.length] * D[k][i]);

const f64 = (v: number[], shape: number[]) => T.tensor(Float64Array.from(v), shape);

function makeParams(values = P0): T.Tensor[] {
  return values.map((v, k) => T.keep(f64(v, SHAPES[k]).requiresGrad_(true)));
}

/** Sets each parameter's gradient from gradOf and steps; `lrAt` (optional) sets the rate first. */
function runSteps(opt: Optimizer, params: T.Tensor[], from: number, to: number, lrAt?: (t: number) => number): void {
  for (let t = from; t <= to; t++) {
    T.tidy(() => {
      params.forEach((p, k) => (p.grad = f64(gradOf(k, p.toArray(), t), p.shape)));
    });
    if (lrAt) opt.lr = lrAt(t);
    opt.step();
  }
}

// --- the update rules (https://pytorch.org/docs/stable/optim.html), one parameter as a flat array ---

interface SgdState { buf?: number[] }
function sgdStep(p: number[], g0: number[], s: SgdState, o: Required<SGDOptions>, t: number): number[] {
  let g = g0.map((gi, i) => gi + o.weightDecay * p[i]);
  if (o.momentum !== 0) {
    s.buf = t === 1 || !s.buf ? g.slice() : s.buf.map((b, i) => o.momentum * b + (1 - o.dampening) * g[i]);
    const buf = s.buf;
    g = o.nesterov ? g.map((gi, i) => gi + o.momentum * buf[i]) : buf.slice();
  }
  return p.map((v, i) => v - o.lr * g[i]);
}

interface AdamState { m: number[]; v: number[]; vmax: number[] }
function adamwStep(p0: number[], g: number[], s: AdamState, o: Required<AdamWOptions>, t: number): number[] {
  const [b1, b2] = o.betas;
  const p = p0.map((v) => v * (1 - o.lr * o.weightDecay)); // decoupled weight decay
  s.m = s.m.map((m, i) => b1 * m + (1 - b1) * g[i]);
  s.v = s.v.map((v, i) => b2 * v + (1 - b2) * g[i] * g[i]);
  // amsgrad as PyTorch implements it: the running maximum of the raw second moment, then bias-corrected
  s.vmax = s.vmax.map((m, i) => Math.max(m, s.v[i]));
  const v = o.amsgrad ? s.vmax : s.v;
  return p.map((x, i) => x - (o.lr * (s.m[i] / (1 - b1 ** t))) / (Math.sqrt(v[i] / (1 - b2 ** t)) + o.eps));
}

/** The reference trajectory: parameters after steps 1..n (lr per step from lrAt when given). */
function reference<S>(
  n: number, init: () => S, step: (p: number[], g: number[], s: S, t: number, lr?: number) => number[], lrAt?: (t: number) => number,
): number[][] {
  return P0.map((p0, k) => {
    let p = p0.slice();
    const s = init();
    for (let t = 1; t <= n; t++) p = step(p, gradOf(k, p, t), s, t, lrAt?.(t));
    return p;
  });
}

const sgdDefaults = (o: SGDOptions): Required<SGDOptions> => ({ momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, ...o });
const adamDefaults = (o: AdamWOptions): Required<AdamWOptions> => ({ betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, ...o });
const sgdRef = (o: SGDOptions, n: number, lrAt?: (t: number) => number) =>
  reference<SgdState>(n, () => ({}), (p, g, s, t, lr) => sgdStep(p, g, s, { ...sgdDefaults(o), ...(lr === undefined ? {} : { lr }) }, t), lrAt);
const adamRef = (o: AdamWOptions, n: number, lrAt?: (t: number) => number) =>
  reference<AdamState>(
    n,
    () => ({ m: [0, 0, 0, 0, 0, 0], v: [0, 0, 0, 0, 0, 0], vmax: [0, 0, 0, 0, 0, 0] }),
    (p, g, s, t, lr) => adamwStep(p, g, s, { ...adamDefaults(o), ...(lr === undefined ? {} : { lr }) }, t),
    lrAt,
  );

function assertParams(params: T.Tensor[], expected: number[][], msg: string, rtol = 1e-12): void {
  params.forEach((p, k) => assertClose(p.toArray(), expected[k], { rtol, atol: 1e-14, msg: `${msg}, parameter ${k}` }));
}

const STEPS = 8;

/** Runs the optimizer (over fresh parameters) for STEPS steps and compares with the reference trajectory. */
function checkTrajectory(opt: Optimizer, expected: number[][], msg: string): void {
  runSteps(opt, opt.params, 1, STEPS);
  assertParams(opt.params, expected, msg);
  for (const p of opt.params) p.dispose();
}

test("SGD: plain, momentum, dampening, Nesterov and weight decay follow the update rule over 8 steps", () => {
  const cases: SGDOptions[] = [
    { lr: 0.1 },
    { lr: 0.05, momentum: 0.9 },
    { lr: 0.05, momentum: 0.9, dampening: 0.5 },
    { lr: 0.05, momentum: 0.9, nesterov: true },
    { lr: 0.05, weightDecay: 0.1 },
    { lr: 0.01, momentum: 0.99, nesterov: true, weightDecay: 3e-5 }, // nnU-Net's
  ];
  for (const o of cases) checkTrajectory(new SGD(makeParams(), o), sgdRef(o, STEPS), `SGD ${JSON.stringify(o)}`);
});

test("AdamW: defaults, weight decay, betas/eps and amsgrad follow the update rule over 8 steps", () => {
  const cases: AdamWOptions[] = [
    { lr: 0.01 },
    { lr: 0.02, weightDecay: 0.1, betas: [0.8, 0.9], eps: 1e-6 },
    { lr: 0.02, weightDecay: 0.05, betas: [0.8, 0.9], amsgrad: true },
    { lr: 0.02, weightDecay: 0, amsgrad: true },
  ];
  for (const o of cases) checkTrajectory(new AdamW(makeParams(), o), adamRef(o, STEPS), `AdamW ${JSON.stringify(o)}`);
  // the cases above exercise amsgrad: without it the trajectory is another one
  const withMax = adamRef({ lr: 0.02, weightDecay: 0.05, betas: [0.8, 0.9], amsgrad: true }, STEPS);
  const without = adamRef({ lr: 0.02, weightDecay: 0.05, betas: [0.8, 0.9] }, STEPS);
  assert.ok(Math.abs(withMax[0][0] - without[0][0]) > 1e-4);
});

test("the lr setter takes effect at the next step; bad rates are refused", () => {
  const lrAt = (t: number) => [0.1, 0.05, 0, 0, 0.2, 0.01, 0.03, 0.1][t - 1];
  for (const [make, ref] of [
    [(ps: T.Tensor[]) => new SGD(ps, { lr: 1, momentum: 0.9 }), sgdRef({ lr: 1, momentum: 0.9 }, STEPS, lrAt)],
    [(ps: T.Tensor[]) => new AdamW(ps, { lr: 1, weightDecay: 0.1 }), adamRef({ lr: 1, weightDecay: 0.1 }, STEPS, lrAt)],
  ] as const) {
    const params = makeParams();
    const opt = make(params);
    assert.equal(opt.lr, 1);
    runSteps(opt, params, 1, STEPS, lrAt);
    assert.equal(opt.lr, 0.1);
    assertParams(params, ref, `${opt.kind} with a changing rate`);
    assert.throws(() => (opt.lr = -0.1), { name: "RangeError", message: /finite number >= 0, got -0.1/ });
    assert.throws(() => (opt.lr = NaN), RangeError);
    assert.equal(opt.lr, 0.1);
    for (const p of params) p.dispose();
  }
  // lr 0 leaves SGD's parameters exactly as they were
  const params = makeParams();
  const opt = new SGD(params, { lr: 0, momentum: 0.9 });
  runSteps(opt, params, 1, 3);
  assert.deepEqual(params.map((p) => p.toArray()), P0);
  for (const p of params) p.dispose();
});

test("optimizer state holds the documented quantities (momentum buffer; Adam's step and moments)", () => {
  const params = makeParams();
  const sgd = new SGD(params, { lr: 0.05, momentum: 0.9 });
  assert.deepEqual(sgd.stateDict().params, [null, null], "no state before the first step");
  runSteps(sgd, params, 1, 1);
  const s1 = sgd.stateDict();
  assert.deepEqual(Object.keys(s1.params[0]!), ["momentum_buffer"]);
  // after one step the buffer is the first gradient
  assertClose(s1.params[1]!.momentum_buffer.toArray(), gradOf(1, P0[1], 1), { rtol: 1e-15 });
  for (const p of params) p.dispose();

  const ps = makeParams();
  const o: AdamWOptions = { lr: 0.02, betas: [0.8, 0.9], amsgrad: true };
  const adam = new AdamW(ps, o);
  runSteps(adam, ps, 1, 3);
  const st = adam.stateDict();
  assert.deepEqual(Object.keys(st.params[0]!).sort(), ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]);
  assert.equal(st.params[0]!.step.item(), 3);
  const ref: AdamState = { m: [0, 0, 0, 0], v: [0, 0, 0, 0], vmax: [0, 0, 0, 0] };
  let p = P0[1].slice();
  for (let t = 1; t <= 3; t++) p = adamwStep(p, gradOf(1, p, t), ref, adamDefaults(o), t);
  assertClose(st.params[1]!.exp_avg.toArray(), ref.m, { rtol: 1e-12 });
  assertClose(st.params[1]!.exp_avg_sq.toArray(), ref.v, { rtol: 1e-12 });
  assertClose(st.params[1]!.max_exp_avg_sq.toArray(), ref.vmax, { rtol: 1e-12 });
  for (const e of st.params) for (const t of Object.values(e!)) t.dispose();
  for (const x of ps) x.dispose();
});

test("stateDict/loadStateDict: a fresh optimizer restored mid-way ends with identical parameters", () => {
  const cases: [string, (ps: T.Tensor[], lr?: number) => Optimizer][] = [
    ["sgd", (ps, lr = 0.05) => new SGD(ps, { lr, momentum: 0.9, nesterov: true, weightDecay: 1e-3 })],
    ["adamw", (ps, lr = 0.02) => new AdamW(ps, { lr, betas: [0.8, 0.9], amsgrad: true })],
  ];
  for (const [kind, make] of cases) {
    const a = makeParams();
    const optA = make(a);
    runSteps(optA, a, 1, 4);
    optA.lr = 0.015; // a rate set by a schedule is part of the state
    const saved = optA.stateDict();
    const snapshot = saved.params.map((e) => Object.fromEntries(Object.entries(e!).map(([k, t]) => [k, t.toArray()])));

    const b = makeParams(a.map((p) => p.toArray()));
    const optB = make(b, 0.5);
    optB.loadStateDict(saved);
    assert.equal(optB.lr, 0.015);
    // a third copy without the state shows that the state matters
    const c = makeParams(a.map((p) => p.toArray()));
    const optC = make(c, 0.015);

    runSteps(optA, a, 5, STEPS);
    runSteps(optB, b, 5, STEPS);
    runSteps(optC, c, 5, STEPS);
    assert.deepEqual(b.map((p) => p.toArray()), a.map((p) => p.toArray()), `${kind}: restored = never stopped`);
    assert.notDeepEqual(c.map((p) => p.toArray()), a.map((p) => p.toArray()), `${kind}: a fresh state differs`);
    // the saved state is a copy: later steps did not change it
    saved.params.forEach((e, i) => {
      for (const [k, t] of Object.entries(e!)) assert.deepEqual(t.toArray(), snapshot[i][k], `${kind} ${k} is a copy`);
    });
    for (const e of saved.params) for (const t of Object.values(e!)) t.dispose();
    for (const p of [...a, ...b, ...c]) p.dispose();
  }
});

test("loading state: kind or parameter-count mismatches are Errors; parameters without a gradient keep null state", () => {
  const params = makeParams();
  const sgd = new SGD(params, { lr: 0.1, momentum: 0.9 });
  const adam = new AdamW(params, { lr: 0.1 });
  runSteps(sgd, params, 1, 1);
  const s = sgd.stateDict();
  assert.throws(() => adam.loadStateDict(s), { name: "Error", message: "optimizer state is for 'sgd', this optimizer is 'adamw'" });
  const one = new SGD([params[0]], { lr: 0.1, momentum: 0.9 });
  assert.throws(() => one.loadStateDict(s), /state has 2 parameters, this optimizer has 1 \(was the network changed\?\)/);
  for (const e of s.params) for (const t of Object.values(e!)) t.dispose();

  // only the first parameter gets a gradient: the second has no state, and that survives a round trip
  const ps = makeParams();
  const optA = new AdamW(ps, { lr: 0.01 });
  T.tidy(() => (ps[0].grad = f64(gradOf(0, P0[0], 1), SHAPES[0])));
  optA.step();
  assert.deepEqual(ps[1].toArray(), P0[1], "no gradient, no update");
  const st = optA.stateDict();
  assert.equal(st.params[1], null);
  const optB = new AdamW(ps, { lr: 0.01 });
  optB.loadStateDict(st);
  assert.equal(optB.stateDict().params[1], null);
  assert.throws(() => new SGD(params, { lr: 0.1, nesterov: true }), /Nesterov needs momentum > 0 and dampening 0/);
  assert.throws(() => new AdamW([], { lr: 0.1 }), /adamw: no parameters to optimise/);
  for (const p of [...params, ...ps]) p.dispose();
});

test("zeroGrad frees the gradients, or zeroes them in place", () => {
  const params = makeParams();
  const opt = new SGD(params, { lr: 0.1 });
  T.tidy(() => params.forEach((p, k) => (p.grad = f64(gradOf(k, P0[k], 1), SHAPES[k]))));
  opt.zeroGrad(false);
  T.tidy(() => assert.deepEqual(params[1].grad!.toArray(), [0, 0, 0, 0]));
  opt.zeroGrad();
  assert.equal(params[0].grad, null);
  for (const p of params) p.dispose();
});

test("clipGradNorm returns the total norm and scales gradients by maxNorm / (norm + 1e-6) when above it", () => {
  const g = [[3, -4, 1, 2, 0, -1], [2, 2, -7, 0.5]];
  const flat = g.flat();
  const norms: Record<string, number> = {
    2: Math.sqrt(flat.reduce((s, v) => s + v * v, 0)),
    1: flat.reduce((s, v) => s + Math.abs(v), 0),
    Infinity: Math.max(...flat.map(Math.abs)),
  };
  for (const normType of [2, 1, Infinity]) {
    const expectedNorm = norms[String(normType)];
    for (const maxNorm of [expectedNorm / 4, 2 * expectedNorm]) {
      const params = makeParams();
      T.tidy(() => params.forEach((p, k) => (p.grad = f64(g[k], SHAPES[k]))));
      const norm = clipGradNorm(params, maxNorm, normType);
      assertClose([norm], [expectedNorm], { rtol: 1e-14, msg: `norm type ${normType}` });
      const scale = maxNorm < expectedNorm ? maxNorm / (expectedNorm + 1e-6) : 1;
      T.tidy(() => params.forEach((p, k) => assertClose(p.grad!.toArray(), g[k].map((v) => v * scale), { rtol: 1e-13, atol: 0, msg: `norm ${normType}, max ${maxNorm}` })));
      if (maxNorm > expectedNorm) T.tidy(() => assert.deepEqual(params[1].grad!.toArray(), g[1], "unchanged below the limit"));
      for (const p of params) p.dispose();
    }
  }
  // parameters without a gradient are skipped
  const params = makeParams();
  T.tidy(() => (params[1].grad = f64(g[1], SHAPES[1])));
  assertClose([clipGradNorm(params, 1)], [Math.sqrt(4 + 4 + 49 + 0.25)], { rtol: 1e-14 });
  assert.equal(params[0].grad, null);
  for (const p of params) p.dispose();
});

test("schedules: poly, cosine, constant and linear warm-up give their known values", () => {
  const close = (a: number, b: number, msg: string) => assert.ok(Math.abs(a - b) <= 1e-15 + 1e-12 * Math.abs(b), `${msg}: ${a} vs ${b}`);
  const p = poly(0.01, 100);
  close(p(0), 0.01, "poly(0)");
  close(p(50), 0.01 * 0.5 ** 0.9, "poly(50)");
  close(p(90), 0.01 * 0.1 ** 0.9, "poly(90)");
  assert.equal(p(100), 0);
  assert.equal(p(150), 0, "clamped past the end");
  close(poly(1, 10, 2)(5), 0.25, "poly exponent 2");

  const c = cosine(1, 100);
  close(c(0), 1, "cosine(0)");
  close(c(50), 0.5, "cosine(50)");
  close(c(25), 0.5 * (1 + Math.SQRT1_2), "cosine(25)");
  close(c(100), 0, "cosine(100)");
  close(c(200), 0, "cosine past the end");
  close(cosine(1, 100, 0.1)(50), 0.55, "cosine with minLr");
  close(cosine(1, 100, 0.1)(100), 0.1, "cosine ends at minLr");

  assert.equal(constant(0.3)(0), 0.3);
  assert.equal(constant(0.3)(1e6), 0.3);

  const w = linearWarmup(constant(1), 10);
  close(w(0), 0, "warm-up starts at 0");
  close(w(5), 0.5, "half way");
  close(w(10), 1, "done");
  close(linearWarmup(constant(1), 10, 0.1)(0), 0.1, "start factor");
  close(linearWarmup(constant(1), 10, 0.1)(5), 0.55, "start factor, half way");
  const wp = linearWarmup(poly(1, 90), 10);
  close(wp(10), 1, "poly starts after the warm-up");
  close(wp(55), 0.5 ** 0.9, "poly shifted by the warm-up");
  assert.equal(wp(100), 0);
});

test("makeSchedule builds the same schedules from a plain config", () => {
  const p = makeSchedule({ kind: "poly", baseLr: 0.01, totalSteps: 100 });
  for (const s of [0, 1, 37, 50, 99, 100]) assert.equal(p(s), poly(0.01, 100)(s));
  const c = makeSchedule({ kind: "cosine", baseLr: 1, totalSteps: 100, minLr: 0.1 });
  for (const s of [0, 25, 50, 100]) assert.equal(c(s), cosine(1, 100, 0.1)(s));
  assert.equal(makeSchedule({ kind: "constant", baseLr: 0.2, totalSteps: 5 })(3), 0.2);
  // warm-up: the main schedule covers the remaining totalSteps − warmupSteps and ends at 0 at totalSteps
  const wp = makeSchedule({ kind: "poly", baseLr: 0.01, totalSteps: 110, warmupSteps: 10, exponent: 0.9 });
  assert.equal(wp(0), 0);
  assert.ok(Math.abs(wp(5) - 0.005) < 1e-15);
  assert.equal(wp(10), 0.01);
  assert.ok(Math.abs(wp(60) - 0.01 * 0.5 ** 0.9) < 1e-15);
  assert.equal(wp(110), 0);
  const wc = makeSchedule({ kind: "cosine", baseLr: 1, totalSteps: 20, warmupSteps: 10 });
  assert.ok(Math.abs(wc(15) - 0.5) < 1e-15);
  assert.ok(Math.abs(wc(20)) < 1e-15);
});
