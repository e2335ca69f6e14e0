// safetensors and checkpoints: known bytes, round trips of every dtype, PyTorch's fixture file,
// model + optimizer + RNG + meta round trips, resuming gives the same next losses as never stopping,
// every kind of corrupt file is an Error naming the file and the problem, and writes are atomic.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../../src/torch/index.ts";
import { type Module, UNet, buildNetwork } from "../../src/nn/index.ts";
import { AdamW, SGD, poly } from "../../src/optim/index.ts";

// Exact equality of a resumed run needs one deterministic thread.
T.setNumThreads(1);

const dir = mkdtempSync(join(tmpdir(), "lsmseg-checkpoint-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileCounter = 0;
const tmpFile = (name: string) => join(dir, `${++fileCounter}-${name}`);

/** A safetensors file from a header (object or raw text) and data bytes; headerLength overrides the length field. */
function rawSafetensors(header: unknown, data: Uint8Array = new Uint8Array(0), headerLength?: number): Buffer {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header), "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerLength ?? json.length));
  return Buffer.concat([len, json, data]);
}

const disposeAll = (m: Iterable<T.Tensor>) => {
  for (const t of m) t.dispose();
};

test("safetensors: a file written by hand reads with the right dtypes, shapes, values and metadata", () => {
  const path = tmpFile("hand.safetensors");
  const data = Buffer.concat([
    Buffer.from(new Float32Array([1.5, -2, 0.25, 8]).buffer),
    Buffer.from(new BigInt64Array([-3n]).buffer),
    Buffer.from([1, 0, 1]),
  ]);
  writeFileSync(path, rawSafetensors({
    __metadata__: { note: "by hand" },
    a: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] },
    b: { dtype: "I64", shape: [], data_offsets: [16, 24] },
    c: { dtype: "BOOL", shape: [3], data_offsets: [24, 27] },
  }, data));
  const { tensors, metadata } = T.loadSafetensors(path);
  assert.deepEqual(metadata, { note: "by hand" });
  assert.deepEqual([...tensors.keys()], ["a", "b", "c"]);
  const [a, b, c] = [tensors.get("a")!, tensors.get("b")!, tensors.get("c")!];
  assert.deepEqual([a.dtype, a.shape, a.toArray()], ["float32", [2, 2], [1.5, -2, 0.25, 8]]);
  assert.deepEqual([b.dtype, b.shape, b.item()], ["int64", [], -3]);
  assert.deepEqual([c.dtype, c.shape, c.toArray()], ["bool", [3], [1, 0, 1]]);
  disposeAll(tensors.values());
});

