// UNETR and SwinUNETR against MONAI's own classes run in PyTorch 1.13 (fixtures/nn/make_transformer_parity.py):
// the state-dict keys are MONAI's, and with the same weights the forward pass gives the same output (fp32).
import assert from "node:assert/strict";
import { test } from "node:test";
import * as T from "../../src/torch/index.ts";
import { SwinUNETR, type SwinUNETRConfig, UNETR } from "../../src/nn/index.ts";
import { formula, loadFixture, loadFormulaWeights, maxErr } from "./transformer_fixtures.ts";

for (const proj of ["perceptron", "conv"] as const) {
  test(`UNETR (${proj} patch embedding) has MONAI's keys and matches MONAI's output to 1e-4`, () => {
    const fx = loadFixture(`unetr_${proj}_parity.safetensors`);
    const c = fx.config as Record<string, number & number[]>;
    const net = new UNETR({
      inChannels: c.in_channels, numClasses: c.out_channels, imgSize: c.img_size as unknown as [number, number, number], featureSize: c.feature_size,
      hiddenSize: c.hidden_size, mlpDim: c.mlp_dim, numHeads: c.num_heads, projType: proj, qkvBias: Boolean(c.qkv_bias),
    });
    loadFormulaWeights(net, fx.keys);
    net.eval();
    const e = T.noGrad(() => T.tidy(() => maxErr(net.forward(fx.tensors.get("input")!), fx.tensors.get("output")!)));
    console.log(`UNETR ${proj}: max abs error ${e.abs.toExponential(2)} (max |output| ${e.ref.toFixed(3)})`);
    assert.ok(e.abs < 1e-4 * Math.max(1, e.ref), `max abs error ${e.abs}`);
    net.dispose();
  });
}

test("SwinUNETR v2 has MONAI's keys and matches MONAI's output to 1e-4 (shifted, padded and shrunk windows)", () => {
  const fx = loadFixture("swinunetr_parity.safetensors");
  const c = fx.config as Record<string, number & number[] & string & boolean>;
  const net = new SwinUNETR({
    inChannels: c.in_channels, numClasses: c.out_channels, featureSize: c.feature_size, depths: c.depths as SwinUNETRConfig["depths"],
    numHeads: c.num_heads as SwinUNETRConfig["numHeads"], windowSize: c.window_size as SwinUNETRConfig["windowSize"], mlpRatio: c.mlp_ratio,
    qkvBias: c.qkv_bias, normalize: c.normalize, useV2: c.use_v2, downsample: c.downsample as SwinUNETRConfig["downsample"],
  });
  loadFormulaWeights(net, fx.keys);
  const rpi = net.stateDict().get("swinViT.layers1.0.blocks.0.attn.relative_position_index")!;
  assert.ok(rpi.allClose(fx.tensors.get("relative_position_index")!, 0, 0), "relative_position_index equals MONAI's");
  net.eval();
  const e = T.noGrad(() => T.tidy(() => {
    const out = net.forward(formula([1, 1, 32, 64, 64], -1, 0, 2));
    return maxErr(out.slice(2, 0, undefined, 2).slice(3, 0, undefined, 2).slice(4, 0, undefined, 2), fx.tensors.get("output_stride2")!);
  }));
  console.log(`SwinUNETR: max abs error ${e.abs.toExponential(2)} (max |output| ${e.ref.toFixed(3)})`);
  assert.ok(e.abs < 1e-4 * Math.max(1, e.ref), `max abs error ${e.abs}`);
  net.dispose();
});
