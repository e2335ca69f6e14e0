// A residual-encoder U-Net in the style of nnU-Net's ResEnc presets (Isensee et al., 2024):
// a stem conv, then stages of BasicBlockD residual blocks (the first strided; the shortcut
// average-pools then projects with a 1×1×1 conv + norm), and the plain U-Net's decoder.
// State-dict keys: encoder.stem.*, encoder.stages.<s>.<b>.{conv1,norm1,conv2,norm2,skip}.*, up.*, dec.*, head.*, ds.*
import { type Tensor, leakyRelu_ } from "../torch/index.ts";
import { AvgPool3d, Conv3d, ConvTranspose3d, Identity, LeakyReLU, type NormKind, type Triple, makeNorm } from "./layers.ts";
import { Module, ModuleList, Sequential } from "./module.ts";
import { type KeyGroups, convBlock, decodeFeatures, initNnUNet, keyGroupsByPrefix, segmentationHeads } from "./unet.ts";

export interface ResEncUNetConfig {
  arch: "resenc";
  inChannels: number;
  numClasses: number;
  features: number[];
  strides: Triple[];
  kernelSizes: Triple[];
  /** Residual blocks per encoder stage (nnU-Net ResEnc M: 1, 3, 4, 6, 6, 6). */
  blocksPerStage: number[];
  convsPerStageDecoder: number;
  norm: NormKind;
  deepSupervision: boolean;
  /**
   * A strided block whose channels stay the same: true (lsmseg's default, absent in older checkpoints)
   * projects its shortcut with a 1×1×1 conv + norm after the pooling; false pools only, as
   * dynamic_network_architectures' BasicBlockD does (nnU-Net's ResEnc presets: the 320 → 320 stages).
   */
  projectStridedShortcut?: boolean;
}

export const RESENC_DEFAULTS: ResEncUNetConfig = {
  arch: "resenc",
  inChannels: 1,
  numClasses: 2,
  features: [32, 64, 128, 256, 320],
  strides: [1, 2, 2, 2, 2],
  kernelSizes: [3, 3, 3, 3, 3],
  blocksPerStage: [1, 3, 4, 6, 6],
  convsPerStageDecoder: 1,
  norm: "instance",
  deepSupervision: false,
};

const isOne = (s: Triple) => (Array.isArray(s) ? s.every((v) => v === 1) : s === 1);

/** BasicBlockD: conv-norm-act-conv-norm plus a shortcut (avg-pool when strided, 1×1×1 projection when channels change), then act. */
export class BasicBlockD extends Module {
  readonly conv1: Conv3d;
  readonly norm1: Module;
  readonly conv2: Conv3d;
  readonly norm2: Module;
  readonly skip: Module;

  constructor(cin: number, cout: number, kernel: Triple, stride: Triple, norm: NormKind, projectStrided = true) {
    super();
    this.conv1 = this.child("conv1", new Conv3d(cin, cout, kernel, { stride, padding: "same", bias: true }));
    this.norm1 = this.child("norm1", makeNorm(norm, cout));
    this.conv2 = this.child("conv2", new Conv3d(cout, cout, kernel, { padding: "same", bias: true }));
    this.norm2 = this.child("norm2", makeNorm(norm, cout));
    const parts: Module[] = [];
    if (!isOne(stride)) parts.push(new AvgPool3d(stride, stride));
    if (cin !== cout || (projectStrided && !isOne(stride))) parts.push(new Conv3d(cin, cout, 1, { bias: false }), makeNorm(norm, cout));
    this.skip = this.child("skip", parts.length ? new Sequential(...parts) : new Identity());
  }

  forward(x: Tensor): Tensor {
    const a = this.conv1.forward(x);
    const b = this.norm1.forward(a) as Tensor;
    if (b !== a) a.dispose();
    leakyRelu_(b);
    const c = this.conv2.forward(b);
    b.dispose();
    const d = this.norm2.forward(c) as Tensor;
    if (d !== c) c.dispose();
    const s = this.skip.forward(x) as Tensor;
    const out = d.add(s);
    d.dispose();
    if (s !== x) s.dispose();
    return leakyRelu_(out);
  }
}

export class ResEncUNet extends Module {
  readonly config: ResEncUNetConfig;
  readonly stem: Sequential;
  readonly stages: ModuleList;
  readonly up: ModuleList;
  readonly dec: ModuleList;
  readonly head: Conv3d;
  readonly ds: ModuleList | null;

