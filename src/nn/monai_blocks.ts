// The convolutional blocks that MONAI's UNETR and SwinUNETR share (monai/networks/blocks/dynunet_block.py,
// unetr_block.py, mlp.py), with MONAI's module names so that state-dict keys are equal to MONAI's:
// a MONAI `Convolution` is a Sequential holding one "conv" child, so its weight is "<name>.conv.weight".
// Norms are MONAI's "instance" (nn.InstanceNorm3d: no affine parameters, so no keys); activations are
// LeakyReLU(0.01). Convolutions have no bias except the output block's, as in MONAI.
import { type Tensor, cat, gelu, leakyRelu_, tidy } from "../torch/index.ts";
import { Conv3d, ConvTranspose3d, InstanceNorm3d, Linear } from "./layers.ts";
import { Module, ModuleList, Sequential } from "./module.ts";

/** MONAI's Convolution with conv_only=True: one conv under the name "conv" (padding (k - s + 1) / 2, as get_padding). */
export class MonaiConv extends Module {
  readonly conv: Conv3d | ConvTranspose3d;
  constructor(cin: number, cout: number, kernel: number, o: { stride?: number; transposed?: boolean; bias?: boolean } = {}) {
    super();
    const stride = o.stride ?? 1;
    const padding = Math.floor((kernel - stride + 1) / 2);
    this.conv = this.child("conv", o.transposed
      ? new ConvTranspose3d(cin, cout, kernel, { stride, padding, outputPadding: 2 * padding + stride - kernel, bias: o.bias ?? false })
      : new Conv3d(cin, cout, kernel, { stride, padding, bias: o.bias ?? false }));
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(x);
  }
}

/** UnetResBlock: conv-norm-lrelu-conv-norm, plus the input (through a 1×1×1 conv + norm when channels change), then lrelu. */
export class UnetResBlock extends Module {
  readonly conv1: MonaiConv;
  readonly conv2: MonaiConv;
  readonly conv3: MonaiConv | null;
  private readonly norm = new InstanceNorm3d(1, { affine: false });

  constructor(cin: number, cout: number, kernel = 3) {
    super();
    this.conv1 = this.child("conv1", new MonaiConv(cin, cout, kernel));
    this.conv2 = this.child("conv2", new MonaiConv(cout, cout, kernel));
    this.conv3 = cin !== cout ? this.child("conv3", new MonaiConv(cin, cout, 1)) : null;
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      const h = this.norm.forward(this.conv2.forward(leakyRelu_(this.norm.forward(this.conv1.forward(x)))));
      const residual = this.conv3 ? this.norm.forward(this.conv3.forward(x)) : x;
      return leakyRelu_(h.add_(residual));
    });
  }
}

/** UnetBasicBlock: conv-norm-lrelu-conv-norm-lrelu (MONAI's choice when res_block is false). */
export class UnetBasicBlock extends Module {
  readonly conv1: MonaiConv;
  readonly conv2: MonaiConv;
  private readonly norm = new InstanceNorm3d(1, { affine: false });

  constructor(cin: number, cout: number, kernel = 3) {
    super();
    this.conv1 = this.child("conv1", new MonaiConv(cin, cout, kernel));
    this.conv2 = this.child("conv2", new MonaiConv(cout, cout, kernel));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => leakyRelu_(this.norm.forward(this.conv2.forward(leakyRelu_(this.norm.forward(this.conv1.forward(x)))))));
  }
}

const convBlock = (cin: number, cout: number, res: boolean): Module => (res ? new UnetResBlock(cin, cout) : new UnetBasicBlock(cin, cout));

/** UnetrBasicBlock: one residual (or basic) block under the name "layer". */
export class UnetrBasicBlock extends Module {
  readonly layer: Module;
  constructor(cin: number, cout: number, resBlock = true) {
    super();
    this.layer = this.child("layer", convBlock(cin, cout, resBlock));
  }
  forward(x: Tensor): Tensor {
    return this.layer.forward(x) as Tensor;
  }
}

/** UnetrUpBlock: a 2× transposed conv, concatenation with the skip, a residual block. */
export class UnetrUpBlock extends Module {
  readonly transpConv: MonaiConv;
  readonly convBlock: Module;
  constructor(cin: number, cout: number, resBlock = true) {
    super();
    this.transpConv = this.child("transp_conv", new MonaiConv(cin, cout, 2, { stride: 2, transposed: true }));
    this.convBlock = this.child("conv_block", convBlock(2 * cout, cout, resBlock));
  }
  forward(x: Tensor, skip: Tensor): Tensor {
    return tidy(() => this.convBlock.forward(cat([this.transpConv.forward(x), skip], 1)) as Tensor);
  }
}

/** UnetrPrUpBlock: a 2× transposed conv, then `numLayer` × (2× transposed conv [, residual block]). */
export class UnetrPrUpBlock extends Module {
  readonly transpConvInit: MonaiConv;
  readonly blocks: ModuleList;
  constructor(cin: number, cout: number, numLayer: number, o: { convBlock?: boolean; resBlock?: boolean } = {}) {
    super();
    this.transpConvInit = this.child("transp_conv_init", new MonaiConv(cin, cout, 2, { stride: 2, transposed: true }));
    const up = () => new MonaiConv(cout, cout, 2, { stride: 2, transposed: true });
    this.blocks = this.child("blocks", new ModuleList(Array.from({ length: numLayer }, () =>
      (o.convBlock ?? true) ? new Sequential(up(), convBlock(cout, cout, o.resBlock ?? true)) : up())));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      let h = this.transpConvInit.forward(x);
      for (const b of this.blocks.items) h = b.forward(h) as Tensor;
      return h;
    });
  }
}

/** UnetOutBlock: the 1×1×1 head, with bias. */
export class UnetOutBlock extends Module {
  readonly conv: MonaiConv;
  constructor(cin: number, numClasses: number) {
    super();
    this.conv = this.child("conv", new MonaiConv(cin, numClasses, 1, { bias: true }));
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(x);
  }
}

/** MLPBlock: linear1 → GELU (exact) → linear2 (dropout 0). */
export class MLPBlock extends Module {
  readonly linear1: Linear;
  readonly linear2: Linear;
  constructor(hidden: number, mlpDim: number) {
    super();
    this.linear1 = this.child("linear1", new Linear(hidden, mlpDim));
    this.linear2 = this.child("linear2", new Linear(mlpDim, hidden));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.linear2.forward(gelu(this.linear1.forward(x))));
  }
}
