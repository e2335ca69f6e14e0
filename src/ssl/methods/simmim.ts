// SimMIM (Xie et al., 2022, "SimMIM: A Simple Framework for Masked Image Modeling") for the transformer
// backbones: random blocks of maskPatch³ voxels are masked (60 % by default) by replacing their patch
// embeddings with one learned mask token before the transformer (so nothing of a masked block's voxels
// reaches the encoder), a one-layer head maps the encoder's features back to voxels, and the loss is
// the L1 distance on the masked voxels only. The head: UNETR — a linear map from each final token to
// its 16³ voxels (as SimMIM's ViT head); SwinUNETR — a 1×1×1 conv from the stride-16 stage output to
// 16³ voxels per position (SimMIM reads the last, stride-32 stage, but 32³ outputs per position is
// 32 768 channels; the last stage is therefore not trained by this loss). Only the encoder (vit.* or
// swinViT.*) is trained and transferred; mask token and head are saved under ssl.* for the record.
import type { Rng } from "../../data/rng.ts";
import { Conv3d, Linear } from "../../nn/layers.ts";
import { Module } from "../../nn/module.ts";
import { type SegNetwork, isTransformer } from "../../nn/networks.ts";
import { SwinUNETR } from "../../nn/swin_unetr.ts";
import type { UNETR } from "../../nn/unetr.ts";
import { truncNormal_ } from "../../nn/init.ts";
import { type Tensor, interpolate, tensor, tidy, zeros } from "../../torch/index.ts";
import type { SslMethod } from "../method.ts";
import { blockMask, upsampleMask } from "./mae.ts";

/** Mean absolute error over the voxels where mask = 1 (all channels): Σ m·|p − t| / Σ m / C, as SimMIM's loss. */
export function maskedL1(pred: Tensor, target: Tensor, mask: Tensor): Tensor {
  // pred, target: [B, C, D, H, W]; mask: [B, 1, D, H, W] of 0/1
  return tidy(() => pred.sub(target).abs().mul(mask).sum().div(mask.sum().mul(pred.shape[1]).clamp(1)));
}

/** Voxels of a patch grid back in place: [B, gD·gH·gW, p³] (or [B, p³, gD, gH, gW] with channelsFirst) to [B, 1, D, H, W]. */
function unpatchify(t: Tensor, grid: number[], p: number, channelsFirst: boolean): Tensor {
  const [gd, gh, gw] = grid;
  const b = t.shape[0];
  const cells = channelsFirst ? t.permute(0, 2, 3, 4, 1) : t; // [B, gD, gH, gW, p³] in memory order either way
  return cells.reshape(b, gd, gh, gw, p, p, p).permute(0, 1, 4, 2, 5, 3, 6).reshape(b, 1, gd * p, gh * p, gw * p);
}

/** The mask token and the prediction head of one run (keys ssl.mask_token, ssl.head.*). */
export class SimMIMHeads extends Module {
  readonly maskToken: Tensor;
  readonly head: Module;
  readonly outPatch: number;

  constructor(readonly net: UNETR | SwinUNETR, readonly maskPatch: number) {
    super();
    const swin = net instanceof SwinUNETR;
    const unit = swin ? 2 : 16;
    if (!(maskPatch > 0 && maskPatch % unit === 0)) throw new Error(`simmim: maskPatch ${maskPatch} must be a positive multiple of the ${swin ? "SwinUNETR" : "UNETR"} patch (${unit})`);
    const c = net.config;
    this.outPatch = 16;
    if (swin) {
      const f = (c as SwinUNETR["config"]).featureSize;
      this.maskToken = this.param("mask_token", truncNormal_(zeros([1, f, 1, 1, 1]), 0.02));
      this.head = this.child("head", new Conv3d(8 * f, this.outPatch ** 3, 1));
    } else {
      const hidden = (c as UNETR["config"]).hiddenSize;
      this.maskToken = this.param("mask_token", truncNormal_(zeros([1, 1, hidden]), 0.02));
      this.head = this.child("head", new Linear(hidden, this.outPatch ** 3));
    }
  }

  /**
   * The reconstruction [B, 1, D, H, W] of x with the cells of `cellMask` (0/1 on the grid x / maskPatch,
   * [B, 1, gD, gH, gW]) masked at the token level.
   */
  predict(x: Tensor, cellMask: Tensor): Tensor {
    // x: [B, 1, D, H, W]
    return tidy(() => {
      const size = x.shape.slice(2);
      if (this.net instanceof SwinUNETR) {
        const swin = this.net;
        const tokenMask = interpolate(cellMask, { size: size.map((s) => s / 2), mode: "nearest" });
        const outs = swin.swinViT.run(x, (t) => t.mul(tokenMask.neg().add(1)).add(this.maskToken.mul(tokenMask)));
        return unpatchify(this.head.forward(outs[3]) as Tensor, size.map((s) => s / 16), 16, true);
      }
      const grid = size.map((s) => s / 16);
      const tokenMask = interpolate(cellMask, { size: grid, mode: "nearest" }).reshape(x.shape[0], -1, 1);
      const { out } = this.net.vit.run(x, tokenMask, this.maskToken);
      return unpatchify(this.head.forward(out) as Tensor, grid, 16, false);
    });
  }

  forward(): Tensor {
    throw new Error("SimMIMHeads: call predict(x, cellMask)");
  }
}

const simmim: SslMethod = {
  name: "simmim",
  describe: "masked image modelling for UNETR / SwinUNETR (SimMIM): 60 % of 16³ blocks replaced by a learned mask token, L1 on masked voxels",
  views: 1,
  augment: null,
  trains: ["encoder"],
  defaults: { maskRatio: 0.6, maskPatch: 16 },
  create(net: SegNetwork, o: Record<string, number>) {
    if (!isTransformer(net)) throw new Error(`simmim: masks patch tokens, so it needs a transformer backbone (--arch unetr or swinunetr), not '${net.config.arch}'; for the CNNs use mae`);
    const heads = new SimMIMHeads(net, o.maskPatch);
    return {
      heads,
      loss(batch, rng: Rng) {
        // x: [B, 1, D, H, W]
        const [b, d, h, w] = batch.shape;
        const size = [d, h, w];
        if (size.some((s) => s % o.maskPatch !== 0)) throw new Error(`simmim: patch ${size.join("×")} is not divisible by maskPatch ${o.maskPatch}`);
        const grid = size.map((s) => s / o.maskPatch);
        const cells = blockMask(b, grid, o.maskRatio, rng);
        const cellMask = tensor(cells, [b, 1, ...grid]).to(batch.images.device);
        const mask = upsampleMask(cells, b, grid, size).to(batch.images.device);
        return maskedL1(heads.predict(batch.images, cellMask).float(), batch.images, mask);
      },
    };
  },
};

export default simmim;
