// SwinUNETR (Hatamizadeh et al., 2022, "Swin UNETR: Swin Transformers for Semantic Segmentation of Brain
// Tumors in MRI Images"; v2: He et al., 2023) as MONAI builds it (monai/networks/nets/swin_unetr.py; matched:
// MONAI commit d388d1c, June 2025, where img_size is gone and use_v2 adds a residual conv block before
// each Swin stage). A 2³ patch embedding, four stages of Swin blocks (window attention with a relative
// position bias; every second block shifts the windows by half a window, with the attention mask that
// keeps wrapped-around regions apart) each ending in patch merging, and a U-Net decoder over the
// layer-normalised stage outputs. Parameter names are MONAI's state-dict keys (swinViT.layers1.0.blocks.<i>.attn.*,
// swinViT.layers1c.0.layer.*, encoder1..4, encoder10, decoder1..5, out.conv.conv.*), and the computed
// relative_position_index buffers are in the state dict as in MONAI.
import { type Tensor, cat, layerNorm, pad, softmax, tensor, tidy, zeros } from "../torch/index.ts";
import { truncNormal_ } from "./init.ts";
import { Conv3d, LayerNorm, Linear, type Triple } from "./layers.ts";
import { MLPBlock, UnetOutBlock, UnetrBasicBlock, UnetrUpBlock } from "./monai_blocks.ts";
import { Module, ModuleList } from "./module.ts";
import { type KeyGroups, keyGroupsByPrefix } from "./unet.ts";

type Vec3 = [number, number, number];

export interface SwinUNETRConfig {
  arch: "swinunetr";
  inChannels: number;
  numClasses: number;
  /** Embedding channels (a multiple of 12); stage s has featureSize · 2^s. */
  featureSize: number;
  depths: [number, number, number, number];
  numHeads: [number, number, number, number];
  windowSize: Vec3;
  mlpRatio: number;
  qkvBias: boolean;
  /** Layer-normalise the stage outputs before the decoder (MONAI's normalize=True). */
  normalize: boolean;
  /** MONAI's use_v2: a residual conv block before each Swin stage. */
  useV2: boolean;
  /** "merging" (MONAI's default PatchMerging) or "mergingv2" (the itertools order of the 8 neighbours). */
  downsample: "merging" | "mergingv2";
  /** Descriptive, derived: channels at full, 1/2, ..., 1/32 resolution (the input must be a multiple of 32). */
  features: number[];
  strides: Triple[];
  deepSupervision: false;
}

export const SWIN_UNETR_DEFAULTS: SwinUNETRConfig = {
  arch: "swinunetr", inChannels: 1, numClasses: 2, featureSize: 24, depths: [2, 2, 2, 2], numHeads: [3, 6, 12, 24], windowSize: [7, 7, 7],
  mlpRatio: 4, qkvBias: true, normalize: true, useV2: true, downsample: "merging", features: [], strides: [], deepSupervision: false,
};

export function swinUnetrConfig(over: Partial<SwinUNETRConfig> = {}): SwinUNETRConfig {
  const cfg = { ...SWIN_UNETR_DEFAULTS, ...over, arch: "swinunetr" as const };
  if (cfg.featureSize % 12 !== 0) throw new Error(`SwinUNETR: featureSize ${cfg.featureSize} must be divisible by 12`);
  cfg.numHeads.forEach((h, s) => {
    if ((cfg.featureSize * 2 ** s) % h !== 0) throw new Error(`SwinUNETR: stage ${s + 1} has ${cfg.featureSize * 2 ** s} channels, not divisible by ${h} heads`);
  });
  const f = cfg.featureSize;
  return { ...cfg, features: [f, f, 2 * f, 4 * f, 8 * f, 16 * f], strides: [1, 2, 2, 2, 2, 2], deepSupervision: false };
}

/** The window and shift actually used on a feature map: an axis no longer than the window is one window, unshifted (get_window_size). */
function windowFor(size: number[], window: Vec3, shift: Vec3): { window: Vec3; shift: Vec3 } {
  return {
    window: window.map((w, a) => (size[a] <= w ? size[a] : w)) as Vec3,
    shift: shift.map((s, a) => (size[a] <= window[a] ? 0 : s)) as Vec3,
  };
}

