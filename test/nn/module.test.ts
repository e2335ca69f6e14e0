// nn: state-dict keys equal PyTorch's for the same structure, strict and non-strict loading,
// train/eval, each layer against its functional op or a slow JS reference, PyTorch's fans and
// nnU-Net's Kaiming init, and the output shapes of both U-Nets.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as T from "../../src/torch/index.ts";
import {
  AvgPool3d, BatchNorm3d, Conv3d, ConvTranspose3d, Dropout, GELU, GroupNorm, Identity, InstanceNorm3d, LayerNorm, LeakyReLU, Linear,
  type Module, ModuleList, ReLU, ResEncUNet, SiLU, Sequential, UNet, anchorUNetConfig, buildNetwork, fans, kaimingNormal_,
} from "../../src/nn/index.ts";
import { SGD } from "../../src/optim/index.ts";
import { assertClose, assertTensor, build, randomTensor } from "../torch/helpers.ts";

const keysOf = (m: Module) => [...m.stateDict().keys()];
const shapesOf = (m: Module) => Object.fromEntries([...m.stateDict()].map(([k, t]) => [k, t.shape]));

test("Sequential(Conv3d, InstanceNorm3d, LeakyReLU) has PyTorch's keys and shapes", () => {
  const m = new Sequential(new Conv3d(2, 4, 3), new InstanceNorm3d(4), new LeakyReLU());
  // torch: nn.Sequential(nn.Conv3d(2, 4, 3), nn.InstanceNorm3d(4, affine=True), nn.LeakyReLU()).state_dict()
  assert.deepEqual(shapesOf(m), { "0.weight": [4, 2, 3, 3, 3], "0.bias": [4], "1.weight": [4], "1.bias": [4] });
  assert.deepEqual(keysOf(m), ["0.weight", "0.bias", "1.weight", "1.bias"]);
  assert.equal(m.numParameters(), 4 * 2 * 27 + 4 + 4 + 4);
  // without bias or affine the keys disappear, as in PyTorch
  const bare = new Sequential(new Conv3d(2, 4, 3, { bias: false }), new InstanceNorm3d(4, { affine: false }));
  assert.deepEqual(keysOf(bare), ["0.weight"]);
  m.dispose();
  bare.dispose();
});

