// UNETR (Hatamizadeh et al., 2022, "UNETR: Transformers for 3D Medical Image Segmentation") as MONAI builds
// it (monai/networks/nets/unetr.py, vit.py, blocks/patchembedding.py, transformerblock.py, selfattention.py;
// matched: MONAI commit d388d1c, June 2025). A ViT of 12 pre-norm transformer blocks over 16³ patches; the
// outputs of blocks 4, 7 and 10 and the final normalised tokens are reshaped to feature maps and brought up
// to full resolution by transposed convolutions, joined with a convolutional stem like a U-Net's skips.
// Parameter names are MONAI's state-dict keys (vit.patch_embedding.*, vit.blocks.<i>.attn.qkv.weight,
// encoder1..4.*, decoder2..5.*, out.conv.conv.*), including the cross-attention weights MONAI's
// TransformerBlock always creates (unused without cross-attention; kept so MONAI checkpoints load strictly).
import { type Tensor, conv3d, dropout, softmax, tidy, zeros } from "../torch/index.ts";
import { LayerNorm, Linear, type Triple } from "./layers.ts";
import { truncNormal_, zeros_ } from "./init.ts";
import { MLPBlock, UnetOutBlock, UnetrBasicBlock, UnetrPrUpBlock, UnetrUpBlock } from "./monai_blocks.ts";
import { Module, ModuleList } from "./module.ts";
import { type KeyGroups, keyGroupsByPrefix } from "./unet.ts";

export interface UNETRConfig {
  arch: "unetr";
  inChannels: number;
  numClasses: number;
  /** The input size the position embeddings are made for (the training patch); each edge a multiple of 16. */
  imgSize: [number, number, number];
  featureSize: number;
  hiddenSize: number;
  mlpDim: number;
  numHeads: number;
  /** "perceptron": a linear layer on the flattened 16³ patch (the organisers' example); "conv": a 16³ stride-16 conv (MONAI's default). */
  projType: "conv" | "perceptron";
  resBlock: boolean;
  convBlock: boolean;
  qkvBias: boolean;
  dropoutRate: number;
  /** Descriptive, derived from featureSize and hiddenSize: channels at full, 1/2, 1/4, 1/8 and 1/16 resolution. */
  features: number[];
  /** Descriptive: the resolution steps of those levels (patch 16 = four halvings). */
  strides: Triple[];
  deepSupervision: false;
}

export const UNETR_DEFAULTS: UNETRConfig = {
  arch: "unetr", inChannels: 1, numClasses: 2, imgSize: [128, 128, 128], featureSize: 16, hiddenSize: 768, mlpDim: 3072, numHeads: 12,
  projType: "perceptron", resBlock: true, convBlock: true, qkvBias: false, dropoutRate: 0, features: [], strides: [], deepSupervision: false,
};

const PATCH = 16;
const NUM_LAYERS = 12;

/** Multi-head self-attention (SABlock, combined qkv linear): softmax(q kᵀ / √d) v per head, then out_proj. */
export class SABlock extends Module {
  readonly qkv: Linear;
  readonly outProj: Linear;
  constructor(readonly hidden: number, readonly numHeads: number, qkvBias: boolean) {
    super();
    this.outProj = this.child("out_proj", new Linear(hidden, hidden));
    this.qkv = this.child("qkv", new Linear(hidden, 3 * hidden, { bias: qkvBias }));
  }
  forward(x: Tensor): Tensor {
    // x: [B, N, C]
    return tidy(() => {
      const [b, n, c] = x.shape;
      const d = c / this.numHeads;
      // "b h (qkv l d) -> qkv b l h d"
      const qkv = this.qkv.forward(x).reshape(b, n, 3, this.numHeads, d).permute(2, 0, 3, 1, 4);
      const [q, k, v] = qkv.unbind(0);
      const att = softmax(q.matmul(k.transpose(-2, -1)).mul(d ** -0.5), -1);
      return this.outProj.forward(att.matmul(v).permute(0, 2, 1, 3).reshape(b, n, c));
    });
  }
}

/** MONAI's CrossAttentionBlock parameters (to_q/to_k/to_v without bias, out_proj): present in every TransformerBlock, unused by UNETR. */
class CrossAttentionParams extends Module {
  constructor(hidden: number, qkvBias: boolean) {
    super();
    this.child("out_proj", new Linear(hidden, hidden));
    for (const n of ["to_q", "to_k", "to_v"]) this.child(n, new Linear(hidden, hidden, { bias: qkvBias }));
  }
  forward(): Tensor {
    throw new Error("UNETR has no cross-attention; these weights exist only for MONAI key parity");
  }
}

/** Pre-norm transformer block: x + attn(norm1(x)), then + mlp(norm2(x)). */
export class TransformerBlock extends Module {
  readonly mlp: MLPBlock;
  readonly norm1: LayerNorm;
  readonly attn: SABlock;
  readonly norm2: LayerNorm;
  constructor(hidden: number, mlpDim: number, numHeads: number, qkvBias: boolean) {
    super();
    this.mlp = this.child("mlp", new MLPBlock(hidden, mlpDim));
    this.norm1 = this.child("norm1", new LayerNorm(hidden));
    this.attn = this.child("attn", new SABlock(hidden, numHeads, qkvBias));
    this.norm2 = this.child("norm2", new LayerNorm(hidden));
    this.child("norm_cross_attn", new LayerNorm(hidden));
    this.child("cross_attn", new CrossAttentionParams(hidden, qkvBias));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = x.add(this.attn.forward(this.norm1.forward(x)));
      return h.add(this.mlp.forward(this.norm2.forward(h)));
    });
  }
}

