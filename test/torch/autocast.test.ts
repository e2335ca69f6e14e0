// Autocast on CPU: convolutions and matrix products run in bfloat16, losses in float32, results
// stay within bf16 tolerance of fp32, and scopes nest and restore.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { assertClose, randomTensor } from "./helpers.ts";

const x = randomTensor([2, 3, 6, 6, 6], 1);
const w = randomTensor([4, 3, 3, 3, 3], 2);
const a = randomTensor([5, 16], 3), b = randomTensor([16, 7], 4);
const target = T.randint(0, 4, [2, 6, 6, 6], { generator: new T.Generator(5) });
// bf16 keeps 8 significant bits: inputs round with relative error ≤ 2^-9, sums of K products
// stay within a few times that of the sum of |terms|.
const BF16 = { rtol: 2e-2, atol: 2e-2 };

test("inside autocast, conv3d, matmul and linear run in bfloat16 and stay close to fp32", () => {
  const ref = T.conv3d(x, w, null, { padding: 1 });
  const refMm = T.matmul(a, b);
  const [y, mm, lin] = T.autocast(() => [T.conv3d(x, w, null, { padding: 1 }), T.matmul(a, b), T.linear(a, b.T)]);
  assert.equal(y.dtype, "bfloat16");
  assert.equal(mm.dtype, "bfloat16");
  assert.equal(lin.dtype, "bfloat16");
  assertClose(y.toArray(), ref.toArray(), { ...BF16, msg: "conv3d" });
  assertClose(mm.toArray(), refMm.toArray(), { ...BF16, msg: "matmul" });
  assertClose(lin.toArray(), refMm.toArray(), { ...BF16, msg: "linear" });
  // the inputs themselves are untouched
  assert.equal(x.dtype, "float32");
  assert.equal(w.dtype, "float32");
});

test("inside autocast, losses come out in float32 and sums of float32 stay float32", () => {
  const refLogits = T.conv3d(x, w, null, { padding: 1 });
  const refCe = T.crossEntropy(refLogits, target).item();
  T.autocast(() => {
    const logits = T.conv3d(x, w, null, { padding: 1 });
    const ce = T.crossEntropy(logits, target);
    assert.equal(ce.dtype, "float32");
    assertClose([ce.item()], [refCe], { rtol: 1e-2, msg: "cross-entropy" });
    assert.equal(T.mseLoss(logits, T.zerosLike(refLogits)).dtype, "float32");
    assert.equal(T.l1Loss(logits, T.zerosLike(refLogits)).dtype, "float32");
    assert.equal(T.bceWithLogits(logits, T.zerosLike(refLogits)).dtype, "float32");
    assert.equal(x.sum().dtype, "float32");
    assert.equal(x.mean([2, 3, 4]).dtype, "float32");
    assert.equal(T.gridSample(x, T.zeros([2, 2, 2, 2, 3])).dtype, "float32");
  });
});

test("an autocast training step gives fp32 gradients close to the fp32 step", () => {
  const grads = (useAutocast: boolean): number[] => T.tidy(() => {
    const wp = w.detach().requiresGrad_(true);
    const loss = T.autocast(() => T.crossEntropy(T.conv3d(x, wp, null, { padding: 1 }), target), { enabled: useAutocast });
    loss.backward();
    assert.equal(wp.grad!.dtype, "float32", "gradients land in the parameter's dtype");
    return wp.grad!.toArray();
  });
  const g32 = grads(false), g16 = grads(true);
  const scale = Math.max(...g32.map(Math.abs));
  assertClose(g16, g32, { rtol: 5e-2, atol: 2e-2 * scale });
});

test("autocast scopes nest, enabled: false switches autocast off inside, and the outer state is restored", () => {
  const dtypeOfMm = () => T.matmul(a, b).dtype;
  assert.equal(dtypeOfMm(), "float32");
  T.autocast(() => {
    assert.equal(dtypeOfMm(), "bfloat16");
    T.autocast(() => assert.equal(dtypeOfMm(), "bfloat16"));
    assert.equal(dtypeOfMm(), "bfloat16", "leaving the inner scope keeps the outer one on");
    T.autocast(() => {
      assert.equal(dtypeOfMm(), "float32", "enabled: false turns autocast off within an enabled scope");
      T.autocast(() => assert.equal(dtypeOfMm(), "bfloat16", "and a scope inside it turns it on again"));
      assert.equal(dtypeOfMm(), "float32");
    }, { enabled: false });
    assert.equal(dtypeOfMm(), "bfloat16", "the outer scope is on again after enabled: false");
  });
  assert.equal(dtypeOfMm(), "float32", "outside autocast everything is float32 again");
  assert.equal(T.autocast(() => 42, { enabled: false }), 42);
  assert.equal(dtypeOfMm(), "float32");
});

test("autocast restores the state after a throw and rejects fp16 on CPU", () => {
  assert.throws(() => T.autocast(() => { throw new Error("inside"); }), /inside/);
  assert.equal(T.matmul(a, b).dtype, "float32");
  assert.throws(() => T.autocast(() => 0, { dtype: "float16" }), /on CPU only bfloat16 is supported/);
  assert.equal(T.matmul(a, b).dtype, "float32");
});

test("defaultPrecision honours LSMSEG_PRECISION and otherwise follows the CPU's bf16 support", () => {
  const saved = process.env.LSMSEG_PRECISION;
  try {
    process.env.LSMSEG_PRECISION = "fp32";
    assert.equal(T.defaultPrecision(), "fp32");
    process.env.LSMSEG_PRECISION = "bf16";
    assert.equal(T.defaultPrecision(), "bf16");
    delete process.env.LSMSEG_PRECISION;
    assert.equal(T.defaultPrecision(), T.cpuHasBf16() ? "bf16" : "fp32");
    assert.equal(T.defaultPrecision("cuda:0"), "bf16");
  } finally {
    if (saved === undefined) delete process.env.LSMSEG_PRECISION;
    else process.env.LSMSEG_PRECISION = saved;
  }
});