test("BatchNorm3d: parameters then buffers running_mean, running_var, num_batches_tracked (int64 scalar)", () => {
  const bn = new BatchNorm3d(3);
  assert.deepEqual(keysOf(bn), ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
  assert.deepEqual(bn.namedParameters().map(([k]) => k), ["weight", "bias"]);
  assert.deepEqual(bn.namedBuffers().map(([k]) => k), ["running_mean", "running_var", "num_batches_tracked"]);
  assert.equal(bn.numBatchesTracked.dtype, "int64");
  assert.deepEqual(bn.numBatchesTracked.shape, []);
  assert.deepEqual(bn.runningMean.toArray(), [0, 0, 0]);
  assert.deepEqual(bn.runningVar.toArray(), [1, 1, 1]);
  // nested: buffers carry the child's prefix
  const seq = new Sequential(new Conv3d(1, 3, 1), new BatchNorm3d(3));
  assert.deepEqual(keysOf(seq), ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked"]);
  bn.dispose();
  seq.dispose();
});

test("the anchor U-Net: PyTorch's keys, 50 tensors, 1,401,282 parameters", () => {
  const net = new UNet(anchorUNetConfig());
  const keys = keysOf(net);
  // torch: UNet() of ../shared/anchors/unet_step.py; LeakyReLU sits at index 2 and 5 of each stage.
  assert.deepEqual(keys.slice(0, 8), ["enc.0.0.weight", "enc.0.1.weight", "enc.0.1.bias", "enc.0.3.weight", "enc.0.4.weight", "enc.0.4.bias", "enc.1.0.weight", "enc.1.1.weight"]);
  assert.deepEqual(keys.slice(24, 28), ["up.0.weight", "up.0.bias", "up.1.weight", "up.1.bias"]);
  assert.deepEqual(keys.slice(-4), ["dec.2.4.weight", "dec.2.4.bias", "head.weight", "head.bias"]);
  assert.equal(keys.length, 4 * 6 + 3 * 2 + 3 * 6 + 2);
  const s = shapesOf(net);
  assert.deepEqual(s["enc.0.0.weight"], [16, 1, 3, 3, 3]);
  assert.deepEqual(s["enc.3.0.weight"], [128, 64, 3, 3, 3]);
  assert.deepEqual(s["up.0.weight"], [128, 64, 2, 2, 2]); // ConvTranspose3d: [in, out, k, k, k]
  assert.deepEqual(s["dec.0.0.weight"], [64, 128, 3, 3, 3]);
  assert.deepEqual(s["head.weight"], [2, 16, 1, 1, 1]);
  assert.equal(net.numParameters(), 1_401_282);
  net.dispose();
});

test("the U-Net's keys come in the order of PyTorch's state_dict (the parity fixture's order)", () => {
  const fixture = T.loadSafetensors(new URL("../../fixtures/torch/unet_parity.safetensors", import.meta.url).pathname).tensors;
  const torchKeys = [...fixture.keys()].filter((k) => k.startsWith("param.")).map((k) => k.slice(6));
  const net = new UNet(anchorUNetConfig({ features: [4, 8, 16, 32] }));
  assert.deepEqual(keysOf(net), torchKeys);
  for (const [k, t] of net.stateDict()) assert.deepEqual(t.shape, fixture.get(`param.${k}`)!.shape, k);
  net.dispose();
  for (const t of fixture.values()) t.dispose();
});

/** A small module: a conv, a batch norm (with buffers) and a linear layer in a ModuleList. */
const small = () => new Sequential(new Conv3d(1, 2, 3), new BatchNorm3d(2), new ModuleList([new Linear(3, 2)]));

test("strict loadStateDict throws an Error listing missing, unexpected and mismatched keys", () => {
  const m = small();
  const sd = new Map(m.stateDict());
  const full = m.stateDict();
  // exactly right: loads every key
  assert.deepEqual(m.loadStateDict(full).loaded, [...full.keys()]);
  sd.delete("1.running_var");
  sd.delete("2.0.bias");
  const extra = T.zeros([2]);
  const wrong = T.zeros([2, 1, 3, 3]);
  sd.set("1.extra", extra);
  sd.set("0.weight", wrong);
  assert.throws(() => m.loadStateDict(sd), (err: Error) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, /missing keys: 1\.running_var, 2\.0\.bias/);
    assert.match(err.message, /unexpected keys: 1\.extra/);
    assert.match(err.message, /0\.weight expects \[2,1,3,3,3\] got \[2,1,3,3\]/);
    return true;
  });
  // a plain object works as well as a Map
  assert.throws(() => m.loadStateDict({ "0.weight": full.get("0.weight")! }), /missing keys: 0\.bias, 1\.weight/);
  m.dispose();
  extra.dispose();
  wrong.dispose();
});

test("non-strict loadStateDict loads what matches and reports the rest", () => {
  const a = small(), b = small();
  const sd = new Map(a.stateDict());
  sd.delete("2.0.bias");
  const wrong = T.zeros([5]);
  const extra = T.ones([1]);
  sd.set("1.bias", wrong);
  sd.set("ds.0.weight", extra);
  const b1Before = b.stateDict().get("1.bias")!.toArray();
  const b20Before = b.stateDict().get("2.0.bias")!.toArray();
  const r = b.loadStateDict(sd, { strict: false });
  assert.deepEqual(r.missing, ["2.0.bias"]);
  assert.deepEqual(r.unexpected, ["ds.0.weight"]);
  assert.deepEqual(r.mismatched, [{ key: "1.bias", expected: [2], got: [5] }]);
  assert.deepEqual(r.loaded, ["0.weight", "0.bias", "1.weight", "1.running_mean", "1.running_var", "1.num_batches_tracked", "2.0.weight"]);
  const sa = a.stateDict(), sb = b.stateDict();
  for (const k of r.loaded) assert.deepEqual(sb.get(k)!.toArray(), sa.get(k)!.toArray(), k);
  assert.deepEqual(sb.get("1.bias")!.toArray(), b1Before, "a mismatched key is left alone");
  assert.deepEqual(sb.get("2.0.bias")!.toArray(), b20Before, "a missing key is left alone");
  for (const m of [a, b]) m.dispose();
  wrong.dispose();
  extra.dispose();
});