/** x [B, D, H, W, C] → windows [B · nW, w0·w1·w2, C]. */
function windowPartition(x: Tensor, w: Vec3): Tensor {
  const [b, d, h, wd, c] = x.shape;
  return x.reshape(b, d / w[0], w[0], h / w[1], w[1], wd / w[2], w[2], c).permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, w[0] * w[1] * w[2], c);
}

/** windows [B · nW, w0, w1, w2, C] → x [B, D, H, W, C]. */
function windowReverse(windows: Tensor, w: Vec3, [b, d, h, wd]: number[]): Tensor {
  return windows.reshape(b, d / w[0], h / w[1], wd / w[2], w[0], w[1], w[2], -1).permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, wd, -1);
}

/** Python's slice(start, stop) on an axis of length n, as [from, to). */
function pySlice(start: number | null, stop: number | null, n: number): [number, number] {
  const norm = (i: number) => (i < 0 ? Math.max(0, n + i) : Math.min(i, n));
  const a = start === null ? 0 : norm(start);
  return [a, Math.max(a, stop === null ? n : norm(stop))];
}

/**
 * The shifted-window attention mask [nW, N, N] (0 within a region, −100 across regions) on a padded map of `dims`,
 * as MONAI's compute_mask: the regions are Python slices (−w:), (−w, −s), (−s:) per axis, with −0 meaning 0.
 */
export function computeMask(dims: Vec3, window: Vec3, shift: Vec3): Tensor {
  const [d, h, w] = dims;
  const img = new Float32Array(d * h * w);
  const regions = (a: number) => [pySlice(null, -window[a], dims[a]), pySlice(-window[a], -shift[a], dims[a]), pySlice(-shift[a], null, dims[a])];
  let cnt = 0;
  for (const [d0, d1] of regions(0)) for (const [h0, h1] of regions(1)) for (const [w0, w1] of regions(2)) {
    for (let z = d0; z < d1; z++) for (let y = h0; y < h1; y++) for (let x = w0; x < w1; x++) img[(z * h + y) * w + x] = cnt;
    cnt++;
  }
  return tidy(() => {
    const mw = windowPartition(tensor(img, [1, d, h, w, 1]), window).squeeze(-1);
    const diff = mw.unsqueeze(1).sub(mw.unsqueeze(2));
    return diff.ne(0).float().mul(-100);
  });
}

/** MONAI's relative_position_index for a window: index into the (2w0−1)(2w1−1)(2w2−1) bias table for every pair of positions. */
export function relativePositionIndex(w: Vec3): Tensor {
  const n = w[0] * w[1] * w[2];
  const coords: Vec3[] = [];
  for (let a = 0; a < w[0]; a++) for (let b = 0; b < w[1]; b++) for (let c = 0; c < w[2]; c++) coords.push([a, b, c]);
  const idx = new BigInt64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    const r = [0, 1, 2].map((k) => coords[i][k] - coords[j][k] + w[k] - 1);
    idx[i * n + j] = BigInt(r[0] * (2 * w[1] - 1) * (2 * w[2] - 1) + r[1] * (2 * w[2] - 1) + r[2]);
  }
  return tensor(idx, [n, n]);
}