/** Patch embedding: 16³ patches to tokens [B, N, hidden] (token order: D, H, W of the patch grid) plus learned position embeddings. */
export class PatchEmbeddingBlock extends Module {
  readonly positionEmbeddings: Tensor;
  readonly proj: Module;
  readonly grid: [number, number, number];
  constructor(readonly cfg: Pick<UNETRConfig, "inChannels" | "imgSize" | "hiddenSize" | "projType">) {
    super();
    this.grid = cfg.imgSize.map((s) => s / PATCH) as [number, number, number];
    const n = this.grid[0] * this.grid[1] * this.grid[2];
    this.positionEmbeddings = this.param("position_embeddings", truncNormal_(zeros([1, n, cfg.hiddenSize]), 0.02));
    this.proj = this.child("patch_embeddings", cfg.projType === "conv"
      ? new PatchConv(cfg.inChannels, cfg.hiddenSize)
      : new PatchPerceptron(cfg.inChannels, cfg.hiddenSize));
  }

  /**
   * Tokens [B, N, hidden]. `mask` ([B, N, 1], 1 = masked) replaces masked tokens by `maskToken` ([1, 1, hidden])
   * before the position embeddings (SimMIM).
   */
  forward(x: Tensor, mask?: Tensor, maskToken?: Tensor): Tensor {
    return tidy(() => {
      let t = this.proj.forward(x) as Tensor;
      if (mask && maskToken) t = t.mul(mask.neg().add(1)).add(maskToken.mul(mask));
      return t.add(this.positionEmbeddings);
    });
  }
}

/** proj_type "conv": a stride-16 conv ("patch_embeddings.weight"), flattened to tokens. */
class PatchConv extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(cin: number, hidden: number) {
    super();
    const lin = new Linear(cin * PATCH ** 3, hidden); // PyTorch's default init for a conv of the same fan-in
    // detached: a view or clone of lin's parameters would be a non-leaf tensor the optimisers refuse
    this.weight = this.param("weight", lin.weight.detach().clone().reshape(hidden, cin, PATCH, PATCH, PATCH));
    this.bias = this.param("bias", lin.bias!.detach().clone());
    lin.dispose();
  }
  forward(x: Tensor): Tensor {
    return tidy(() => conv3d(x, this.weight, this.bias, { stride: PATCH }).flatten(2).transpose(-1, -2));
  }
}

/** proj_type "perceptron": Rearrange("b c (h p1) (w p2) (d p3) -> b (h w d) (p1 p2 p3 c)") then Linear (key "patch_embeddings.1.*"). */
class PatchPerceptron extends Module {
  readonly linear: Linear;
  constructor(readonly cin: number, hidden: number) {
    super();
    this.linear = this.child("1", new Linear(cin * PATCH ** 3, hidden));
    truncNormal_(this.linear.weight, 0.02);
    zeros_(this.linear.bias!);
  }
  forward(x: Tensor): Tensor {
    // x: [B, C, D, H, W]
    return tidy(() => {
      const [b, c, d, h, w] = x.shape;
      const [gd, gh, gw] = [d / PATCH, h / PATCH, w / PATCH];
      const p = x.reshape(b, c, gd, PATCH, gh, PATCH, gw, PATCH).permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(b, gd * gh * gw, PATCH ** 3 * c);
      return this.linear.forward(p);
    });
  }
}

/** MONAI's ViT without classification: tokens through the blocks; every block's output, and the last normalised. */
export class ViT extends Module {
  readonly patchEmbedding: PatchEmbeddingBlock;
  readonly blocks: ModuleList;
  readonly norm: LayerNorm;
  constructor(readonly cfg: UNETRConfig) {
    super();
    this.patchEmbedding = this.child("patch_embedding", new PatchEmbeddingBlock(cfg));
    this.blocks = this.child("blocks", new ModuleList(Array.from({ length: NUM_LAYERS }, () => new TransformerBlock(cfg.hiddenSize, cfg.mlpDim, cfg.numHeads, cfg.qkvBias))));
    this.norm = this.child("norm", new LayerNorm(cfg.hiddenSize));
  }
  /** { out: norm(last) [B, N, hidden], hidden: the output of every block }. */
  run(x: Tensor, mask?: Tensor, maskToken?: Tensor): { out: Tensor; hidden: Tensor[] } {
    return tidy(() => {
      let h = this.patchEmbedding.forward(x, mask, maskToken);
      h = dropout(h, this.cfg.dropoutRate, this.training);
      const hidden: Tensor[] = [];
      for (const blk of this.blocks.items) {
        h = blk.forward(h) as Tensor;
        hidden.push(h);
      }
      return { out: this.norm.forward(h), hidden };
    });
  }
  forward(x: Tensor): Tensor {
    const { out, hidden } = this.run(x);
    for (const t of hidden) t.dispose();
    return out;
  }
}