test("loadStateDict copies in place: an optimizer made before loading updates the loaded tensors", () => {
  const src = new Linear(3, 2), dst = new Linear(3, 2);
  const before = dst.parameters();
  const opt = new SGD(dst.parameters(), { lr: 0.5 });
  dst.loadStateDict(src.stateDict());
  assert.ok(dst.parameters().every((p, i) => p === before[i]), "the same tensor objects");
  assert.ok(dst.parameters().every((p) => p.requiresGrad && p.isLeaf), "still trainable leaves");
  for (const p of dst.parameters()) p.grad = T.onesLike(p);
  opt.step();
  const [w0, b0] = src.parameters().map((p) => p.toArray());
  assertClose(dst.weight.toArray(), w0.map((v) => v - 0.5));
  assertClose(dst.bias!.toArray(), b0.map((v) => v - 0.5));
  // and the source was copied from, not aliased
  assert.deepEqual(src.weight.toArray(), w0);
  src.dispose();
  dst.dispose();
});

test("train() and eval() reach every module; Dropout and BatchNorm3d behave accordingly", () => {
  const net = new UNet({ features: [4, 8], strides: [1, 2], kernelSizes: [3, 3], norm: "batch", deepSupervision: true });
  net.eval();
  assert.ok(net.namedModules().every(([, m]) => !m.training));
  net.train();
  assert.ok(net.namedModules().length > 10 && net.namedModules().every(([, m]) => m.training));
  net.dispose();

  T.tidy(() => {
    const drop = new Dropout(0.5);
    const x = T.ones([4000]);
    const y = drop.forward(x).toArray();
    const zeros = y.filter((v) => v === 0).length;
    assert.ok(y.every((v) => v === 0 || v === 2), "kept values are scaled by 1 / (1 − p)");
    assert.ok(zeros > 1800 && zeros < 2200, `about half dropped, got ${zeros} of 4000`);
    drop.eval();
    assert.deepEqual(drop.forward(x).toArray(), x.toArray());
  });

  // BatchNorm3d in training: normalise with the batch statistics and update the running ones
  // (momentum 0.1, unbiased variance); in eval: normalise with the running statistics.
  const bn = new BatchNorm3d(2, { momentum: 0.1, eps: 1e-5 });
  T.tidy(() => {
    T.noGrad(() => {
      bn.weight.copy_(T.tensor([2, 0.5]));
      bn.bias.copy_(T.tensor([1, -1]));
    });
    const shape = [3, 2, 2, 2, 1];
    const x = randomTensor(shape, 7, { dtype: "float32", lo: -2, hi: 3 });
    const xv = x.toArray();
    const chan = build(shape, ([, c]) => c);
    const stats = [0, 1].map((c) => {
      const vals = xv.filter((_, i) => chan[i] === c);
      const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
      const ss = vals.reduce((a, b) => a + (b - mean) ** 2, 0);
      return { mean, biased: ss / vals.length, unbiased: ss / (vals.length - 1) };
    });
    const w = [2, 0.5], b = [1, -1];
    const normalise = (mean: number[], variance: number[]) =>
      xv.map((v, i) => ((v - mean[chan[i]]) / Math.sqrt(variance[chan[i]] + 1e-5)) * w[chan[i]] + b[chan[i]]);
    assertTensor(bn.forward(x), shape, normalise(stats.map((s) => s.mean), stats.map((s) => s.biased)), { rtol: 1e-4, atol: 1e-5 });
    const rm = stats.map((s) => 0.1 * s.mean);
    const rv = stats.map((s) => 0.9 + 0.1 * s.unbiased);
    assertClose(bn.runningMean.toArray(), rm, { rtol: 1e-5 });
    assertClose(bn.runningVar.toArray(), rv, { rtol: 1e-5 });
    assert.equal(bn.numBatchesTracked.item(), 1);
    bn.eval();
    assertTensor(bn.forward(x), shape, normalise(rm, rv), { rtol: 1e-4, atol: 1e-5 });
    assert.equal(bn.numBatchesTracked.item(), 1, "eval does not count batches");
    assertClose(bn.runningMean.toArray(), rm, { rtol: 1e-5, msg: "eval does not update statistics" });
  });
  bn.dispose();
});

