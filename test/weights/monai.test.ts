// --format monai against the MONAI parity fixtures (fixtures/nn/make_transformer_parity.py: MONAI's own UNETR and
// SwinUNETR in PyTorch 1.13, weights from a formula): a MONAI-style .pth of those weights (a bare state dict, under
// state_dict with DataParallel's "module.", under net) imports with --format monai, and the imported model's forward
// equals MONAI's output (1e-4); export gives every tensor back bit for bit in MONAI's key order; pre-1.4 UNETRs
// without the cross-attention keys import; the self-supervised Swin encoder maps onto swinViT.*; shapes that do
// not fit are refused, naming the key.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { SwinUNETR, UNETR, buildNetwork } from "../../src/nn/index.ts";
import { finetune } from "../../src/seg/finetune.ts";
import { loadModel, networkFromCheckpoint, transferWeights } from "../../src/seg/model.ts";
import { predictPaths } from "../../src/seg/predict.ts";
import { synthDataset } from "../../src/synth/index.ts";
import * as T from "../../src/torch/index.ts";
import { PyDict } from "../../src/torch/pickle.ts";
import { PthWriter, readPth, stateDictOf } from "../../src/torch/pth.ts";
import { run as importCli } from "../../src/cli/import-weights.ts";
import { exportWeights, importWeights, type ImportReport } from "../../src/weights/weights.ts";
import { type TransformerFixture, formula, loadFixture, maxErr } from "../nn/transformer_fixtures.ts";

