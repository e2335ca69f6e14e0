// Layers with PyTorch's parameter names and default initialisation.
import {
  type Tensor, avgPool3d, batchNorm, conv3d, convTranspose3d, dropout, empty, gelu, groupNorm, instanceNorm,
  layerNorm, leakyRelu, leakyRelu_, linear, ones, relu, relu_, silu, zeros,
} from "../torch/index.ts";
import { defaultWeightInit_, fans, uniform_ } from "./init.ts";
import { Module } from "./module.ts";

export type Triple = number | [number, number, number];
const triple = (v: Triple): [number, number, number] => (Array.isArray(v) ? v : [v, v, v]);

export interface Conv3dOptions {
  stride?: Triple;
  /** A number/triple, or "same" for (kernel - 1) / 2 per axis (odd kernels). */
  padding?: Triple | "same";
  dilation?: Triple;
  groups?: number;
  bias?: boolean;
}

export class Conv3d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: [number, number, number];
  readonly padding: [number, number, number];
  readonly dilation: [number, number, number];
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, kernel: Triple, o: Conv3dOptions = {}) {
    super();
    const k = triple(kernel);
    this.groups = o.groups ?? 1;
    if (inChannels % this.groups || outChannels % this.groups) throw new Error(`Conv3d: channels ${inChannels}→${outChannels} are not divisible by groups ${this.groups}`);
    this.stride = triple(o.stride ?? 1);
    this.dilation = triple(o.dilation ?? 1);
    this.padding = o.padding === "same" ? (k.map((x, i) => ((x - 1) * this.dilation[i]) >> 1) as [number, number, number]) : triple(o.padding ?? 0);
    this.weight = this.param("weight", defaultWeightInit_(empty([outChannels, inChannels / this.groups, ...k])));
    this.bias = o.bias === false ? null : this.param("bias", uniform_(empty([outChannels]), 1 / Math.sqrt(fans(this.weight).fanIn)));
  }

  forward(x: Tensor): Tensor {
    return conv3d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }
}

export class ConvTranspose3d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: [number, number, number];
  readonly padding: [number, number, number];
  readonly outputPadding: [number, number, number];
  readonly groups: number;

  constructor(
    readonly inChannels: number, readonly outChannels: number, kernel: Triple,
    o: { stride?: Triple; padding?: Triple; outputPadding?: Triple; groups?: number; bias?: boolean } = {},
  ) {
    super();
    const k = triple(kernel);
    this.groups = o.groups ?? 1;
    this.stride = triple(o.stride ?? 1);
    this.padding = triple(o.padding ?? 0);
    this.outputPadding = triple(o.outputPadding ?? 0);
    // PyTorch's layout for transposed convolutions: [in, out / groups, kD, kH, kW].
    this.weight = this.param("weight", defaultWeightInit_(empty([inChannels, outChannels / this.groups, ...k])));
    this.bias = o.bias === false ? null : this.param("bias", uniform_(empty([outChannels]), 1 / Math.sqrt(fans(this.weight).fanIn)));
  }

  forward(x: Tensor): Tensor {
    const o = { stride: this.stride, padding: this.padding, outputPadding: this.outputPadding, groups: this.groups };
    return convTranspose3d(x, this.weight, this.bias, o);
  }
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, o: { bias?: boolean } = {}) {
    super();
    this.weight = this.param("weight", defaultWeightInit_(empty([outFeatures, inFeatures])));
    this.bias = o.bias === false ? null : this.param("bias", uniform_(empty([outFeatures]), 1 / Math.sqrt(inFeatures)));
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

/** Instance norm over each sample's channel (x: [B, C, D, H, W]); affine by default, as nnU-Net uses it. */
export class InstanceNorm3d extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  constructor(readonly numFeatures: number, readonly o: { eps?: number; affine?: boolean } = {}) {
    super();
    const affine = o.affine ?? true;
    this.weight = affine ? this.param("weight", ones([numFeatures])) : null;
    this.bias = affine ? this.param("bias", zeros([numFeatures])) : null;
  }
  forward(x: Tensor): Tensor {
    return instanceNorm(x, this.weight, this.bias, this.o.eps ?? 1e-5);
  }
}

export class GroupNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly numGroups: number, readonly numChannels: number, readonly eps = 1e-5) {
    super();
    if (numChannels % numGroups) throw new Error(`GroupNorm: ${numChannels} channels are not divisible into ${numGroups} groups`);
    this.weight = this.param("weight", ones([numChannels]));
    this.bias = this.param("bias", zeros([numChannels]));
  }
  forward(x: Tensor): Tensor {
    return groupNorm(x, this.numGroups, this.weight, this.bias, this.eps);
  }
}

export class BatchNorm3d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  constructor(readonly numFeatures: number, readonly o: { eps?: number; momentum?: number } = {}) {
    super();
    this.weight = this.param("weight", ones([numFeatures]));
    this.bias = this.param("bias", zeros([numFeatures]));
    this.runningMean = this.buffer("running_mean", zeros([numFeatures]));
    this.runningVar = this.buffer("running_var", ones([numFeatures]));
    this.numBatchesTracked = this.buffer("num_batches_tracked", zeros([], { dtype: "int64" }));
  }
  forward(x: Tensor): Tensor {
    if (this.training) this.numBatchesTracked.add_(1);
    return batchNorm(x, this.runningMean, this.runningVar, this.weight, this.bias, this.training, this.o.momentum ?? 0.1, this.o.eps ?? 1e-5);
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly shape: number[];
  constructor(shape: number | number[], readonly eps = 1e-5) {
    super();
    this.shape = Array.isArray(shape) ? shape : [shape];
    this.weight = this.param("weight", ones(this.shape));
    this.bias = this.param("bias", zeros(this.shape));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.shape, this.weight, this.bias, this.eps);
  }
}

/** LeakyReLU; inplace overwrites its input (as nn.LeakyReLU(inplace=True) in nnU-Net), saving a copy. */
export class LeakyReLU extends Module {
  constructor(readonly slope = 0.01, readonly inplace = false) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.inplace ? leakyRelu_(x, this.slope) : leakyRelu(x, this.slope);
  }
}

export class ReLU extends Module {
  constructor(readonly inplace = false) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.inplace ? relu_(x) : relu(x);
  }
}

export class GELU extends Module {
  forward(x: Tensor): Tensor {
    return gelu(x);
  }
}

export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

export class AvgPool3d extends Module {
  constructor(readonly kernel: Triple, readonly stride?: Triple) {
    super();
  }
  forward(x: Tensor): Tensor {
    return avgPool3d(x, this.kernel, { stride: this.stride ?? this.kernel });
  }
}

export type NormKind = "instance" | "batch" | "group";

/** The norm layer a network config names. */
export function makeNorm(kind: NormKind, channels: number): Module {
  if (kind === "instance") return new InstanceNorm3d(channels, { affine: true });
  if (kind === "batch") return new BatchNorm3d(channels);
  return new GroupNorm(Math.min(8, channels), channels);
}