test("each layer's forward equals its functional op or a JS reference", () => {
  T.tidy(() => {
    const x = randomTensor([2, 4, 5, 6, 7], 1);
    const conv = new Conv3d(4, 6, [3, 1, 3], { stride: [1, 2, 1], padding: [1, 0, 2], dilation: [1, 1, 2], groups: 2 });
    assertClose(
      conv.forward(x).toArray(),
      T.conv3d(x, conv.weight, conv.bias, { stride: [1, 2, 1], padding: [1, 0, 2], dilation: [1, 1, 2], groups: 2 }).toArray(),
    );
    assert.equal(conv.weight.shape[1], 2, "grouped conv weight is [out, in / groups, ...]");
    const up = new ConvTranspose3d(4, 3, 2, { stride: 2 });
    const yu = up.forward(x);
    assert.deepEqual(yu.shape, [2, 3, 10, 12, 14]);
    assertClose(yu.toArray(), T.convTranspose3d(x, up.weight, up.bias, { stride: 2 }).toArray());

    const lin = new Linear(7, 3);
    const wl = lin.weight.toArray(), bl = lin.bias!.toArray(), xl = x.toArray();
    // y[..., o] = Σ_i x[..., i] · W[o, i] + b[o]
    const rows = xl.length / 7;
    const expected: number[] = [];
    for (let r = 0; r < rows; r++) for (let o = 0; o < 3; o++) {
      let s = bl[o];
      for (let i = 0; i < 7; i++) s += xl[r * 7 + i] * wl[o * 7 + i];
      expected.push(s);
    }
    assertTensor(lin.forward(x), [2, 4, 5, 6, 3], expected, { rtol: 1e-5, atol: 1e-6 });
    assert.deepEqual(new Linear(7, 3, { bias: false }).namedParameters().map(([k]) => k), ["weight"]);

    const inorm = new InstanceNorm3d(4);
    T.noGrad(() => inorm.weight!.copy_(T.tensor([1, 2, 3, 4])));
    assertClose(inorm.forward(x).toArray(), T.instanceNorm(x, inorm.weight, inorm.bias).toArray());
    const gn = new GroupNorm(2, 4);
    assertClose(gn.forward(x).toArray(), T.groupNorm(x, 2, gn.weight, gn.bias).toArray());
    const ln = new LayerNorm([6, 7]);
    assertClose(ln.forward(x).toArray(), T.layerNorm(x, [6, 7], ln.weight, ln.bias).toArray());
    assert.throws(() => new GroupNorm(3, 4), /4 channels are not divisible into 3 groups/);
    assert.throws(() => new Conv3d(3, 4, 3, { groups: 2 }), /not divisible by groups 2/);

    const xv = x.toArray();
    assertClose(new LeakyReLU(0.2).forward(x).toArray(), xv.map((v) => (v > 0 ? v : 0.2 * v)));
    assertClose(new ReLU().forward(x).toArray(), xv.map((v) => Math.max(v, 0)));
    assertClose(new SiLU().forward(x).toArray(), xv.map((v) => v / (1 + Math.exp(-v))));
    assertClose(new GELU().forward(x).toArray(), T.gelu(x).toArray());
    assertClose(new AvgPool3d(2).forward(x).toArray(), T.avgPool3d(x, 2, { stride: 2 }).toArray());
    assert.equal(new Identity().forward(x), x);
    // in-place activations overwrite their input and return it
    const xc = x.clone();
    assert.equal(new LeakyReLU(0.2, true).forward(xc), xc);
    assertClose(xc.toArray(), xv.map((v) => (v > 0 ? v : 0.2 * v)));
  });
});