  constructor(config: Partial<ResEncUNetConfig> = {}) {
    super();
    const cfg = (this.config = { ...RESENC_DEFAULTS, ...config, arch: "resenc" });
    const f = cfg.features;
    const n = f.length;
    if (cfg.strides.length !== n || cfg.kernelSizes.length !== n || cfg.blocksPerStage.length !== n) {
      throw new Error(`ResEncUNet: features, strides, kernelSizes and blocksPerStage need one entry per stage (${n})`);
    }
    const encoder = this.child("encoder", new EncoderHolder());
    this.stem = encoder.add("stem", new Sequential(new Conv3d(cfg.inChannels, f[0], cfg.kernelSizes[0], { padding: "same", bias: true }), makeNorm(cfg.norm, f[0]), new LeakyReLU(0.01, true)));
    this.stages = encoder.add("stages", new ModuleList(f.map((c, s) => new Sequential(
      ...Array.from({ length: cfg.blocksPerStage[s] }, (_, b) => new BasicBlockD(
        b === 0 ? (s === 0 ? f[0] : f[s - 1]) : c, c, cfg.kernelSizes[s], b === 0 ? cfg.strides[s] : 1, cfg.norm,
        cfg.projectStridedShortcut !== false,
      )),
    ))));
    const upIdx = [...Array(n - 1).keys()].map((j) => n - 1 - j);
    this.up = this.child("up", new ModuleList(upIdx.map((i) => new ConvTranspose3d(f[i], f[i - 1], cfg.strides[i], { stride: cfg.strides[i], bias: true }))));
    this.dec = this.child("dec", new ModuleList(upIdx.map((i) => convBlock(2 * f[i - 1], f[i - 1], cfg.convsPerStageDecoder, cfg.kernelSizes[i - 1], 1, { norm: cfg.norm, convBias: true }))));
    this.head = this.child("head", new Conv3d(f[0], cfg.numClasses, 1));
    this.ds = cfg.deepSupervision ? this.child("ds", new ModuleList(upIdx.slice(0, -1).map((i) => new Conv3d(f[i - 1], cfg.numClasses, 1)))) : null;
    initNnUNet(this);
  }

  encode(x: Tensor): Tensor[] {
    const skips: Tensor[] = [];
    let h = this.stem.forward(x);
    for (const stage of this.stages.items) {
      const next = stage.forward(h) as Tensor;
      if (skips.length === 0) h.dispose();
      h = next;
      skips.push(h);
    }
    return skips;
  }

  decodeFeatures(skips: Tensor[]): Tensor[] {
    return decodeFeatures(this, skips);
  }

  forward(x: Tensor): Tensor | Tensor[] {
    return segmentationHeads(this, this.decodeFeatures(this.encode(x)));
  }

  keyGroups(): KeyGroups {
    return keyGroupsByPrefix(this, "encoder.stem.", "encoder.");
  }
}

/** A container so that the encoder's keys share the "encoder." prefix. */
class EncoderHolder extends Module {
  add<M extends Module>(name: string, m: M): M {
    return this.child(name, m);
  }
  forward(): Tensor {
    throw new Error("the encoder is run through ResEncUNet.encode()");
  }
}

/**
 * nnU-Net's residual-encoder presets (nnUNetPlannerResEncM/L/XL, Isensee et al. 2024) for a 3D dataset whose
 * patch allows six stages. The three share this architecture (features 32…320, blocks 1-3-4-6-6-6, one conv per
 * decoder stage, pooled-only shortcuts where the channels stay); they differ in the GPU memory nnU-Net plans
 * for (8, 24, 40 GB), which it spends on a larger patch and batch. nnssl's ResEnc-L is the L preset.
 */
export const RESENC_PRESETS: Record<"M" | "L" | "XL", { vramTargetGB: number; network: Omit<ResEncUNetConfig, "inChannels" | "numClasses" | "deepSupervision"> }> = Object.fromEntries(
  ([["M", 8], ["L", 24], ["XL", 40]] as const).map(([name, gb]) => [name, {
    vramTargetGB: gb,
    network: {
      arch: "resenc", features: [32, 64, 128, 256, 320, 320], strides: [1, 2, 2, 2, 2, 2], kernelSizes: [3, 3, 3, 3, 3, 3],
      blocksPerStage: [1, 3, 4, 6, 6, 6], convsPerStageDecoder: 1, norm: "instance", projectStridedShortcut: false,
    },
  }]),
) as never;
