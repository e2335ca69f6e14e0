// A plain 3D U-Net in the style of nnU-Net's PlainConvUNet and of the PyTorch anchor
// (../shared/anchors/unet_step.py): stages of (conv, norm, LeakyReLU) × n, a strided first conv
// to go down, a transposed conv to go up, skip concatenation, a 1×1×1 head, optional deep supervision.
// State-dict keys: enc.<stage>.<layer>, up.<i>, dec.<i>.<layer>, head, ds.<i> (deep-supervision heads).
import { type Tensor, cat } from "../torch/index.ts";
import { kaimingNormal_, zeros_ } from "./init.ts";
import { Conv3d, ConvTranspose3d, LeakyReLU, type NormKind, type Triple, makeNorm } from "./layers.ts";
import { Module, ModuleList, Sequential } from "./module.ts";

export interface UNetConfig {
  arch: "unet";
  inChannels: number;
  numClasses: number;
  /** Channels per stage, shallow to deep. */
  features: number[];
  /** Stride of each stage's first conv (stage 0 usually 1). */
  strides: Triple[];
  /** Kernel size per stage (anisotropic kernels allowed, e.g. [1, 3, 3]). */
  kernelSizes: Triple[];
  convsPerStage: number;
  convsPerStageDecoder: number;
  norm: NormKind;
  convBias: boolean;
  deepSupervision: boolean;
  /** "nnunet": Kaiming normal (a = 0.01) and zero biases; "torch": PyTorch's layer defaults. */
  init: "nnunet" | "torch";
}

export const UNET_DEFAULTS: UNetConfig = {
  arch: "unet",
  inChannels: 1,
  numClasses: 2,
  features: [32, 64, 128, 256, 320],
  strides: [1, 2, 2, 2, 2],
  kernelSizes: [3, 3, 3, 3, 3],
  convsPerStage: 2,
  convsPerStageDecoder: 2,
  norm: "instance",
  convBias: true,
  deepSupervision: false,
  init: "nnunet",
};

/** The anchor network of ../shared/anchors/unet_step.py: 16/32/64/128, no conv bias, 1.40 M parameters. */
export function anchorUNetConfig(over: Partial<UNetConfig> = {}): UNetConfig {
  return { ...UNET_DEFAULTS, features: [16, 32, 64, 128], strides: [1, 2, 2, 2], kernelSizes: [3, 3, 3, 3], convBias: false, init: "torch", ...over };
}

export function convBlock(cin: number, cout: number, n: number, kernel: Triple, stride: Triple, cfg: Pick<UNetConfig, "norm" | "convBias">): Sequential {
  const layers: Module[] = [];
  for (let i = 0; i < n; i++) {
    layers.push(new Conv3d(i === 0 ? cin : cout, cout, kernel, { stride: i === 0 ? stride : 1, padding: "same", bias: cfg.convBias }));
    layers.push(makeNorm(cfg.norm, cout));
    layers.push(new LeakyReLU(0.01, true));
  }
  return new Sequential(...layers);
}

/** nnU-Net's InitWeights_He(1e-2): Kaiming normal on every (transposed) conv weight, zero biases. */
export function initNnUNet(net: Module): void {
  for (const [, m] of net.namedModules()) {
    if (m instanceof Conv3d || m instanceof ConvTranspose3d) {
      kaimingNormal_(m.weight, 0.01);
      if (m.bias) zeros_(m.bias);
    }
  }
}

/** The parts of an encoder-decoder U-Net that its decoder and heads need (both U-Nets here have them). */
export interface DecoderParts {
  up: ModuleList;
  dec: ModuleList;
  head: Conv3d;
  ds: ModuleList | null;
  training: boolean;
}

/**
 * Decoder features of every level, coarse to fine (the last at full resolution), from the encoder's
 * stage outputs (shallow to deep). Frees the skips as soon as they are joined.
 */
export function decodeFeatures(net: DecoderParts, skips: Tensor[]): Tensor[] {
  const n = skips.length;
  let h = skips[n - 1];
  const outs: Tensor[] = [];
  for (let j = 0; j < n - 1; j++) {
    const up = net.up.items[j].forward(h) as Tensor;
    const skip = skips[n - 2 - j];
    // Under CPU autocast the transposed conv answers in fp32 and the skip is bf16 (instanceNorm keeps it so): join
    // them in bf16, the dtype the next convolution casts to anyway, not in fp32 (autocast's cat promotes).
    const u = skip.dtype === "bfloat16" && up.dtype === "float32" ? up.to("bfloat16") : up;
    if (u !== up) up.dispose();
    const joined = cat([u, skip], 1);
    u.dispose();
    skip.dispose();
    if (j === 0) h.dispose();
    h = net.dec.items[j].forward(joined) as Tensor;
    joined.dispose();
    outs.push(h);
  }
  return outs;
}