test("Conv3d padding 'same' keeps the spatial shape (anisotropic kernels, dilation)", () => {
  T.tidy(() => {
    const x = T.zeros([1, 2, 5, 6, 7]);
    for (const [kernel, dilation] of [[3, 1], [[1, 3, 5], 1], [[3, 5, 1], [2, 1, 3]]] as const) {
      const c = new Conv3d(2, 3, kernel as never, { padding: "same", dilation: dilation as never });
      assert.deepEqual(c.forward(x).shape, [1, 3, 5, 6, 7], `kernel ${JSON.stringify(kernel)} dilation ${JSON.stringify(dilation)}`);
      c.dispose();
    }
    const c = new Conv3d(2, 3, [1, 3, 5], { padding: "same", dilation: [1, 1, 2] });
    assert.deepEqual(c.padding, [0, 1, 4]);
    c.dispose();
  });
});

test("fans and kaimingNormal_ follow torch.nn.init", () => {
  T.tidy(() => {
    assert.deepEqual(fans(T.empty([8, 4, 3, 3, 3])), { fanIn: 108, fanOut: 216 });
    assert.deepEqual(fans(T.empty([5, 3])), { fanIn: 3, fanOut: 5 });
    assert.deepEqual(fans(T.empty([4, 6, 2, 2, 2])), { fanIn: 48, fanOut: 32 }); // a ConvTranspose3d weight
    assert.throws(() => fans(T.empty([5])), /at least 2 dimensions, got \[5\]/);

    // 256 · 64 · 27 = 442,368 draws: the sample std is within ~0.2 % of the true one (5 σ ≈ 0.5 %).
    for (const [a, mode] of [[0.01, "fanIn"], [0, "fanIn"], [Math.sqrt(5), "fanOut"]] as const) {
      const w = T.empty([256, 64, 3, 3, 3]);
      assert.equal(kaimingNormal_(w, a, mode), w);
      const fan = mode === "fanIn" ? 64 * 27 : 256 * 27;
      const std = Math.sqrt(2 / (1 + a * a)) / Math.sqrt(fan);
      const sampleStd = w.std().item(), sampleMean = w.mean().item();
      assert.ok(Math.abs(sampleStd / std - 1) < 0.01, `a=${a} ${mode}: std ${sampleStd}, expected ${std}`);
      assert.ok(Math.abs(sampleMean) < 5 * std / Math.sqrt(w.numel), `a=${a}: mean ${sampleMean}`);
      assert.equal(w.requiresGrad, false, "init runs without autograd");
    }
  });
});

test("initNnUNet: Kaiming weights (a = 0.01) and zero biases; 'torch' init keeps PyTorch's uniform defaults", () => {
  const net = new UNet({ features: [16, 32], strides: [1, 2], kernelSizes: [3, 3] });
  const w = net.enc.items[1] as Sequential;
  const conv = w.layers[3] as Conv3d; // 32 → 32, fan_in 864
  const std = conv.weight.std().item();
  const expected = Math.sqrt(2 / (1 + 1e-4)) / Math.sqrt(32 * 27);
  assert.ok(Math.abs(std / expected - 1) < 0.03, `std ${std} vs ${expected}`);
  assert.ok(conv.bias!.toArray().every((v) => v === 0));
  assert.ok(net.up.items.every((u) => (u as ConvTranspose3d).bias!.toArray().every((v) => v === 0)));
  net.dispose();
  const torchInit = new UNet({ features: [16, 32], strides: [1, 2], kernelSizes: [3, 3], init: "torch" });
  const c = (torchInit.enc.items[1] as Sequential).layers[3] as Conv3d;
  const bound = 1 / Math.sqrt(32 * 27);
  const wv = c.weight.toArray();
  assert.ok(wv.every((v) => Math.abs(v) <= bound), "uniform within ±1/sqrt(fan_in)");
  assert.ok(Math.max(...wv.map(Math.abs)) > 0.95 * bound);
  torchInit.dispose();
});