/** Window multi-head self-attention with a learned relative position bias. */
export class WindowAttention extends Module {
  readonly relativePositionBiasTable: Tensor;
  readonly relativePositionIndex: Tensor;
  readonly qkv: Linear;
  readonly proj: Linear;
  constructor(readonly dim: number, readonly numHeads: number, window: Vec3, qkvBias: boolean) {
    super();
    const cells = (2 * window[0] - 1) * (2 * window[1] - 1) * (2 * window[2] - 1);
    this.relativePositionBiasTable = this.param("relative_position_bias_table", truncNormal_(zeros([cells, numHeads]), 0.02));
    this.relativePositionIndex = this.buffer("relative_position_index", relativePositionIndex(window));
    this.qkv = this.child("qkv", new Linear(dim, 3 * dim, { bias: qkvBias }));
    this.proj = this.child("proj", new Linear(dim, dim));
  }
  forward(x: Tensor, mask?: Tensor | null): Tensor {
    // x: [B·nW, N, C]; mask: [nW, N, N]
    return tidy(() => {
      const [b, n, c] = x.shape;
      const heads = this.numHeads;
      const [q, k, v] = this.qkv.forward(x).reshape(b, n, 3, heads, c / heads).permute(2, 0, 3, 1, 4).unbind(0);
      let attn = q.mul((c / heads) ** -0.5).matmul(k.transpose(-2, -1));
      // MONAI slices the full window's index to [:n, :n] when a small map shrinks the window.
      const index = this.relativePositionIndex.slice(0, 0, n).slice(1, 0, n).reshape(-1);
      const bias = this.relativePositionBiasTable.indexSelect(0, index).reshape(n, n, -1).permute(2, 0, 1);
      attn = attn.add(bias.unsqueeze(0));
      if (mask) {
        const nw = mask.shape[0];
        attn = attn.reshape(b / nw, nw, heads, n, n).add(mask.unsqueeze(1).unsqueeze(0)).reshape(-1, heads, n, n);
      }
      return this.proj.forward(softmax(attn, -1).matmul(v).transpose(1, 2).reshape(b, n, c));
    });
  }
}

export class SwinTransformerBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: WindowAttention;
  readonly norm2: LayerNorm;
  readonly mlp: MLPBlock;
  constructor(dim: number, numHeads: number, readonly window: Vec3, readonly shift: Vec3, mlpRatio: number, qkvBias: boolean) {
    super();
    this.norm1 = this.child("norm1", new LayerNorm(dim));
    this.attn = this.child("attn", new WindowAttention(dim, numHeads, window, qkvBias));
    this.norm2 = this.child("norm2", new LayerNorm(dim));
    this.mlp = this.child("mlp", new MLPBlock(dim, Math.floor(dim * mlpRatio)));
  }
  forward(x: Tensor, mask?: Tensor | null): Tensor {
    // x: [B, D, H, W, C]
    return tidy(() => {
      const [b, d, h, w, c] = x.shape;
      const { window: ws, shift } = windowFor([d, h, w], this.window, this.shift);
      const pads = [d, h, w].map((s, a) => (ws[a] - (s % ws[a])) % ws[a]);
      let t = this.norm1.forward(x);
      if (pads.some((p) => p > 0)) t = pad(t, [0, 0, 0, pads[2], 0, pads[1], 0, pads[0]]);
      const dims = [b, d + pads[0], h + pads[1], w + pads[2]];
      const shifted = shift.some((s) => s > 0);
      if (shifted) t = t.roll(shift.map((s) => -s), [1, 2, 3]);
      const windows = this.attn.forward(windowPartition(t, ws), shifted ? mask : null);
      t = windowReverse(windows.reshape(-1, ws[0], ws[1], ws[2], c), ws, dims);
      if (shifted) t = t.roll(shift, [1, 2, 3]);
      if (pads.some((p) => p > 0)) t = t.slice(1, 0, d).slice(2, 0, h).slice(3, 0, w).contiguous();
      const y = x.add(t);
      return y.add(this.mlp.forward(this.norm2.forward(y)));
    });
  }
}

/** Patch merging: the 8 voxels of each 2³ block side by side (8C), layer norm, a linear map to 2C. */
export class PatchMerging extends Module {
  readonly reduction: Linear;
  readonly norm: LayerNorm;
  constructor(dim: number, readonly order: "merging" | "mergingv2") {
    super();
    this.reduction = this.child("reduction", new Linear(8 * dim, 2 * dim, { bias: false }));
    this.norm = this.child("norm", new LayerNorm(8 * dim));
  }
  forward(x: Tensor): Tensor {
    // x: [B, D, H, W, C]
    return tidy(() => {
      const [, d, h, w] = x.shape;
      let t = x;
      if (d % 2 || h % 2 || w % 2) t = pad(t, [0, 0, 0, w % 2, 0, h % 2, 0, d % 2]);
      // PatchMerging (v1) takes the neighbours in MONAI's hand-written order; v2 in itertools.product order.
      const v1: Vec3[] = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]];
      const v2: Vec3[] = [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0], [1, 0, 1], [1, 1, 0], [1, 1, 1]];
      const parts = (this.order === "merging" ? v1 : v2).map(([i, j, k]) => t.slice(1, i, undefined, 2).slice(2, j, undefined, 2).slice(3, k, undefined, 2));
      return this.reduction.forward(this.norm.forward(cat(parts, -1)));
    });
  }
}

