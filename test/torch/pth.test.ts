// PyTorch checkpoints (.pth): the restricted unpickler reads what torch.save wrote (fixtures/weights/
// make_weights.py, Debian's python3-torch 1.13) — views, dtypes, numpy scalars, nnU-Net's extra entries —
// refuses pickled code and foreign classes naming them, refuses the legacy format, and what lsmseg writes
// is read back bit for bit here and by torch.load(weights_only=True) when python3-torch is installed.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { PyDict, PyTuple, TensorRef, NumpyArray, PySet, pickle, unpickle } from "../../src/torch/pickle.ts";
import { PthWriter, readPth, stateDictOf } from "../../src/torch/pth.ts";
import * as T from "../../src/torch/index.ts";

const FIX = "fixtures/weights";
const dir = mkdtempSync(join(tmpdir(), "lsmseg-pth-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const python = "/usr/bin/python3";
const hasTorch = spawnSync(python, ["-c", "import torch"]).status === 0;

test("views, dtypes, parameters and plain values come out as torch.save wrote them", () => {
  const p = readPth(join(FIX, "reader_cases.pth"));
  const root = p.root as PyDict;
  const t = root.get("tensors") as PyDict;
  const get = (k: string) => {
    const x = p.tensor(t.get(k) as TensorRef);
    try {
      return { shape: x.shape, dtype: x.dtype, values: x.dtype === "int64" ? Array.from(x.bytes().length ? new BigInt64Array(x.bytes().buffer.slice(0)) : []).map(String) : x.toArray() };
    } finally {
      x.dispose();
    }
  };
  const base = Array.from({ length: 24 }, (_, i) => i);
  assert.deepEqual(get("same"), { shape: [4, 6], dtype: "float32", values: base });
  // base.t(): a transposed view of the same storage (stride [1, 6])
  assert.deepEqual(get("transposed").values, Array.from({ length: 24 }, (_, k) => base[(k % 4) * 6 + Math.floor(k / 4)]));
  assert.deepEqual((t.get("transposed") as TensorRef).stride, [1, 6]);
  // base[1:3, 2:5]: offset 8, stride [6, 1]
  assert.deepEqual(get("sliced"), { shape: [2, 3], dtype: "float32", values: [8, 9, 10, 14, 15, 16] });
  assert.equal((t.get("sliced") as TensorRef).storageOffset, 8);
  assert.deepEqual(get("int64").values, ["-3", String(2 ** 40)]);
  assert.deepEqual(get("float16"), { shape: [3], dtype: "float16", values: [0.5, -2, 65504] });
  assert.deepEqual(get("bool"), { shape: [3], dtype: "bool", values: [1, 0, 1] });
  assert.deepEqual(get("param").values, [1.5, 2.5]);
  assert.equal((t.get("param") as TensorRef).isParameter, true);
  assert.deepEqual(get("scalar"), { shape: [], dtype: "float32", values: [7] });
  assert.deepEqual(get("empty"), { shape: [0, 3], dtype: "float32", values: [] });
  assert.equal(root.get("np_float"), 0.25);
  assert.equal(root.get("np_int"), -5);
  const arr = root.get("np_array") as NumpyArray;
  assert.deepEqual([arr.dtype.descr, arr.shape, Array.from(new Int32Array(arr.data.slice().buffer))], ["<i4", [3], [0, 1, 2]]);
  assert.deepEqual((root.get("tuple") as PyTuple).items, [1, "a", null, true]);
  assert.deepEqual((root.get("set") as PySet).items, [3]);
  assert.deepEqual(Array.from(root.get("bytes") as Uint8Array), [0, 255]);
  assert.equal(root.get("big"), 2n ** 70n);
  assert.equal(root.get("float"), 1.5);
});

test("an nnU-Net checkpoint's extra entries (optimizer, numpy log values, torch.device, init_args) are read", () => {
  const p = readPth(join(FIX, "nnunet_plain/fold_0/checkpoint_final.pth"));
  const root = p.root as PyDict;
  assert.equal(stateDictOf(root.get("network_weights"), "x").size, 188);
  assert.equal(root.get("_best_ema"), 0.5125);
  assert.equal(root.get("trainer_name"), "nnUNetTrainer");
  assert.deepEqual(((root.get("init_args") as PyDict).get("device") as { device: string }).device, "cpu");
  assert.deepEqual(((root.get("logging") as PyDict).get("train_losses") as number[]), [-0.25, -0.5]);
  const opt = root.get("optimizer_state") as PyDict;
  assert.equal((opt.get("state") as PyDict).map.size, 68);
  assert.deepEqual((root.get("inference_allowed_mirroring_axes") as PyTuple).items, [0, 1, 2]);
});

test("pickled code and foreign classes are refused, naming the class; so is the legacy format", () => {
  assert.throws(() => readPth(join(FIX, "malicious_os_system.pth")), /malicious_os_system\.pth: refuses to unpickle posix\.system \(only state-dict classes are allowed\)/);
  assert.throws(() => readPth(join(FIX, "malicious_custom_class.pth")), /malicious_custom_class\.pth: refuses to unpickle __main__\.Payload/);
  assert.throws(() => readPth(join(FIX, "legacy_format.pth")), /legacy_format\.pth: a legacy \(PyTorch < 1\.6, non-zip\) checkpoint/);
  // hand-made pickles: a builtin reached through STACK_GLOBAL, eval via REDUCE, an OBJ opcode
  const enc = (s: string) => Buffer.from(s, "latin1");
  assert.throws(() => unpickle(enc("\x80\x04\x8c\x08builtins\x8c\x04eval\x93."), { source: "x.pkl" }), /x\.pkl: refuses to unpickle builtins\.eval/);
  assert.throws(() => unpickle(enc("cos\nsystem\n(S'ls'\ntR."), { source: "y.pkl" }), /y\.pkl: refuses to unpickle os\.system/);
  assert.throws(() => unpickle(enc("\x80\x02(o."), { source: "z.pkl" }), /z\.pkl: refuses the pickle opcode OBJ/);
  assert.throws(() => unpickle(enc("\x80\x02X\x05\x00\x00\x00ab"), { source: "t.pkl" }), /t\.pkl: the pickle ends early/);
  const notZip = join(dir, "notzip.pth");
  writeFileSync(notZip, "hello world");
  assert.throws(() => readPth(notZip), /notzip\.pth: not a PyTorch checkpoint/);
});

test("pickle → unpickle round trip of plain values", () => {
  const v = new PyDict(false, [["a", 1], ["b", [1, -2, 300, 70000, -(2 ** 31), 2 ** 40, "x", null, true, false]], ["c", new PyTuple([1, 2, 3, 4])], ["d", new PyDict(true, [[0, "zero"]])], ["f", 0.125]]);
  const back = unpickle(pickle(v), { source: "rt" }) as PyDict;
  assert.equal(back.get("a"), 1);
  assert.deepEqual(back.get("b"), [1, -2, 300, 70000, -(2 ** 31), 2 ** 40, "x", null, true, false]);
  assert.deepEqual((back.get("c") as PyTuple).items, [1, 2, 3, 4]);
  assert.equal((back.get("d") as PyDict).ordered, true);
  assert.equal((back.get("d") as PyDict).get(0), "zero");
  assert.equal(back.get("f"), 0.125);
});

test("a .pth lsmseg writes reads back bit for bit, shares storage between aliases, and torch.load(weights_only=True) reads it", () => {
  const a = T.randn([3, 4, 5]);
  const b = T.tensor(new Int32Array([1, -2, 3]), [3]);
  const c = T.tensor(new Float32Array([0.5]), [1]).to("bfloat16");
  const w = new PthWriter();
  const path = join(dir, "out.pth");
  w.save(path, new PyDict(false, [["network_weights", w.stateDict([["a", a], ["a_alias", a], ["b", b], ["c", c]])]]) as never);
  const buf = readFileSync(path);
  const p = readPth(path, buf);
  const sd = stateDictOf((p.root as PyDict).get("network_weights"), "out.pth");
  assert.equal(sd.get("a")!.storage.key, sd.get("a_alias")!.storage.key);
  for (const [k, orig] of [["a", a], ["a_alias", a], ["b", b], ["c", c]] as const) {
    const t = p.tensor(sd.get(k)!);
    assert.deepEqual([t.shape, t.dtype], [orig.shape, orig.dtype]);
    assert.deepEqual(Buffer.from(t.bytes()), Buffer.from(orig.bytes()), k);
    t.dispose();
  }
  // every stored entry's data starts on a 64-byte boundary, as PyTorch writes them
  for (let i = 0; i + 30 < buf.length && buf.readUInt32LE(i) === 0x04034b50;) {
    const start = i + 30 + buf.readUInt16LE(i + 26) + buf.readUInt16LE(i + 28);
    assert.equal(start % 64, 0);
    i = start + buf.readUInt32LE(i + 18);
  }
  if (hasTorch) {
    const r = spawnSync(python, ["-c", `import torch, sys
d = torch.load(sys.argv[1], weights_only=True)["network_weights"]
assert d["a"].data_ptr() == d["a_alias"].data_ptr()
print(list(d.keys()), d["b"].tolist(), d["c"].dtype)
print(float(d["a"].double().sum()))`, path], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const [line1, line2] = r.stdout.trim().split("\n");
    assert.equal(line1, "['a', 'a_alias', 'b', 'c'] [1, -2, 3] torch.bfloat16");
    const sum = a.to("float64").sum();
    assert.ok(Math.abs(Number(line2) - sum.item()) < 1e-9);
    sum.dispose();
  }
  for (const t of [a, b, c]) t.dispose();
});