/** Shapes of a network's output (a tensor, or the deep-supervision list). */
function outShapes(net: Module, x: T.Tensor): number[][] {
  return T.tidy(() => {
    const out = net.forward(x);
    return (Array.isArray(out) ? out : [out]).map((t) => t.shape);
  });
}

test("UNet output shapes: plain, deep supervision (train only), anisotropic kernels and strides", () => {
  const x = T.randn([2, 1, 16, 16, 16]);
  const plain = new UNet({ features: [4, 8, 16], strides: [1, 2, 2], kernelSizes: [3, 3, 3], numClasses: 3 });
  assert.deepEqual(outShapes(plain, x), [[2, 3, 16, 16, 16]]);
  plain.dispose();
  const ds = new UNet({ features: [4, 8, 16], strides: [1, 2, 2], kernelSizes: [3, 3, 3], numClasses: 3, deepSupervision: true });
  assert.deepEqual(outShapes(ds, x), [[2, 3, 16, 16, 16], [2, 3, 8, 8, 8]]);
  assert.deepEqual(keysOf(ds).filter((k) => k.startsWith("ds.")), ["ds.0.weight", "ds.0.bias"]);
  ds.eval();
  assert.deepEqual(outShapes(ds, x), [[2, 3, 16, 16, 16]], "eval gives the full-resolution logits only");
  ds.dispose();
  x.dispose();

  // light-sheet anisotropy: no downsampling along z in the first two stages, in-plane kernels there
  const xa = T.randn([1, 2, 4, 16, 16]);
  const aniso = new UNet({
    inChannels: 2, features: [4, 8, 8, 16], strides: [1, [1, 2, 2], [1, 2, 2], 2], kernelSizes: [[1, 3, 3], [1, 3, 3], 3, 3], deepSupervision: true,
  });
  assert.deepEqual(outShapes(aniso, xa), [[1, 2, 4, 16, 16], [1, 2, 4, 8, 8], [1, 2, 4, 4, 4]]);
  assert.deepEqual(shapesOf(aniso)["enc.0.0.weight"], [4, 2, 1, 3, 3]);
  assert.deepEqual(shapesOf(aniso)["up.2.weight"], [8, 4, 1, 2, 2]); // the last up-convolution undoes stride [1, 2, 2]
  assert.throws(() => new UNet({ features: [4, 8], strides: [1], kernelSizes: [3, 3] }), /strides \(1\)/);
  assert.throws(() => new UNet({ features: [4], strides: [1], kernelSizes: [3] }), /at least 2 stages/);
  aniso.dispose();
  xa.dispose();
});

test("ResEncUNet output shapes, BasicBlockD shortcut keys, anisotropic strides", () => {
  const x = T.randn([1, 1, 8, 16, 16]);
  const cfg = { features: [4, 8, 16], strides: [1, [1, 2, 2], 2] as never, kernelSizes: [[1, 3, 3], 3, 3] as never, blocksPerStage: [1, 2, 2] };
  const net = new ResEncUNet(cfg);
  assert.deepEqual(outShapes(net, x), [[1, 2, 8, 16, 16]]);
  const keys = keysOf(net);
  assert.deepEqual(keys.slice(0, 4), ["encoder.stem.0.weight", "encoder.stem.0.bias", "encoder.stem.1.weight", "encoder.stem.1.bias"]);
  // the first block of a strided stage average-pools, projects (1×1×1 conv, no bias) and normalises
  assert.ok(keys.includes("encoder.stages.1.0.skip.1.weight") && keys.includes("encoder.stages.1.0.skip.2.bias"));
  assert.ok(!keys.includes("encoder.stages.1.0.skip.1.bias"));
  assert.ok(!keys.some((k) => k.startsWith("encoder.stages.0.0.skip")), "stage 0 keeps channels and resolution: identity shortcut");
  assert.ok(!keys.some((k) => k.startsWith("encoder.stages.1.1.skip")), "later blocks: identity shortcut");
  assert.deepEqual(shapesOf(net)["encoder.stages.1.0.conv1.weight"], [8, 4, 3, 3, 3]);
  net.dispose();
  const ds = new ResEncUNet({ ...cfg, deepSupervision: true });
  assert.deepEqual(outShapes(ds, x), [[1, 2, 8, 16, 16], [1, 2, 8, 8, 8]]);
  ds.eval();
  assert.deepEqual(outShapes(ds, x), [[1, 2, 8, 16, 16]]);
  ds.dispose();
  x.dispose();
  assert.throws(() => new ResEncUNet({ features: [4, 8], strides: [1, 2], kernelSizes: [3, 3], blocksPerStage: [1] }), /one entry per stage \(2\)/);
});

