// Errors: libtorch's exceptions arrive as JS Errors carrying its message, bad arguments are
// TypeErrors naming the argument, and nothing aborts the process (every case here runs in this
// process; a native abort would kill the test file instead of failing one assertion).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";

const long = (v: number[], shape?: number[]): T.Tensor => T.tensor(v, shape, { dtype: "int64" });

/** Asserts fn throws an instance of `type` (exactly: a TypeError is not accepted for Error) whose message matches. */
function throwsExactly(fn: () => unknown, type: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error, "a JS Error");
    assert.equal(e.constructor, type, `expected a ${type.name}, got ${e.constructor.name}: ${e.message}`);
    assert.match(e.message, message);
    return true;
  });
}

test("shape mismatches are Errors with libtorch's message", () => {
  throwsExactly(() => T.matmul(T.ones([2, 3]), T.ones([2, 3])), Error, /mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)/);
  throwsExactly(() => T.conv3d(T.ones([1, 3, 4, 4, 4]), T.ones([2, 4, 3, 3, 3])), Error, /expected input\[1, 3, 4, 4, 4\] to have 4 channels, but got 3 channels instead/);
  throwsExactly(() => T.conv3d(T.ones([1, 3, 4, 4, 4]), T.ones([2, 3, 5, 5, 5])), Error, /Kernel size can't be greater than actual input size/);
  throwsExactly(() => T.ones([2, 3]).add(T.ones([2, 4])), Error, /size of tensor a \(3\) must match the size of tensor b \(4\) at non-singleton dimension 1/);
  throwsExactly(() => T.cat([T.ones([2, 3]), T.ones([2, 4])], 0), Error, /Sizes of tensors must match except in dimension 0/);
  throwsExactly(() => T.ones([6]).reshape(5), Error, /shape '\[5\]' is invalid for input of size 6/);
  throwsExactly(() => T.ones([2, 3]).T.view(6), Error, /view size is not compatible/);
  throwsExactly(() => T.ones([2, 3]).expand(4, 3), Error, /expanded size of the tensor \(4\) must match the existing size \(2\)/);
  throwsExactly(() => T.ones([3]).select(0, 5), Error, /index 5 out of range/);
  throwsExactly(() => T.groupNorm(T.ones([1, 3, 2, 2, 2]), 2, null, null), Error, /divisible by num_groups/);
  throwsExactly(() => T.maxPool3d(T.ones([1, 1, 1, 1, 1]), 2), Error, /Output size is too small/);
  throwsExactly(() => T.gridSample(T.ones([1, 1, 2, 2, 2]), T.zeros([1, 2, 2, 2, 2])), Error, /expected grid to have size 3 in last dimension/);
  throwsExactly(() => T.mseLoss(T.ones([2, 3]), T.ones([4])), Error, /must match the size of tensor b/);
  // checked in TypeScript before libtorch sees it
  throwsExactly(() => T.conv3d(T.ones([3, 4, 4, 4]), T.ones([2, 3, 3, 3, 3])), Error, /conv3d: expected a 5-d input \[B, C, D, H, W\], got shape \[3, 4, 4, 4\]/);
  throwsExactly(() => T.convTranspose3d(T.ones([3, 4]), T.ones([3, 2, 2, 2, 2])), Error, /convTranspose3d: expected a 5-d input/);
  throwsExactly(() => T.interpolate(T.ones([1, 2, 3, 4]), { size: [2, 2, 2] }), Error, /interpolate: expected a 5-d input/);
});