/** One Swin stage: blocks alternating unshifted and shifted windows, then patch merging. Channels-first in and out. */
export class BasicLayer extends Module {
  readonly blocks: ModuleList;
  readonly downsample: PatchMerging;
  readonly shift: Vec3;
  constructor(dim: number, depth: number, numHeads: number, readonly window: Vec3, cfg: SwinUNETRConfig) {
    super();
    this.shift = window.map((w) => Math.floor(w / 2)) as Vec3;
    this.blocks = this.child("blocks", new ModuleList(Array.from({ length: depth }, (_, i) =>
      new SwinTransformerBlock(dim, numHeads, window, i % 2 === 0 ? [0, 0, 0] : this.shift, cfg.mlpRatio, cfg.qkvBias))));
    this.downsample = this.child("downsample", new PatchMerging(dim, cfg.downsample));
  }
  forward(x: Tensor): Tensor {
    // x: [B, C, D, H, W]
    return tidy(() => {
      const [, , d, h, w] = x.shape;
      const { window: ws, shift } = windowFor([d, h, w], this.window, this.shift);
      const padded = [d, h, w].map((s, a) => Math.ceil(s / ws[a]) * ws[a]) as Vec3;
      const mask = computeMask(padded, ws, shift).to(x.device);
      let t = x.permute(0, 2, 3, 4, 1);
      for (const blk of this.blocks.items) t = (blk as SwinTransformerBlock).forward(t, mask);
      return this.downsample.forward(t).permute(0, 4, 1, 2, 3).contiguous();
    });
  }
}

/** The 2³ patch embedding (PatchEmbed without patch norm): key "patch_embed.proj.*". */
class PatchEmbed extends Module {
  readonly proj: Conv3d;
  constructor(cin: number, dim: number) {
    super();
    this.proj = this.child("proj", new Conv3d(cin, dim, 2, { stride: 2 }));
  }
  forward(x: Tensor): Tensor {
    return this.proj.forward(x);
  }
}

/** Layer norm over channels of a channels-first map, without affine parameters (MONAI's proj_out with normalize). */
function projOut(x: Tensor, normalize: boolean): Tensor {
  if (!normalize) return x;
  return tidy(() => layerNorm(x.permute(0, 2, 3, 4, 1), [x.shape[1]], null, null).permute(0, 4, 1, 2, 3).contiguous());
}

export class SwinTransformer extends Module {
  readonly patchEmbed: PatchEmbed;
  readonly stages: BasicLayer[];
  readonly convStages: UnetrBasicBlock[];
  constructor(readonly cfg: SwinUNETRConfig) {
    super();
    const f = cfg.featureSize;
    this.patchEmbed = this.child("patch_embed", new PatchEmbed(cfg.inChannels, f));
    this.stages = [0, 1, 2, 3].map((s) => this.child(`layers${s + 1}`, new ModuleList([new BasicLayer(f * 2 ** s, cfg.depths[s], cfg.numHeads[s], cfg.windowSize, cfg)])).items[0] as BasicLayer);
    this.convStages = cfg.useV2 ? [0, 1, 2, 3].map((s) => this.child(`layers${s + 1}c`, new ModuleList([new UnetrBasicBlock(f * 2 ** s, f * 2 ** s)])).items[0] as UnetrBasicBlock) : [];
  }
  /**
   * The five normalised outputs [x0 (1/2), x1 (1/4), x2 (1/8), x3 (1/16), x4 (1/32)]; `embed` replaces the patch
   * embedding's output when given (SimMIM).
   */
  run(x: Tensor, embed?: (tokens: Tensor) => Tensor): Tensor[] {
    return tidy(() => {
      let h = this.patchEmbed.forward(x);
      if (embed) h = embed(h);
      const outs = [projOut(h, this.cfg.normalize)];
      for (let s = 0; s < 4; s++) {
        if (this.cfg.useV2) h = this.convStages[s].forward(h);
        h = this.stages[s].forward(h);
        outs.push(projOut(h, this.cfg.normalize));
      }
      return outs;
    });
  }
  forward(x: Tensor): Tensor {
    const outs = this.run(x);
    for (const t of outs.slice(0, -1)) t.dispose();
    return outs[4];
  }
}