T.setNumThreads(1);
const dir = mkdtempSync(join(tmpdir(), "lsmseg-monai-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * MONAI's state dict of a fixture: the formula weights, and the buffers (relative_position_index) as lsmseg computes
 * them (the parity test checks them against MONAI's).
 */
function monaiStateDict(fx: TransformerFixture, build: () => UNETR | SwinUNETR): [string, T.Tensor][] {
  const net = build();
  const own = net.stateDict();
  const out = fx.keys.map((k, j): [string, T.Tensor] => [k.key, k.buffer ? own.get(k.key)!.clone() : formula(k.shape, j, k.base!, k.scale!)]);
  net.dispose();
  return out;
}

function writePth(file: string, sd: [string, T.Tensor][], wrap?: string, prefix = ""): void {
  const w = new PthWriter();
  const dict = w.stateDict(sd.map(([k, t]) => [prefix + k, t]));
  w.save(file, wrap ? new PyDict(false, [[wrap, dict], ["epoch", 7n]]) : dict);
}

const silently = async (f: () => Promise<number>): Promise<number> => {
  const log = console.log;
  console.log = () => {};
  try {
    return await f();
  } finally {
    console.log = log;
  }
};

/** Every tensor of a written export equals the source's, in MONAI's key order (bit for bit). */
function assertSameTensors(file: string, sd: [string, T.Tensor][]): void {
  if (file.endsWith(".safetensors")) {
    const st = T.loadSafetensors(file);
    assert.deepEqual([...st.tensors.keys()], sd.map(([k]) => k));
    for (const [k, t] of sd) assert.ok(Buffer.from(st.tensors.get(k)!.bytes()).equals(Buffer.from(t.bytes())), `${k} differs`);
    for (const t of st.tensors.values()) t.dispose();
    return;
  }
  const back = readPth(file);
  const got = stateDictOf(back.root, "export");
  assert.deepEqual([...got.keys()], sd.map(([k]) => k));
  for (const [k, t] of sd) {
    const b = back.tensor(got.get(k)!);
    assert.deepEqual([b.dtype, b.shape], [t.dtype, t.shape], k);
    assert.ok(Buffer.from(b.bytes()).equals(Buffer.from(t.bytes())), `${k} differs`);
    b.dispose();
  }
}

const UNETR_CASES = [
  { proj: "perceptron", wrap: undefined, prefix: "" },
  { proj: "conv", wrap: "state_dict", prefix: "module." },
] as const;

for (const { proj, wrap, prefix } of UNETR_CASES) {
  test(`UNETR (${proj}${wrap ? `, under ${wrap}` : ""}${prefix ? `, ${prefix} prefixes` : ""}): import --format monai matches MONAI's output; export gives it back bit for bit`, async (t) => {
    const fx = loadFixture(`unetr_${proj}_parity.safetensors`);
    const c = fx.config as { img_size: number[]; num_heads: number; feature_size: number; hidden_size: number; out_channels: number };
    const sd = monaiStateDict(fx, () => new UNETR({
      imgSize: c.img_size as [number, number, number], featureSize: c.feature_size, hiddenSize: c.hidden_size, mlpDim: 48, numHeads: c.num_heads,
      projType: proj, numClasses: c.out_channels,
    }));
    const src = join(dir, `unetr-${proj}.pth`);
    writePth(src, sd, wrap, prefix);
    const out = join(dir, `unetr-${proj}`);
    // heads and the (non-cubic) img_size are what the shapes cannot say; the rest is inferred
    assert.equal(await silently(() => importCli([src, "--format", "monai", "--arch", "unetr", "--img-size", c.img_size.join(","), "--heads", String(c.num_heads), "--out", out])), 0);
    const model = loadModel(out);
    assert.ok(model.net instanceof UNETR);
    const cfg = model.net.config;
    assert.deepEqual(
      [cfg.featureSize, cfg.hiddenSize, cfg.mlpDim, cfg.numClasses, cfg.projType, cfg.qkvBias],
      [c.feature_size, c.hidden_size, 48, c.out_channels, proj, false],
    );
    assert.deepEqual(model.plan.patchSize, c.img_size);
    assert.equal(model.plan.normalization.scheme, "percentile-zscore");
    model.net.eval();
    const e = T.noGrad(() => T.tidy(() => maxErr(model.net.forward(fx.tensors.get("input")!) as T.Tensor, fx.tensors.get("output")!)));
    t.diagnostic(`UNETR ${proj}: max |lsmseg − MONAI| ${e.abs.toExponential(2)} (max |output| ${e.ref.toFixed(3)})`);
    assert.ok(e.abs < 1e-4 * Math.max(1, e.ref), `max abs error ${e.abs}`);
    model.net.dispose();
    for (const ext of [".pth", ".safetensors"]) {
      const file = join(dir, `unetr-${proj}-export${ext}`);
      exportWeights(out, "monai", file);
      assertSameTensors(file, sd);
    }
    for (const [, x] of sd) x.dispose();
    for (const x of fx.tensors.values()) x.dispose();
  });
}

test("SwinUNETR (under net): import --format monai infers depths, heads and v2, matches MONAI's output; export bit for bit", async (t) => {
  const fx = loadFixture("swinunetr_parity.safetensors");
  const build = () => new SwinUNETR({ featureSize: 12, windowSize: [3, 4, 3] });
  const sd = monaiStateDict(fx, build);
  const src = join(dir, "swin.pt");
  writePth(src, sd, "net");
  const out = join(dir, "swin");
  assert.equal(await silently(() => importCli([src, "--format", "monai", "--window-size", "3,4,3", "--img-size", "32,64,64", "--out", out])), 0);
  const model = loadModel(out);
  assert.ok(model.net instanceof SwinUNETR);
  const cfg = model.net.config;
  assert.deepEqual(
    [cfg.featureSize, cfg.depths, cfg.numHeads, cfg.windowSize, cfg.useV2, cfg.qkvBias, cfg.mlpRatio],
    [12, [2, 2, 2, 2], [3, 6, 12, 24], [3, 4, 3], true, true, 4],
  );
  assert.deepEqual(model.plan.patchSize, [32, 64, 64]);
  model.net.eval();
  const e = T.noGrad(() => T.tidy(() => {
    const y = model.net.forward(formula([1, 1, 32, 64, 64], -1, 0, 2)) as T.Tensor;
    return maxErr(y.slice(2, 0, undefined, 2).slice(3, 0, undefined, 2).slice(4, 0, undefined, 2), fx.tensors.get("output_stride2")!);
  }));
  t.diagnostic(`SwinUNETR: max |lsmseg − MONAI| ${e.abs.toExponential(2)} (max |output| ${e.ref.toFixed(3)})`);
  assert.ok(e.abs < 1e-4 * Math.max(1, e.ref), `max abs error ${e.abs}`);
  model.net.dispose();
  const file = join(dir, "swin-export.pth");
  exportWeights(out, "monai", file);
  assertSameTensors(file, sd);

  // the self-supervised encoder (model_swinvit.pt: {"state_dict": {"module.patch_embed…", "module.layers1.0…mlp.fc1…"}}, v1, plus its heads)
  const ssl = sd.filter(([k]) => k.startsWith("swinViT.") && !/^swinViT\.layers\dc\./.test(k)).map(([k, x]): [string, T.Tensor] => [k.slice(8).replace(/\.mlp\.linear([12])\./, ".mlp.fc$1."), x]);
  const head = T.zeros([4, 8]);
  const sslFile = join(dir, "model_swinvit.pt");
  writePth(sslFile, [...ssl, ["rotation_head.weight", head]], "state_dict", "module.");
  const r = importWeights(sslFile, "monai", join(dir, "ssl"), { arch: "swinunetr", monai: { windowSize: [3, 4, 3] } });
  assert.deepEqual([r.loaded, r.unmapped], [ssl.length, ["module.rotation_head.weight"]]);
  assert.equal((r.network as { useV2: boolean }).useV2, false);
  assert.throws(() => loadModel(join(dir, "ssl")), /carries no plan/);
  const net = buildNetwork(networkFromCheckpoint(join(dir, "ssl"), 3, false)!);
  const tr = transferWeights(net, join(dir, "ssl"));
  assert.equal(tr.transferred.length, ssl.length);
  const sdNet = net.stateDict();
  for (const [k, x] of ssl) assert.ok(Buffer.from(sdNet.get(`swinViT.${k.replace(/\.mlp\.fc([12])\./, ".mlp.linear$1.")}`)!.bytes()).equals(Buffer.from(x.bytes())), k);
  net.dispose();
  head.dispose();
  for (const [, x] of sd) x.dispose();
  for (const x of fx.tensors.values()) x.dispose();
});

test("monai: a pre-1.4 UNETR without cross-attention keys imports (reported); other missing keys and other shapes are refused, naming the key", () => {
  const fx = loadFixture("unetr_conv_parity.safetensors");
  const sd = monaiStateDict(fx, () => new UNETR({ imgSize: [16, 16, 32], featureSize: 4, hiddenSize: 24, mlpDim: 48, numHeads: 4, projType: "conv" }));
  const old = sd.filter(([k]) => !/\.(norm_cross_attn|cross_attn)\./.test(k));
  const oldFile = join(dir, "unetr-old.pth");
  writePth(oldFile, old);
  const o = { arch: "unetr" as const, monai: { imgSize: [16, 16, 32] as [number, number, number], numHeads: [4] } };
  const r: ImportReport = importWeights(oldFile, "monai", join(dir, "old"), o);
  assert.equal(r.untouched.length, sd.length - old.length);
  assert.ok(r.untouched.every((k) => /^vit\.blocks\.\d+\.(norm_cross_attn|cross_attn)\./.test(k)));
  assert.ok(r.notes.some((n) => /MONAI < 1\.4/.test(n)));
  // a missing weight that is not cross-attention
  const holed = join(dir, "unetr-holed.pth");
  writePth(holed, sd.filter(([k]) => k !== "decoder2.conv_block.conv1.conv.weight"));
  assert.throws(() => importWeights(holed, "monai", join(dir, "holed"), o), /1 tensors of lsmseg's network have no source: decoder2\.conv_block\.conv1\.conv\.weight/);
  // a flag that disagrees with the tensors
  const full = join(dir, "unetr-full.pth");
  writePth(full, sd);
  assert.throws(() => importWeights(full, "monai", join(dir, "wrong"), { ...o, monai: { ...o.monai, featureSize: 8 } }), /unetr-full\.pth: shapes do not match.*encoder1\.layer\.conv1\.conv\.weight is \[4,1,3,3,3\], lsmseg's encoder1\.layer\.conv1\.conv\.weight is \[8,1,3,3,3\]/);
  assert.throws(() => importWeights(full, "monai", join(dir, "wrong2"), { arch: "unetr" }), /2 position embeddings are not a cube of patches: pass --img-size/);
  assert.throws(() => importWeights(full, "monai", join(dir, "wrong3"), { arch: "swinunetr" }), /no swinViT\.patch_embed\.proj\.weight: not a MONAI SwinUNETR state dict/);
  // export refuses a U-Net
  const unet = join(dir, "unet");
  importWeights("fixtures/weights/resenc_checkpoint_final.pth", "nnunet", unet);
  assert.throws(() => exportWeights(unet, "monai", join(dir, "unet.pth")), /architecture 'resenc' is not a MONAI network/);
  for (const [, x] of sd) x.dispose();
  for (const x of fx.tensors.values()) x.dispose();
});

test("an imported MONAI UNETR initialises finetune --init (the patch follows its img_size) and the result predicts", async () => {
  const fx = loadFixture("unetr_conv_parity.safetensors");
  const sd = monaiStateDict(fx, () => new UNETR({ imgSize: [16, 16, 32], featureSize: 4, hiddenSize: 24, mlpDim: 48, numHeads: 4, projType: "conv" }));
  const src = join(dir, "unetr-init.pth");
  writePth(src, sd, "state_dict");
  const init = join(dir, "unetr-init");
  importWeights(src, "monai", init, { arch: "unetr", monai: { imgSize: [16, 16, 32], numHeads: [4] } });
  const data = join(dir, "data");
  await synthDataset(data, { preset: "tiny", seed: 3, quiet: true });
  const out = join(dir, "unetr-ft");
  const res = await finetune({ data, out, fold: 0, epochs: 1, stepsPerEpoch: 1, workers: 0, precision: "fp32", quiet: true, optimizer: "adamw", lr: 1e-4, init, plan: { batchSize: 1 } });
  assert.equal(res.epochs.length, 1);
  const model = loadModel(out);
  assert.ok(model.net instanceof UNETR);
  assert.deepEqual(model.plan.patchSize, [16, 16, 32]);
  const images = join(data, "test", "images");
  const written = await predictPaths(model, join(images, readdirSync(images).sort()[0]), join(out, "pred") + "/", { mirror: false, precision: "fp32" });
  assert.equal(written.length, 1);
  model.net.dispose();
  await assert.rejects(finetune({ data, out: join(dir, "unetr-ft2"), fold: 0, epochs: 1, stepsPerEpoch: 1, workers: 0, quiet: true, init, plan: { patchSize: [32, 32, 32] } }), /--patch 32x32x32: the --init UNETR was built for img_size 16x16x32/);
  for (const [, x] of sd) x.dispose();
  for (const x of fx.tensors.values()) x.dispose();
});