/** Logits [B, numClasses, D, H, W] from decoder features; with deep supervision in training, [full, 1/2, 1/4, ...]. */
export function segmentationHeads(net: DecoderParts, feats: Tensor[]): Tensor | Tensor[] {
  const logits = net.head.forward(feats[feats.length - 1]);
  if (!net.ds || !net.training) {
    for (const t of feats) t.dispose();
    return logits;
  }
  const outs = [logits];
  for (let j = feats.length - 2; j >= 0; j--) outs.push(net.ds.items[j].forward(feats[j]) as Tensor);
  for (const t of feats) t.dispose();
  return outs;
}

export interface KeyGroups {
  stem: string[];
  encoder: string[];
  decoder: string[];
}

/** The state-dict keys of `net` split by prefix: the stem's, the encoder's, and the rest (decoder and heads). */
export function keyGroupsByPrefix(net: Module, stemPrefix: string, encoderPrefix: string): KeyGroups {
  const keys = [...net.stateDict().keys()];
  return {
    stem: keys.filter((k) => k.startsWith(stemPrefix)),
    encoder: keys.filter((k) => k.startsWith(encoderPrefix)),
    decoder: keys.filter((k) => !k.startsWith(encoderPrefix)),
  };
}

function checkConfig(cfg: { features: number[]; strides: Triple[]; kernelSizes: Triple[] }, name: string): void {
  const n = cfg.features.length;
  if (n < 2) throw new Error(`${name}: need at least 2 stages, got ${n}`);
  if (cfg.strides.length !== n || cfg.kernelSizes.length !== n) {
    throw new Error(`${name}: features (${n}), strides (${cfg.strides.length}) and kernelSizes (${cfg.kernelSizes.length}) must have one entry per stage`);
  }
}

export class UNet extends Module {
  readonly config: UNetConfig;
  readonly enc: ModuleList;
  readonly up: ModuleList;
  readonly dec: ModuleList;
  readonly head: Conv3d;
  readonly ds: ModuleList | null;

  constructor(config: Partial<UNetConfig> = {}) {
    super();
    const cfg = (this.config = { ...UNET_DEFAULTS, ...config, arch: "unet" });
    checkConfig(cfg, "UNet");
    const f = cfg.features;
    const n = f.length;
    this.enc = this.child("enc", new ModuleList(f.map((c, i) => convBlock(i === 0 ? cfg.inChannels : f[i - 1], c, cfg.convsPerStage, cfg.kernelSizes[i], cfg.strides[i], cfg))));
    const upIdx = [...Array(n - 1).keys()].map((j) => n - 1 - j); // deepest first
    this.up = this.child("up", new ModuleList(upIdx.map((i) => new ConvTranspose3d(f[i], f[i - 1], cfg.strides[i], { stride: cfg.strides[i], bias: true }))));
    this.dec = this.child("dec", new ModuleList(upIdx.map((i) => convBlock(2 * f[i - 1], f[i - 1], cfg.convsPerStageDecoder, cfg.kernelSizes[i - 1], 1, cfg))));
    this.head = this.child("head", new Conv3d(f[0], cfg.numClasses, 1));
    // One head per decoder level except the last (which is `head`): outputs at 1/2, 1/4, ... resolution.
    this.ds = cfg.deepSupervision ? this.child("ds", new ModuleList(upIdx.slice(0, -1).map((i) => new Conv3d(f[i - 1], cfg.numClasses, 1)))) : null;
    if (cfg.init === "nnunet") initNnUNet(this);
  }

  /** Encoder outputs of every stage, shallow to deep. x: [B, C, D, H, W]. */
  encode(x: Tensor): Tensor[] {
    const skips: Tensor[] = [];
    let h = x;
    for (const stage of this.enc.items) {
      h = stage.forward(h) as Tensor;
      skips.push(h);
    }
    return skips;
  }

  /** Decoder features of every level, coarse to fine (the last is at full resolution). Frees the skips. */
  decodeFeatures(skips: Tensor[]): Tensor[] {
    return decodeFeatures(this, skips);
  }

  /** Logits [B, numClasses, D, H, W]; with deep supervision in training, [full, 1/2, 1/4, ...]. */
  forward(x: Tensor): Tensor | Tensor[] {
    return segmentationHeads(this, this.decodeFeatures(this.encode(x)));
  }

  /** Which state-dict keys belong to which part, for transfer from pretraining. */
  keyGroups(): KeyGroups {
    return keyGroupsByPrefix(this, "enc.0.", "enc.");
  }
}
