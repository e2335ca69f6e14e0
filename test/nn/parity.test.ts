// Parity with PyTorch: the anchor U-Net (../shared/anchors/unet_step.py, channels 4/8/16/32) with
// the same weights gives the same logits, loss, gradients and AdamW update as PyTorch 1.13 did
// (fixture made by fixtures/torch/make_unet_parity.py).
import assert from "node:assert/strict";
import { test } from "node:test";
import * as T from "../../src/torch/index.ts";
import { UNet, anchorUNetConfig } from "../../src/nn/index.ts";
import { AdamW } from "../../src/optim/index.ts";

const fixture = T.loadSafetensors(new URL("../../fixtures/torch/unet_parity.safetensors", import.meta.url).pathname).tensors;
const get = (k: string) => {
  const t = fixture.get(k);
  assert.ok(t, `fixture has ${k}`);
  return t;
};

/** max |a − b| / max |b|: the relative error of a whole tensor. */
function relErr(a: T.Tensor, b: T.Tensor): number {
  return T.tidy(() => a.sub(b).abs().max().item() / Math.max(b.abs().max().item(), 1e-12));
}

function anchorLoss(logits: T.Tensor, y: T.Tensor): T.Tensor {
  const prob = T.softmax(logits, 1).select(1, 1);
  const yf = y.float();
  const dice = T.ones([]).sub(prob.mul(yf).sum().mul(2).add(1).div(prob.sum().add(yf.sum()).add(1)));
  return T.crossEntropy(logits, y).add(dice);
}

test("the anchor U-Net matches PyTorch: logits, loss, gradients and one AdamW step (fp32, rel 1e-4)", () => {
  const net = new UNet(anchorUNetConfig({ features: [4, 8, 16, 32] }));
  const sd = new Map([...fixture].filter(([k]) => k.startsWith("param.")).map(([k, v]) => [k.slice(6), v]));
  const res = net.loadStateDict(sd);
  assert.equal(res.loaded.length, sd.size);
  assert.equal(net.numParameters(), 87954);
  const opt = new AdamW(net.parameters(), { lr: 1e-3 });

  T.tidy(() => {
    const logits = net.forward(get("input")) as T.Tensor;
    assert.ok(relErr(logits, get("logits")) < 1e-4, `logits rel err ${relErr(logits, get("logits"))}`);
    const loss = anchorLoss(logits, get("target"));
    assert.ok(Math.abs(loss.item() - get("loss").item()) / get("loss").item() < 1e-5, `loss ${loss.item()} vs ${get("loss").item()}`);
    opt.zeroGrad();
    loss.backward();
  });
  for (const [k, p] of net.namedParameters()) {
    const g = p.grad!;
    const e = relErr(g, get(`grad.${k}`));
    assert.ok(e < 1e-4, `gradient of ${k}: rel err ${e}`);
    g.dispose();
    // The first Adam step is g / (|g| + eps): for gradients near eps (1e-8, present in the deepest
    // stage) it amplifies float rounding, so the optimizer is checked on PyTorch's exact gradients.
    p.grad = get(`grad.${k}`).clone();
  }
  opt.step();
  for (const [k, p] of net.namedParameters()) {
    const e = relErr(p, get(`after.${k}`));
    assert.ok(e < 1e-4, `${k} after AdamW: rel err ${e}`);
  }
});
