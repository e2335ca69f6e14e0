// Floating-point work of the benchmarks' network, counted from its shape: the anchor U-Net of
// ../shared/anchors/unet_step.py (two 3×3×3 convolutions per stage, stride-2 convolution down, 2×2×2 transposed
// convolution up, skip concatenation, 1×1×1 head). A convolution costs 2·Cin·Cout·k³ per output voxel (a
// multiply and an add); norms, activations and the optimizer are memory-bound and left out. A training step is
// three times the forward convolutions (forward, gradient of the input, gradient of the weights), less the input
// gradient of the first convolution, which nothing needs.

export interface UNetShape { features: number[]; inChannels: number; classes: number }

export const ANCHOR_UNET: UNetShape = { features: [16, 32, 64, 128], inChannels: 1, classes: 2 };

/** Forward FLOPs of one sample of side `patch`; `firstConv` is the share of the first convolution. */
export function unetForwardFlops(patch: number, net: UNetShape = ANCHOR_UNET): { total: number; firstConv: number } {
  const conv = (cin: number, cout: number, k: number, side: number) => 2 * cin * cout * k ** 3 * side ** 3;
  const f = net.features;
  let total = 0, side = patch;
  const firstConv = conv(net.inChannels, f[0], 3, patch);
  for (let i = 0; i < f.length; i++) {
    if (i > 0) side /= 2;
    total += conv(i === 0 ? net.inChannels : f[i - 1], f[i], 3, side) + conv(f[i], f[i], 3, side);
  }
  for (let i = f.length - 1; i > 0; i--) {
    side *= 2;
    total += conv(f[i], f[i - 1], 2, side) + conv(2 * f[i - 1], f[i - 1], 3, side) + conv(f[i - 1], f[i - 1], 3, side);
  }
  total += conv(f[0], net.classes, 1, patch);
  return { total, firstConv };
}

/** FLOPs of one training step on `batch` patches. */
export function unetStepFlops(patch: number, batch: number, net: UNetShape = ANCHOR_UNET): number {
  const { total, firstConv } = unetForwardFlops(patch, net);
  return batch * (3 * total - firstConv);
}