test("keyGroups partition the keys: stem ⊂ encoder, encoder ∪ decoder = all, disjoint", () => {
  const nets = [
    new UNet({ features: [4, 8, 16], strides: [1, 2, 2], kernelSizes: [3, 3, 3], deepSupervision: true }),
    new ResEncUNet({ features: [4, 8, 16], strides: [1, 2, 2], kernelSizes: [3, 3, 3], blocksPerStage: [1, 1, 1], deepSupervision: true }),
  ];
  for (const net of nets) {
    const keys = keysOf(net);
    const g = net.keyGroups();
    assert.ok(g.stem.length > 0 && g.encoder.length > g.stem.length && g.decoder.length > 0);
    assert.ok(g.stem.every((k) => g.encoder.includes(k)), "the stem is part of the encoder");
    assert.ok(g.encoder.every((k) => !g.decoder.includes(k)), "encoder and decoder are disjoint");
    assert.deepEqual([...g.encoder, ...g.decoder].sort(), [...keys].sort());
    assert.ok(g.decoder.includes("head.weight") && g.decoder.includes("ds.0.weight") && g.decoder.includes("up.0.weight"));
    net.dispose();
  }
  const [u, r] = [
    new UNet({ features: [4, 8], strides: [1, 2], kernelSizes: [3, 3] }),
    new ResEncUNet({ features: [4, 8], strides: [1, 2], kernelSizes: [3, 3], blocksPerStage: [1, 1] }),
  ];
  assert.deepEqual(u.keyGroups().stem, ["enc.0.0.weight", "enc.0.0.bias", "enc.0.1.weight", "enc.0.1.bias", "enc.0.3.weight", "enc.0.3.bias", "enc.0.4.weight", "enc.0.4.bias"]);
  assert.deepEqual(r.keyGroups().stem, ["encoder.stem.0.weight", "encoder.stem.0.bias", "encoder.stem.1.weight", "encoder.stem.1.bias"]);
  u.dispose();
  r.dispose();
});

test("buildNetwork builds either architecture from its config and names an unknown one", () => {
  const u = buildNetwork({ arch: "unet", features: [4, 8], strides: [1, 2], kernelSizes: [3, 3] });
  assert.ok(u instanceof UNet);
  assert.equal(u.config.arch, "unet");
  // a network rebuilt from its saved config has the same keys and shapes
  const again = buildNetwork(JSON.parse(JSON.stringify(u.config)));
  assert.deepEqual(shapesOf(again), shapesOf(u));
  const r = buildNetwork({ arch: "resenc", features: [4, 8], strides: [1, 2], kernelSizes: [3, 3], blocksPerStage: [1, 1] });
  assert.ok(r instanceof ResEncUNet);
  assert.throws(() => buildNetwork({ arch: "vnet" } as never), { name: "Error", message: "unknown network architecture 'vnet' (expected unet, resenc, unetr, swinunetr)" });
  for (const n of [u, again, r]) n.dispose();
});