export class SwinUNETR extends Module {
  readonly config: SwinUNETRConfig;
  readonly swinViT: SwinTransformer;
  readonly encoder1: UnetrBasicBlock;
  readonly encoder2: UnetrBasicBlock;
  readonly encoder3: UnetrBasicBlock;
  readonly encoder4: UnetrBasicBlock;
  readonly encoder10: UnetrBasicBlock;
  readonly decoder5: UnetrUpBlock;
  readonly decoder4: UnetrUpBlock;
  readonly decoder3: UnetrUpBlock;
  readonly decoder2: UnetrUpBlock;
  readonly decoder1: UnetrUpBlock;
  readonly out: UnetOutBlock;

  constructor(config: Partial<SwinUNETRConfig> = {}) {
    super();
    const cfg = (this.config = swinUnetrConfig(config));
    const f = cfg.featureSize;
    this.swinViT = this.child("swinViT", new SwinTransformer(cfg));
    this.encoder1 = this.child("encoder1", new UnetrBasicBlock(cfg.inChannels, f));
    this.encoder2 = this.child("encoder2", new UnetrBasicBlock(f, f));
    this.encoder3 = this.child("encoder3", new UnetrBasicBlock(2 * f, 2 * f));
    this.encoder4 = this.child("encoder4", new UnetrBasicBlock(4 * f, 4 * f));
    this.encoder10 = this.child("encoder10", new UnetrBasicBlock(16 * f, 16 * f));
    this.decoder5 = this.child("decoder5", new UnetrUpBlock(16 * f, 8 * f));
    this.decoder4 = this.child("decoder4", new UnetrUpBlock(8 * f, 4 * f));
    this.decoder3 = this.child("decoder3", new UnetrUpBlock(4 * f, 2 * f));
    this.decoder2 = this.child("decoder2", new UnetrUpBlock(2 * f, f));
    this.decoder1 = this.child("decoder1", new UnetrUpBlock(f, f));
    this.out = this.child("out", new UnetOutBlock(f, cfg.numClasses));
  }

  private checkInput(x: Tensor): void {
    const s = x.shape.slice(2);
    if (s.some((v) => v % 32 !== 0)) throw new Error(`SwinUNETR: input ${s.join("×")} must be a multiple of 32 on every axis (patch 2, then four halvings)`);
  }

  /** Skips [enc0 (full), enc1 (1/2), enc2 (1/4), enc3 (1/8), x3 (1/16), dec4 (1/32)]. `embed` as SwinTransformer.run's. */
  encode(x: Tensor, embed?: (tokens: Tensor) => Tensor): Tensor[] {
    this.checkInput(x);
    return tidy(() => {
      const h = this.swinViT.run(x, embed);
      return [
        this.encoder1.forward(x), this.encoder2.forward(h[0]), this.encoder3.forward(h[1]), this.encoder4.forward(h[2]), h[3],
        this.encoder10.forward(h[4]),
      ];
    });
  }

  /** [full-resolution decoder features [B, featureSize, D, H, W]]; frees the skips. */
  decodeFeatures(skips: Tensor[]): Tensor[] {
    const [enc0, enc1, enc2, enc3, x3, dec4] = skips;
    const out = tidy(() => {
      const d3 = this.decoder4.forward(this.decoder5.forward(dec4, x3), enc3);
      return this.decoder1.forward(this.decoder2.forward(this.decoder3.forward(d3, enc2), enc1), enc0);
    });
    for (const s of skips) s.dispose();
    return [out];
  }

  /** Logits [B, numClasses, D, H, W]. */
  forward(x: Tensor): Tensor {
    const [feat] = this.decodeFeatures(this.encode(x));
    const logits = this.out.forward(feat);
    feat.dispose();
    return logits;
  }

  /** swinViT is the encoder (what SimMIM trains and --init transfers); its patch embedding is the stem. */
  keyGroups(): KeyGroups {
    return keyGroupsByPrefix(this, "swinViT.patch_embed.", "swinViT.");
  }
}
