// The per-operator profile (native/profiler.cc): every dispatcher call and autograd node on this thread is counted
// by name, self time never exceeds total time, and starting or stopping out of turn is a clear error.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";
import { native } from "../../src/torch/native.ts";

test("profilerStop counts each operator called since profilerStart, with self ≤ total", () => {
  const a = T.ones([8, 8]), b = T.ones([8, 8]);
  native.profilerStart();
  for (let i = 0; i < 3; i++) a.add(b).dispose();
  T.matmul(a, b).dispose();
  const ops = native.profilerStop();
  const byName = new Map(ops.map((o) => [o.name, o]));
  assert.equal(byName.get("aten::add")?.calls, 3);
  assert.equal(byName.get("aten::matmul")?.calls, 1);
  for (const o of ops) {
    assert.ok(o.selfUs <= o.totalUs + 1e-6, `${o.name}: self ${o.selfUs} > total ${o.totalUs}`);
    assert.ok(o.selfUs >= 0, `${o.name}: negative self time`);
  }
  // matmul of two 2-D tensors calls mm inside it: mm's time is in matmul's total, not its self
  const mm = byName.get("aten::mm"), matmul = byName.get("aten::matmul")!;
  if (mm) assert.ok(matmul.totalUs >= mm.totalUs);
  a.dispose();
  b.dispose();
});

test("the backward pass shows up as autograd nodes", () => {
  const w = T.ones([4, 4]).requiresGrad_();
  native.profilerStart();
  T.tidy(() => T.matmul(w, w).sum().backward());
  const names = native.profilerStop().map((o) => o.name);
  assert.ok(names.some((n) => n.includes("MmBackward")), names.join(", "));
  w.dispose();
});

test("starting twice or stopping without a start is an Error, not an abort", () => {
  assert.throws(() => native.profilerStop(), /no profile is running/);
  native.profilerStart();
  assert.throws(() => native.profilerStart(), /already running/);
  assert.deepEqual(native.profilerStop().filter((o) => o.calls < 1), []);
});