/** The derived parts of a UNETR config (filled from the rest). */
export function unetrConfig(over: Partial<UNETRConfig> = {}): UNETRConfig {
  const cfg = { ...UNETR_DEFAULTS, ...over, arch: "unetr" as const };
  if (cfg.imgSize.some((s) => s % PATCH !== 0 || s < PATCH)) throw new Error(`UNETR: imgSize ${cfg.imgSize.join("×")} must be a multiple of ${PATCH} on every axis (the patch is ${PATCH}³)`);
  if (cfg.hiddenSize % cfg.numHeads !== 0) throw new Error(`UNETR: hiddenSize ${cfg.hiddenSize} is not divisible by numHeads ${cfg.numHeads}`);
  const f = cfg.featureSize;
  return { ...cfg, features: [f, 2 * f, 4 * f, 8 * f, cfg.hiddenSize], strides: [1, 2, 2, 2, 2], deepSupervision: false };
}

export class UNETR extends Module {
  readonly config: UNETRConfig;
  readonly vit: ViT;
  readonly encoder1: UnetrBasicBlock;
  readonly encoder2: UnetrPrUpBlock;
  readonly encoder3: UnetrPrUpBlock;
  readonly encoder4: UnetrPrUpBlock;
  readonly decoder5: UnetrUpBlock;
  readonly decoder4: UnetrUpBlock;
  readonly decoder3: UnetrUpBlock;
  readonly decoder2: UnetrUpBlock;
  readonly out: UnetOutBlock;

  constructor(config: Partial<UNETRConfig> = {}) {
    super();
    const cfg = (this.config = unetrConfig(config));
    const f = cfg.featureSize, hid = cfg.hiddenSize, res = cfg.resBlock;
    const pr = { convBlock: cfg.convBlock, resBlock: res };
    this.vit = this.child("vit", new ViT(cfg));
    this.encoder1 = this.child("encoder1", new UnetrBasicBlock(cfg.inChannels, f, res));
    this.encoder2 = this.child("encoder2", new UnetrPrUpBlock(hid, 2 * f, 2, pr));
    this.encoder3 = this.child("encoder3", new UnetrPrUpBlock(hid, 4 * f, 1, pr));
    this.encoder4 = this.child("encoder4", new UnetrPrUpBlock(hid, 8 * f, 0, pr));
    this.decoder5 = this.child("decoder5", new UnetrUpBlock(hid, 8 * f, res));
    this.decoder4 = this.child("decoder4", new UnetrUpBlock(8 * f, 4 * f, res));
    this.decoder3 = this.child("decoder3", new UnetrUpBlock(4 * f, 2 * f, res));
    this.decoder2 = this.child("decoder2", new UnetrUpBlock(2 * f, f, res));
    this.out = this.child("out", new UnetOutBlock(f, cfg.numClasses));
  }

  /** Tokens [B, N, hidden] to a feature map [B, hidden, gD, gH, gW] (MONAI's proj_feat). */
  projFeat(t: Tensor): Tensor {
    const g = this.vit.patchEmbedding.grid;
    return t.reshape(t.shape[0], g[0], g[1], g[2], this.config.hiddenSize).permute(0, 4, 1, 2, 3).contiguous();
  }

  private checkInput(x: Tensor): void {
    const s = x.shape.slice(2);
    if (s.some((v, i) => v !== this.config.imgSize[i])) {
      throw new Error(`UNETR: input ${s.join("×")} differs from the imgSize ${this.config.imgSize.join("×")} its position embeddings were made for (predict with the training patch size)`);
    }
  }

  /** Skips [enc1, enc2, enc3, enc4, bottleneck] (full to 1/16 resolution). `mask`/`maskToken` as PatchEmbeddingBlock's. */
  encode(x: Tensor, mask?: Tensor, maskToken?: Tensor): Tensor[] {
    this.checkInput(x);
    return tidy(() => {
      const { out, hidden } = this.vit.run(x, mask, maskToken);
      return [
        this.encoder1.forward(x),
        this.encoder2.forward(this.projFeat(hidden[3])),
        this.encoder3.forward(this.projFeat(hidden[6])),
        this.encoder4.forward(this.projFeat(hidden[9])),
        this.projFeat(out),
      ];
    });
  }

  /** [full-resolution decoder features [B, featureSize, D, H, W]]; frees the skips. */
  decodeFeatures(skips: Tensor[]): Tensor[] {
    const [enc1, enc2, enc3, enc4, bottom] = skips;
    const out = tidy(() => {
      const d4 = this.decoder4.forward(this.decoder5.forward(bottom, enc4), enc3);
      return this.decoder2.forward(this.decoder3.forward(d4, enc2), enc1);
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

  /** The ViT is the encoder (what SimMIM trains and --init transfers); its patch embedding is the stem. */
  keyGroups(): KeyGroups {
    return keyGroupsByPrefix(this, "vit.patch_embedding.", "vit.");
  }
}