test("safetensors round trip of every dtype, scalars and empty tensors, bit for bit", () => {
  const path = tmpFile("dtypes.safetensors");
  const f = (vals: number[], dtype: T.DType, shape = [vals.length]) => T.tensor(Float64Array.from(vals), shape, { dtype });
  const tensors = new Map<string, T.Tensor>([
    ["f64", f([1 / 3, -1e300, 5e-324, Math.PI], "float64", [2, 2])],
    ["f32", f([0.1, -0, 3.4e38, -1e-40], "float32")],
    ["f16", f([1, -2.5, 65504, 2 ** -14, 2 ** -24], "float16")],
    ["bf16", f([1, -3.5, 2 ** -7, 2 ** 100, -(2 ** -130)], "bfloat16")],
    ["i64", T.tensor(new BigInt64Array([-(2n ** 40n), 2n ** 52n + 1n, 0n]), [3])],
    ["i32", T.tensor(new Int32Array([-2147483648, 2147483647]), [2])],
    ["i16", T.tensor(new Int16Array([-32768, 32767, 1]), [3])],
    ["i8", T.tensor(new Int8Array([-128, 127]), [1, 2])],
    ["u8", T.tensor(new Uint8Array([0, 255, 7]), [3])],
    ["bool", T.tensor(new Uint8Array([1, 0, 0, 1]), [2, 2]).to("bool")],
    ["scalar", T.tensor(new Float32Array([42.5]), [])],
    ["empty", T.zeros([0, 3])],
    ["noncontiguous", T.arange(6, undefined, 1, { dtype: "float32" }).view(2, 3).transpose(0, 1)],
  ]);
  T.saveSafetensors(path, tensors, { who: "test", n: "13" });
  const back = T.loadSafetensors(path);
  assert.deepEqual(back.metadata, { who: "test", n: "13" });
  assert.deepEqual([...back.tensors.keys()], [...tensors.keys()], "the map's order is kept");
  for (const [k, t] of tensors) {
    const b = back.tensors.get(k)!;
    assert.equal(b.dtype, t.dtype, k);
    assert.deepEqual(b.shape, t.shape, k);
    assert.deepEqual(b.toArray(), t.toArray(), k);
    assert.deepEqual(Buffer.from(b.bytes()), Buffer.from(t.bytes()), `${k} bytes`);
  }
  // the values that are exact in each narrow type stayed exact
  assert.deepEqual(back.tensors.get("f16")!.toArray(), [1, -2.5, 65504, 2 ** -14, 2 ** -24]);
  assert.deepEqual(back.tensors.get("bf16")!.toArray(), [1, -3.5, 2 ** -7, 2 ** 100, -(2 ** -130)]);
  assert.deepEqual(back.tensors.get("i64")!.toArray(), [-(2 ** 40), 2 ** 52 + 1, 0]);
  assert.deepEqual(back.tensors.get("noncontiguous")!.toArray(), [0, 3, 1, 4, 2, 5]);
  // layout: the header is padded to 8 bytes and the offsets tile the data section in order
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  assert.equal(n % 8, 0);
  const header = JSON.parse(buf.subarray(8, 8 + n).toString()) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  assert.deepEqual(Object.values(header).slice(1).map((e) => e.dtype), ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F32", "F32", "F32"]);
  let end = 0;
  for (const e of Object.values(header).slice(1)) {
    assert.equal(e.data_offsets[0], end);
    end = e.data_offsets[1];
  }
  assert.equal(end, buf.length - 8 - n);
  disposeAll(tensors.values());
  disposeAll(back.tensors.values());
});

test("the fixture written by PyTorch's script (fixtures/torch/unet_parity.safetensors) reads, and rewrites to the same data bytes", () => {
  const src = new URL("../../fixtures/torch/unet_parity.safetensors", import.meta.url).pathname;
  const { tensors, metadata } = T.loadSafetensors(src);
  assert.equal(metadata.channels, "4,8,16,32");
  assert.match(metadata.torch, /^1\.13/);
  assert.equal(tensors.size, 4 + 3 * 50);
  const x = tensors.get("input")!, y = tensors.get("target")!, loss = tensors.get("loss")!;
  assert.deepEqual([x.dtype, x.shape], ["float32", [2, 1, 16, 16, 16]]);
  assert.deepEqual([y.dtype, y.shape], ["int64", [2, 16, 16, 16]]);
  assert.deepEqual(new Set(y.toArray()), new Set([0, 1]));
  assert.deepEqual([loss.dtype, loss.shape], ["float32", []]);
  assert.ok(loss.item() > 0 && loss.item() < 2);
  assert.deepEqual(tensors.get("param.enc.0.0.weight")!.shape, [4, 1, 3, 3, 3]);
  const again = tmpFile("fixture-again.safetensors");
  T.saveSafetensors(again, tensors, metadata);
  const dataOf = (p: string) => {
    const b = readFileSync(p);
    return b.subarray(8 + Number(b.readBigUInt64LE(0)));
  };
  assert.ok(dataOf(again).equals(dataOf(src)), "the data section is byte-identical");
  disposeAll(tensors.values());
});

/** A small trainable network: two stages, batch norm (so there are buffers, an int64 one included). */
const smallNet = (norm: "instance" | "batch" = "batch") => new UNet({ features: [4, 8], strides: [1, 2], kernelSizes: [3, 3], norm });

/** One AdamW/SGD step on data drawn from the global RNG (so the RNG state matters); returns the loss. */
function trainStep(net: Module, opt: AdamW | SGD, size = 16): number {
  return T.tidy(() => {
    const x = T.randn([1, 1, size, size, size]);
    const y = T.randint(0, 2, [1, size, size, size]);
    const loss = T.crossEntropy(net.forward(x) as T.Tensor, y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return loss.item();
  });
}

test("checkpoint round trip: model (with buffers), optimizer state, RNG state and meta", () => {
  T.manualSeed(11);
  const net = smallNet();
  const opt = new AdamW(net.parameters(), { lr: 1e-3, amsgrad: true });
  trainStep(net, opt, 8);
  trainStep(net, opt, 8);
  const path = tmpFile("roundtrip.ckpt.safetensors");
  const state = opt.stateDict();
  T.saveCheckpoint(path, {
    step: 2, model: net.stateDict(), optimizer: state, network: { ...net.config }, extra: { plan: { patch: [8, 8, 8] }, epoch: 0 },
  });
  const drawnAfterSave = T.tidy(() => T.randn([6]).toArray());

  const meta = T.readCheckpointMeta(path);
  assert.equal(meta.format, "lsmseg-checkpoint");
  assert.equal(meta.version, 1);
  assert.equal(meta.step, 2);
  assert.deepEqual(meta.network, JSON.parse(JSON.stringify(net.config)));
  assert.deepEqual(meta.optimizer, { kind: "adamw", lr: 1e-3, numParams: net.parameters().length });
  assert.deepEqual(meta.extra, { plan: { patch: [8, 8, 8] }, epoch: 0 });
  assert.ok(Math.abs(Date.parse(meta.savedAt) - Date.now()) < 60_000, `savedAt ${meta.savedAt}`);

  const ck = T.loadCheckpoint(path, { restoreRng: true });
  assert.deepEqual(T.tidy(() => T.randn([6]).toArray()), drawnAfterSave, "restoreRng: the same draws as right after saving");
  assert.deepEqual(ck.meta, meta);
  const sd = net.stateDict();
  assert.deepEqual([...ck.model.keys()], [...sd.keys()]);
  for (const [k, t] of sd) {
    const c = ck.model.get(k)!;
    assert.equal(c.dtype, t.dtype, k);
    assert.deepEqual(Buffer.from(c.bytes()), Buffer.from(t.bytes()), k);
  }
  assert.equal(ck.model.get("enc.0.1.num_batches_tracked")!.item(), 2);
  assert.equal(ck.optimizer!.kind, "adamw");
  assert.equal(ck.optimizer!.params.length, state.params.length);
  state.params.forEach((e, i) => {
    assert.deepEqual(Object.keys(ck.optimizer!.params[i]!).sort(), Object.keys(e!).sort());
    for (const [k, t] of Object.entries(e!)) assert.deepEqual(ck.optimizer!.params[i]![k].toArray(), t.toArray(), `optim ${i} ${k}`);
  });
  assert.equal(ck.rng!.dtype, "uint8");

  // a network rebuilt from the saved config takes the weights strictly; the optimizer takes its state
  const net2 = buildNetwork(ck.meta.network as never);
  assert.equal(net2.loadStateDict(ck.model).loaded.length, sd.size);
  const opt2 = new AdamW(net2.parameters(), { lr: 0.5, amsgrad: true });
  opt2.loadStateDict(ck.optimizer!);
  assert.equal(opt2.lr, 1e-3);
  const s2 = opt2.stateDict();
  assert.equal(s2.params[0]!.step.item(), 2);
  for (const e of [...state.params, ...s2.params, ...ck.optimizer!.params]) disposeAll(Object.values(e!));
  disposeAll([...ck.model.values(), ck.rng!]);
  net.dispose();
  net2.dispose();
});

test("resume = same next losses: training k steps, saving, loading into a fresh net and optimizer, continuing", () => {
  const k = 3, more = 3;
  const schedule = poly(0.01, 10);
  const run = (net: Module, opt: AdamW, from: number, to: number): number[] => {
    const losses: number[] = [];
    for (let t = from; t <= to; t++) {
      opt.lr = schedule(t);
      losses.push(trainStep(net, opt));
    }
    return losses;
  };
  T.manualSeed(2024);
  const net = smallNet("instance");
  const opt = new AdamW(net.parameters(), { lr: schedule(0), weightDecay: 0.01 });
  run(net, opt, 1, k);
  const path = tmpFile("resume.ckpt.safetensors");
  const state = opt.stateDict();
  T.saveCheckpoint(path, { step: k, model: net.stateDict(), optimizer: state, network: { ...net.config } });
  for (const e of state.params) disposeAll(Object.values(e!));
  const uninterrupted = run(net, opt, k + 1, k + more);

  /** A fresh run (another seed, so other initial weights and data) that loads the checkpoint and continues. */
  const resume = (restoreRng: boolean): number[] => {
    T.manualSeed(99);
    const net2 = smallNet("instance"); // its init draws from the RNG: the checkpoint's RNG state is restored after it
    const opt2 = new AdamW(net2.parameters(), { lr: 1, weightDecay: 0.01 });
    const ck = T.loadCheckpoint(path, { restoreRng });
    net2.loadStateDict(ck.model);
    opt2.loadStateDict(ck.optimizer!);
    disposeAll([...ck.model.values(), ck.rng!]);
    for (const e of ck.optimizer!.params) disposeAll(Object.values(e!));
    const losses = run(net2, opt2, ck.meta.step + 1, ck.meta.step + more);
    net2.dispose();
    return losses;
  };
  assert.deepEqual(resume(true), uninterrupted, "exactly the same losses (fp32, one thread)");
  // without the RNG state the data differ: the RNG is part of what a checkpoint must carry
  assert.notDeepEqual(resume(false), uninterrupted);
  net.dispose();
});

test("optimizer state survives a checkpoint when some parameters have none (SGD without momentum, no gradient)", () => {
  T.manualSeed(5);
  const net = smallNet("instance");
  const plain = new SGD(net.parameters(), { lr: 0.1 });
  trainStep(net, plain, 8);
  const p1 = tmpFile("sgd-plain.ckpt.safetensors");
  T.saveCheckpoint(p1, { step: 1, model: net.stateDict(), optimizer: plain.stateDict() });
  const ck1 = T.loadCheckpoint(p1);
  assert.equal(ck1.optimizer!.params.length, net.parameters().length);
  assert.ok(ck1.optimizer!.params.every((e) => e === null));
  new SGD(net.parameters(), { lr: 0.1 }).loadStateDict(ck1.optimizer!);

  // momentum, but the last parameters (the head) got no gradient: their state is null at the end of the list
  const params = net.parameters();
  const mom = new SGD(params, { lr: 0.1, momentum: 0.9 });
  mom.zeroGrad();
  T.tidy(() => {
    const loss = (net as UNet).encode(T.randn([1, 1, 8, 8, 8])).map((t) => t.sum()).reduce((a, b) => a.add(b));
    loss.backward();
  });
  mom.step();
  const st = mom.stateDict();
  const withState = st.params.filter((e) => e !== null).length;
  assert.ok(withState > 0 && withState < params.length && st.params.at(-1) === null);
  const p2 = tmpFile("sgd-momentum.ckpt.safetensors");
  T.saveCheckpoint(p2, { step: 1, model: net.stateDict(), optimizer: st });
  const ck2 = T.loadCheckpoint(p2);
  assert.deepEqual(ck2.optimizer!.params.map((e) => e === null), st.params.map((e) => e === null));
  const again = new SGD(params, { lr: 0.1, momentum: 0.9 });
  again.loadStateDict(ck2.optimizer!);
  const st2 = again.stateDict();
  st.params.forEach((e, i) => {
    if (e) assert.deepEqual(st2.params[i]!.momentum_buffer.toArray(), e.momentum_buffer.toArray());
    else assert.equal(st2.params[i], null);
  });
  for (const ck of [ck1, ck2]) {
    disposeAll([...ck.model.values(), ck.rng!]);
    for (const e of ck.optimizer!.params) if (e) disposeAll(Object.values(e));
  }
  for (const e of [...st.params, ...st2.params]) if (e) disposeAll(Object.values(e));
  net.dispose();
});

test("corrupt and foreign files: each an Error naming the file and the problem", () => {
  // a valid checkpoint to damage
  const good = tmpFile("good.ckpt.safetensors");
  const net = smallNet("instance");
  T.saveCheckpoint(good, { step: 1, model: net.stateDict() });
  net.dispose();
  const bytes = readFileSync(good);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  const f32x4 = Buffer.from(new Float32Array([1, 2, 3, 4]).buffer);
  const meta = { lsmseg: JSON.stringify({ format: "lsmseg-checkpoint", version: 1, step: 0, savedAt: "" }) };

  const cases: [string, Buffer | string, RegExp][] = [
    ["truncated in the data", bytes.subarray(0, bytes.length - 100), /not a valid safetensors file: tensor '.*' ends at byte \d+ of a data section of \d+ bytes \(truncated file\?\)/],
    ["truncated in the header", bytes.subarray(0, 40), new RegExp(`the header claims ${headerLen} bytes but only 32 follow \\(truncated file\\?\\)`)],
    ["shorter than the length field", bytes.subarray(0, 5), /the file has 5 bytes, fewer than the 8-byte header length/],
    ["empty", Buffer.alloc(0), /the file has 0 bytes/],
    ["garbage header length", Buffer.concat([Buffer.alloc(8, 0xff), bytes.subarray(8)]), /the header claims 18446744073709552000 bytes but only \d+ follow/],
    ["non-JSON header", rawSafetensors("{\"w\": {\"dtype\": \"F32\", ", f32x4), /the header is not JSON \(/],
    ["JSON header that is not an object", rawSafetensors("null"), /the header is JSON but not an object \(null\)/],
    ["JSON array header", rawSafetensors("[1, 2]"), /the header is JSON but not an object/],
    ["offsets beyond the data", rawSafetensors({ w: { dtype: "F32", shape: [4], data_offsets: [8, 24] } }, f32x4), /tensor 'w' ends at byte 24 of a data section of 16 bytes/],
    ["wrong byte count for the shape", rawSafetensors({ w: { dtype: "F32", shape: [2, 3], data_offsets: [0, 16] } }, f32x4), /tensor 'w' of shape \[2,3\] F32 needs 24 bytes, its offsets span 16/],
    ["negative dimensions", rawSafetensors({ w: { dtype: "F32", shape: [-2, -2], data_offsets: [0, 16] } }, f32x4), /tensor 'w' has shape \[-2,-2\]; dimensions must be integers >= 0/],
    ["unknown dtype", rawSafetensors({ w: { dtype: "F8_E4M3", shape: [16], data_offsets: [0, 16] } }, f32x4), /tensor 'w' has unsupported dtype 'F8_E4M3'/],
    ["entry without offsets", rawSafetensors({ w: { dtype: "F32", shape: [4] } }, f32x4), /tensor 'w' has no dtype\/shape\/data_offsets/],
    ["bytes after the last tensor", rawSafetensors({ w: { dtype: "F32", shape: [3], data_offsets: [0, 12] } }, f32x4), /the data section has 16 bytes but the tensors cover 12/],
    ["missing lsmseg metadata", rawSafetensors({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, f32x4), /a safetensors file but not an lsmseg checkpoint \(no 'lsmseg' metadata\)/],
    ["lsmseg metadata not JSON", rawSafetensors({ __metadata__: { lsmseg: "{step: 1" } }), /the checkpoint's metadata is not JSON/],
    ["another format", rawSafetensors({ __metadata__: { lsmseg: "{\"format\": \"other\"}" } }), /unknown checkpoint format 'other'/],
    ["a newer version", rawSafetensors({ __metadata__: { lsmseg: "{\"format\": \"lsmseg-checkpoint\", \"version\": 2}" } }), /checkpoint version 2 is newer than this lsmseg reads \(1\)/],
    ["optimizer key out of range", rawSafetensors({ __metadata__: { lsmseg: JSON.stringify({ ...JSON.parse(meta.lsmseg), optimizer: { kind: "sgd", lr: 1, numParams: 1 } }) }, "optim.3.momentum_buffer": { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, f32x4), /tensor 'optim\.3\.momentum_buffer' does not name one of the optimizer's 1 parameters/],
    ["not a checkpoint at all", "hello, this is a text file and not a checkpoint\n", /not a valid safetensors file: the header claims \d+ bytes/],
  ];
  const base = T.liveTensors().tensors;
  for (const [what, content, problem] of cases) {
    const path = tmpFile(`${what.replace(/ /g, "-")}.safetensors`);
    writeFileSync(path, content);
    for (const [fn, read] of [["loadCheckpoint", () => T.loadCheckpoint(path)], ["readCheckpointMeta", () => T.readCheckpointMeta(path)]] as const) {
      if (fn === "readCheckpointMeta" && what === "optimizer key out of range") continue; // the header alone is fine
      assert.throws(read, (err: unknown) => {
        assert.ok(err instanceof Error, `${what}: ${fn} throws an Error`);
        assert.ok(err.message.startsWith(`${path}: `), `${what}: ${fn} names the file: ${err.message}`);
        assert.match(err.message, problem, `${what} (${fn})`);
        return true;
      });
    }
  }
  assert.equal(T.liveTensors().tensors, base, "a failed load leaves no tensors behind");
  // loadSafetensors gives the same errors for the safetensors-level problems
  const trunc = tmpFile("trunc.safetensors");
  writeFileSync(trunc, bytes.subarray(0, bytes.length - 1));
  assert.throws(() => T.loadSafetensors(trunc), new RegExp(`^Error: ${trunc.replace(/[.]/g, "\\.")}: not a valid safetensors file: .*truncated file\\?`));
  const missing = join(dir, "does-not-exist.safetensors");
  assert.throws(() => T.loadCheckpoint(missing), { message: `${missing}: no such checkpoint` });
  assert.throws(() => T.readCheckpointMeta(missing), { message: `${missing}: no such checkpoint` });
});

test("saveCheckpoint never overwrites by accident, replaces atomically with overwrite: true, and leaves no temporary files", () => {
  const sub = join(dir, "overwrite");
  mkdirSync(sub);
  const path = join(sub, "ck.safetensors");
  const w = new Map([["w", T.ones([3])]]);
  T.saveCheckpoint(path, { step: 1, model: w });
  const first = readFileSync(path);
  assert.throws(() => T.saveCheckpoint(path, { step: 2, model: w }), { message: `${path}: a checkpoint already exists there (pass overwrite: true to replace it atomically)` });
  assert.ok(readFileSync(path).equals(first), "the existing checkpoint is untouched");
  T.saveCheckpoint(path, { step: 2, model: w, overwrite: true });
  assert.equal(T.readCheckpointMeta(path).step, 2);
  assert.deepEqual(readdirSync(sub), ["ck.safetensors"]);

  // the target's folder is a file: nothing written anywhere
  const blocker = join(sub, "not-a-dir");
  writeFileSync(blocker, "x");
  assert.throws(() => T.saveCheckpoint(join(blocker, "ck.safetensors"), { step: 1, model: w }), (err: Error) => err instanceof Error && err.message.includes(blocker));
  assert.equal(readFileSync(blocker, "utf8"), "x");
  // the target is a directory: the rename fails after the temporary file was written, which must go too
  const asDir = join(sub, "a-dir.safetensors");
  mkdirSync(asDir);
  assert.throws(
    () => T.saveCheckpoint(asDir, { step: 1, model: w, overwrite: true }),
    (err: Error) => err instanceof Error && err.message.includes(asDir),
  );
  assert.deepEqual(readdirSync(sub).sort(), ["a-dir.safetensors", "ck.safetensors", "not-a-dir"]);
  assert.deepEqual(readdirSync(asDir), []);
  disposeAll(w.values());
});