test("wrong dtypes are Errors naming what was expected", () => {
  throwsExactly(() => T.crossEntropy(T.ones([2, 3, 4]), T.ones([2, 4])), Error, /expected scalar type Long but found Float/);
  throwsExactly(() => T.crossEntropy(T.ones([2, 3, 4]), T.zeros([2, 5], { dtype: "int64" })), Error, /Expected target size \[2, 4\], got \[2, 5\]/);
  throwsExactly(() => T.crossEntropy(T.ones([2, 3]), long([0, 5])), Error, /Target 5 is out of bounds/);
  throwsExactly(() => T.ones([3]).indexSelect(0, T.tensor([0, 1])), Error, /index_select\(\): Expected dtype int32 or int64 for index/);
  throwsExactly(() => T.ones([3]).gather(0, T.tensor([0, 1])), Error, /gather\(\): Expected dtype int64 for index/);
  throwsExactly(() => T.ones([3]).indexSelect(0, long([0, 7])), Error, /index out of range in self/);
  throwsExactly(() => T.ones([3]).gather(0, long([0, 10])), Error, /index 10 is out of bounds for dimension 0 with size 3/);
  throwsExactly(() => T.zeros([2], { dtype: "float128" as T.DType }), TypeError, /unknown dtype 'float128' \(expected one of uint8, /);
});

test("non-tensor and mistyped arguments are TypeErrors naming the operator and argument", () => {
  const x = T.ones([1, 3, 4, 4, 4]);
  throwsExactly(() => T.matmul(T.ones([2]), 3 as unknown as T.Tensor), TypeError, /aten::matmul: argument 'other' expected a tensor/);
  throwsExactly(() => T.conv3d(x, {} as T.Tensor), TypeError, /aten::conv3d: argument 'weight' expected a tensor/);
  throwsExactly(() => T.cat([T.ones([2]), "a" as unknown as T.Tensor]), TypeError, /cat: element 1 of the tensor list is string, not a Tensor/);
  throwsExactly(() => T.stack([null as unknown as T.Tensor]), TypeError, /stack: element 0 of the tensor list is null/);
  throwsExactly(() => T.ones([2]).sum("a" as unknown as number), TypeError, /dim: expected a number/);
  throwsExactly(() => T.callOp("sum.dim_IntList", x, [1], 1), TypeError, /aten::sum.dim_IntList: argument 'keepdim' expected a boolean/);
  throwsExactly(() => T.callOp("relu", null), TypeError, /aten::relu: argument 'self' must not be null/);
  throwsExactly(() => T.callOp("relu", x, 1, 2), TypeError, /aten::relu: expected at most 1 arguments, got 3/);
  throwsExactly(() => T.callOp("add.Tensor"), TypeError, /argument 'self' is required/);
  throwsExactly(() => T.callOp("nonexistent_op"), Error, /libtorch has no operator aten::nonexistent_op/);
  throwsExactly(() => T.tensor(["a"] as unknown as number[]), TypeError, /unexpected element a/);
  throwsExactly(() => T.setNumThreads(0), RangeError, /expected a positive integer, got 0/);
  throwsExactly(() => T.ones([2]).size(2), RangeError, /dimension out of range for a 1-d tensor/);
});

test("a disposed tensor is an Error wherever it is used", () => {
  const t = T.ones([4]);
  const keepAlive = T.ones([4]);
  t.dispose();
  throwsExactly(() => t.add(1), Error, /has been disposed \(freed\) and can no longer be used/);
  throwsExactly(() => keepAlive.add(t), Error, /has been disposed/);
  throwsExactly(() => T.stack([keepAlive, t]), Error, /has been disposed/);
  throwsExactly(() => t.toArray(), Error, /has been disposed/);
  throwsExactly(() => t.numel, Error, /has been disposed/);
  throwsExactly(() => { t.requiresGrad = true; }, Error, /has been disposed/);
  assert.deepEqual(keepAlive.toArray(), [1, 1, 1, 1]);
});

test("autograd misuse is an Error with libtorch's message", () => {
  throwsExactly(() => T.ones([1]).sum().backward(), Error, /does not require grad and does not have a grad_fn/);
  throwsExactly(() => T.ones([2], { requiresGrad: true }).add_(1), Error, /a leaf Variable that requires grad is being used in an in-place operation/);
  const a = T.ones([2], { requiresGrad: true });
  const b = a.mul(2);
  const c = b.mul(b); // saves b for backward
  b.add_(1);
  throwsExactly(() => c.sum().backward(), Error, /modified by an inplace operation/);
  const y = a.exp().sum(); // exp saves its result, which the first backward frees
  y.backward();
  throwsExactly(() => y.backward(), Error, /backward through the graph a second time/);
  throwsExactly(() => a.mul(2).backward(T.ones([3])), Error, /invalid gradient at index 0 - got \[3\] but expected shape compatible with \[2\]/);
});

test("an impossible allocation is an Error, and the engine keeps working after every error", () => {
  throwsExactly(() => T.zeros([-1]), Error, /negative dimension -1/);
  throwsExactly(() => T.zeros([1e13]), Error, /can't allocate memory/);
  throwsExactly(() => T.empty([1e6, 1e6, 1e6]), Error, /./);
  // after all of the above, in this same process:
  assert.deepEqual(T.ones([2]).add(1).toArray(), [2, 2]);
  const w = T.ones([2], { requiresGrad: true });
  w.mul(w).sum().backward();
  assert.deepEqual(w.grad!.toArray(), [2, 2]);
  assert.equal(T.scopeDepth(), 0);
  assert.equal(T.isGradEnabled(), true);
});
