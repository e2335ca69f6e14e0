// Creation: constant fills, every dtype in and out of typed arrays, seeded random numbers, ranges.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { assertClose } from "./helpers.ts";

const ALL_DTYPES: T.DType[] = ["uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "bool", "bfloat16"];

test("zeros, ones, full and empty have the asked shape, dtype and values", () => {
  for (const dtype of ALL_DTYPES) {
    const z = T.zeros([2, 3, 4], { dtype });
    assert.deepEqual(z.shape, [2, 3, 4]);
    assert.equal(z.dtype, dtype);
    assert.equal(z.numel, 24);
    assert.deepEqual(z.toArray(), new Array(24).fill(0));
    const o = T.ones([5], { dtype });
    assert.equal(o.dtype, dtype);
    assert.deepEqual(o.toArray(), new Array(5).fill(1));
    const e = T.empty([3, 1, 2], { dtype });
    assert.deepEqual(e.shape, [3, 1, 2]);
    assert.equal(e.dtype, dtype);
  }
  assert.deepEqual(T.full([2, 2], 7, { dtype: "int32" }).toArray(), [7, 7, 7, 7]);
  assert.deepEqual(T.full([3], -2.5).toArray(), [-2.5, -2.5, -2.5]);
  assert.equal(T.full([3], -2.5).dtype, "float32");
  assert.deepEqual(T.zeros([2, 0, 3]).shape, [2, 0, 3]);
  assert.equal(T.zeros([2, 0, 3]).numel, 0);
  const ref = T.ones([2, 3], { dtype: "float64" });
  assert.equal(T.zerosLike(ref).dtype, "float64");
  assert.deepEqual(T.onesLike(ref).shape, [2, 3]);
  assert.equal(T.zeros([2], { requiresGrad: true }).requiresGrad, true);
});

test("every dtype round-trips through tensor() and data() exactly", () => {
  const cases: [T.DType, ArrayLike<number> | BigInt64Array][] = [
    ["uint8", new Uint8Array([0, 1, 127, 128, 255])],
    ["int8", new Int8Array([-128, -1, 0, 1, 127])],
    ["int16", new Int16Array([-32768, -1, 0, 12345, 32767])],
    ["int32", new Int32Array([-2147483648, -1, 0, 16777217, 2147483647])],
    ["int64", new BigInt64Array([-(2n ** 63n), -1n, 0n, 2n ** 53n + 1n, 2n ** 63n - 1n])],
    ["float32", new Float32Array([Math.fround(0.1), -0, 3.4028234663852886e38, 1.401298464324817e-45, -Infinity])],
    ["float64", new Float64Array([0.1, Math.PI, 1e-300, -1.7976931348623157e308, Infinity])],
  ];
  for (const [dtype, arr] of cases) {
    const t = T.tensor(arr as any, [arr.length]);
    assert.equal(t.dtype, dtype);
    const back = t.data();
    assert.equal(back.constructor, arr.constructor, dtype);
    assert.deepEqual(Array.from(back as any), Array.from(arr as any), dtype);
  }
  // float16: every value below has at most 11 significant bits and lies in the half range.
  const half = [65504, -65504, 6.103515625e-5, 5.960464477539063e-8, 1 + 1 / 1024, -0.5, 0];
  const h = T.tensor(new Float32Array(half), [half.length], { dtype: "float16" });
  assert.equal(h.dtype, "float16");
  assert.deepEqual(Array.from(h.data<"float16">()), half);
  // bfloat16: 8 significant bits, float32's exponent range.
  const bf = [1 + 1 / 128, -3, 2 ** 100, 2 ** -100, 0.0078125, 3.3895313892515355e38];
  const b = T.tensor(new Float32Array(bf), [bf.length], { dtype: "bfloat16" });
  assert.equal(b.dtype, "bfloat16");
  assert.deepEqual(Array.from(b.data<"bfloat16">()), bf);
  // bool: any non-zero is true, stored and read back as 0/1 bytes.
  const bo = T.tensor(new Uint8Array([0, 1, 2, 0]), [4], { dtype: "bool" });
  assert.equal(bo.dtype, "bool");
  assert.deepEqual(Array.from(bo.data<"bool">()), [0, 1, 1, 0]);
  // Uint16/Uint32 have no libtorch twin and are widened.
  assert.equal(T.tensor(new Uint16Array([65535])).dtype, "int32");
  assert.deepEqual(T.tensor(new Uint32Array([4294967295])).toArray(), [4294967295]);
});

test("tensor() builds from nested arrays and scalars in any dtype", () => {
  const t = T.tensor([[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(t.shape, [2, 3]);
  assert.equal(t.dtype, "float32");
  assert.deepEqual(t.toArray(), [1, 2, 3, 4, 5, 6]);
  const s = T.tensor(3.5);
  assert.deepEqual(s.shape, []);
  assert.equal(s.item(), 3.5);
  const nested3 = T.tensor([[[1], [2]], [[3], [4]]], undefined, { dtype: "int64" });
  assert.deepEqual(nested3.shape, [2, 2, 1]);
  assert.deepEqual(Array.from(nested3.data<"int64">()), [1n, 2n, 3n, 4n]);
  // values above 2^24 survive in int32 (no detour through float32)
  assert.deepEqual(T.tensor([16777217, -16777219], undefined, { dtype: "int32" }).toArray(), [16777217, -16777219]);
  assert.deepEqual(T.tensor([0.1], undefined, { dtype: "float64" }).toArray(), [0.1]);
  assert.deepEqual(T.tensor([true, false] as unknown as number[], undefined, { dtype: "bool" }).toArray(), [1, 0]);
  for (const dtype of ALL_DTYPES) {
    const x = T.tensor([[0, 1], [1, 0]], undefined, { dtype });
    assert.equal(x.dtype, dtype);
    assert.deepEqual(x.toArray(), [0, 1, 1, 0]);
  }
  // an explicit shape reshapes the flat data
  assert.deepEqual(T.tensor([1, 2, 3, 4, 5, 6], [3, 2]).shape, [3, 2]);
});

test("tensor() rejects a shape that does not match the data and ragged arrays", () => {
  assert.throws(() => T.tensor(new Float32Array(5), [2, 3]), { name: "Error", message: /shape \[2, 3\] holds 6 elements, the array has 5/ });
  assert.throws(() => T.tensor([[1, 2], [3]]), /ragged nested array/);
  assert.throws(() => T.tensor([1, 2, 3], [2, 2]), /holds 4 elements, the array has 3/);
  assert.throws(() => T.tensor(["a"] as unknown as number[]), TypeError);
});

test("rand, randn, randint and randperm are reproducible with a seeded Generator", () => {
  const a = T.randn([100], { generator: new T.Generator(42) }).toArray();
  const b = T.randn([100], { generator: new T.Generator(42) }).toArray();
  const c = T.randn([100], { generator: new T.Generator(43) }).toArray();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  // one generator advances: two draws differ, and equal one draw of twice the size
  const g = new T.Generator(7);
  const first = T.rand([50], { generator: g }).toArray();
  const second = T.rand([50], { generator: g }).toArray();
  assert.notDeepEqual(first, second);
  assert.deepEqual(T.rand([100], { generator: new T.Generator(7) }).toArray(), [...first, ...second]);
  const ri = T.randint(3, 9, [200], { generator: new T.Generator(1) });
  assert.equal(ri.dtype, "int64");
  assert.deepEqual(ri.toArray(), T.randint(3, 9, [200], { generator: new T.Generator(1) }).toArray());
  const perm = T.randperm(10, { generator: new T.Generator(5) }).toArray();
  assert.deepEqual([...perm].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(perm, T.randperm(10, { generator: new T.Generator(5) }).toArray());
});

test("manualSeed and getRngState/setRngState make the global generator reproducible", () => {
  T.manualSeed(123);
  const a = T.rand([20]).toArray();
  const an = T.randn([20]).toArray();
  T.manualSeed(123);
  assert.deepEqual(T.rand([20]).toArray(), a);
  assert.deepEqual(T.randn([20]).toArray(), an);
  const state = T.getRngState();
  assert.equal(state.dtype, "uint8");
  const next = T.randn([10]).toArray();
  T.setRngState(state);
  assert.deepEqual(T.randn([10]).toArray(), next);
});

test("random values lie in their ranges with plausible moments", () => {
  const g = new T.Generator(2024);
  const u = T.rand([20000], { generator: g }).toArray();
  assert.ok(u.every((v) => v >= 0 && v < 1));
  const umean = u.reduce((s, v) => s + v, 0) / u.length;
  assert.ok(Math.abs(umean - 0.5) < 0.02, `uniform mean ${umean}`);
  const n = T.randn([20000], { generator: g, dtype: "float64" });
  assert.equal(n.dtype, "float64");
  const nv = n.toArray();
  const mean = nv.reduce((s, v) => s + v, 0) / nv.length;
  const variance = nv.reduce((s, v) => s + (v - mean) ** 2, 0) / nv.length;
  assert.ok(Math.abs(mean) < 0.03, `normal mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.05, `normal variance ${variance}`);
  const ri = T.randint(-2, 3, [5000], { generator: g }).toArray();
  assert.ok(ri.every((v) => Number.isInteger(v) && v >= -2 && v < 3));
  assert.deepEqual([...new Set(ri)].sort((x, y) => x - y), [-2, -1, 0, 1, 2]);
  assert.equal(T.randint(0, 4, [3], { dtype: "int32" }).dtype, "int32");
  assert.equal(T.rand([2], { requiresGrad: true }).requiresGrad, true);
});

test("arange and linspace give known sequences", () => {
  const a = T.arange(5);
  assert.equal(a.dtype, "int64");
  assert.deepEqual(a.toArray(), [0, 1, 2, 3, 4]);
  assert.deepEqual(T.arange(2, 11, 3).toArray(), [2, 5, 8]);
  assert.deepEqual(T.arange(5, 0, -2).toArray(), [5, 3, 1]);
  const f = T.arange(0, 1, 0.25);
  assert.equal(f.dtype, "float32");
  assert.deepEqual(f.toArray(), [0, 0.25, 0.5, 0.75]);
  assert.equal(T.arange(3, undefined, 1, { dtype: "float64" }).dtype, "float64");
  assert.deepEqual(T.linspace(0, 1, 5).toArray(), [0, 0.25, 0.5, 0.75, 1]);
  assert.deepEqual(T.linspace(-1, 1, 3, { dtype: "float64" }).toArray(), [-1, 0, 1]);
  assert.deepEqual(T.linspace(2, 2, 1).toArray(), [2]);
  assertClose(T.linspace(0, 1, 11, { dtype: "float64" }).toArray(), Array.from({ length: 11 }, (_, i) => i / 10), { rtol: 1e-15, atol: 1e-15 });
});

test("metadata: ndim, size(), item(), toString()", () => {
  const t = T.zeros([2, 3, 4]);
  assert.equal(t.ndim, 3);
  assert.equal(t.size(-1), 4);
  assert.equal(t.size(0), 2);
  assert.throws(() => t.size(3), RangeError);
  assert.equal(t.device, "cpu");
  assert.equal(t.toString(), "Tensor(shape=[2, 3, 4], dtype=float32, device=cpu)");
  assert.throws(() => t.item(), /has 24 elements, not 1/);
  assert.equal(T.tensor([7], undefined, { dtype: "int64" }).item(), 7);
  assert.equal(T.tensor([1], undefined, { dtype: "bool" }).item(), 1);
});

test("to() converts dtypes: truncation toward zero, bfloat16 round-to-nearest-even", () => {
  const x = T.tensor([-1.7, -0.2, 0.5, 2.9]);
  assert.deepEqual(x.to("int32").toArray(), [-1, 0, 0, 2]);
  assert.deepEqual(x.to("bool").toArray(), [1, 1, 1, 1]);
  assert.deepEqual(x.to("float64").toArray(), Array.from(new Float32Array([-1.7, -0.2, 0.5, 2.9])));
  assert.equal(x.long().dtype, "int64");
  assert.equal(x.to("float64").float().dtype, "float32");
  // float → bfloat16 rounds to nearest even on 8 significant bits
  assert.deepEqual(T.tensor([1 + 1 / 256 + 1 / 512, 1 + 1 / 256]).to("bfloat16").toArray(), [1 + 1 / 128, 1]);
  const c = x.clone();
  assert.deepEqual(c.toArray(), x.toArray());
  assert.equal(x.cpu().device, "cpu");
});
