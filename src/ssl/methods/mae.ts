// Masked image modelling for CNNs, as nnssl's MAE for ResEnc U-Nets (after SparK, Tian et al. 2023): a
// random block mask is drawn on the bottleneck's grid (one cell per bottleneck voxel, so every masked
// block is exactly what one deepest feature sees), upsampled to the input, and 75 % of the cells are
// zeroed (0 is the volume's mean after z-scoring); the whole U-Net with a 1-channel head reconstructs
// the input, and the loss is the mean squared error on the masked voxels only.
import type { Rng } from "../../data/rng.ts";
import type { SegNetwork } from "../../nn/networks.ts";
import { type Tensor, interpolate, tensor } from "../../torch/index.ts";
import { ReconstructionHead, type SslMethod, bottleneckShape, decoderOutput } from "../method.ts";

/**
 * A block mask [B, 1, ...grid] of 0/1 (1 = masked) with exactly round(ratio · cells) masked cells per sample,
 * drawn from `rng` (a partial Fisher–Yates shuffle of the cells).
 */
export function blockMask(batch: number, grid: readonly number[], ratio: number, rng: Rng): Float32Array {
  if (!(ratio > 0 && ratio < 1)) throw new RangeError(`mask ratio must be in (0, 1), got ${ratio}`);
  const cells = grid[0] * grid[1] * grid[2];
  const masked = Math.round(ratio * cells);
  const out = new Float32Array(batch * cells);
  const order = new Int32Array(cells);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < cells; i++) order[i] = i;
    for (let i = 0; i < masked; i++) {
      const j = rng.int(i, cells - 1);
      const t = order[i]; order[i] = order[j]; order[j] = t;
      out[b * cells + order[i]] = 1;
    }
  }
  return out;
}

/** The mask on the input's grid: nearest upsampling of the cell mask [B, 1, g] to [B, 1, D, H, W]. */
export function upsampleMask(cellMask: Float32Array, batch: number, grid: readonly number[], size: readonly number[]): Tensor {
  const m = tensor(cellMask, [batch, 1, ...grid]);
  return interpolate(m, { size: [...size], mode: "nearest" });
}

/** Mean squared error over the voxels where mask = 1 (all channels): Σ m·(p − t)² / Σ m. Unmasked voxels do not count. */
export function maskedMse(pred: Tensor, target: Tensor, mask: Tensor): Tensor {
  // pred, target: [B, C, D, H, W]; mask: [B, 1, D, H, W] of 0/1
  const channels = pred.shape[1];
  const se = pred.sub(target).square().mul(mask);
  return se.sum().div(mask.sum().mul(channels).clamp(1));
}

const mae: SslMethod = {
  name: "mae",
  describe: "masked image modelling (nnssl MAE/SparK for CNNs): 75 % of bottleneck-sized blocks zeroed, MSE on masked voxels",
  views: 1,
  augment: null,
  trains: ["encoder", "decoder"],
  defaults: { maskRatio: 0.75 },
  create(net: SegNetwork, o: Record<string, number>) {
    const heads = new ReconstructionHead(net.config.features[0]);
    return {
      heads,
      loss(batch, rng) {
        // x: [B, 1, D, H, W]
        const [b, d, h, w] = batch.shape;
        const grid = bottleneckShape(net, [d, h, w]);
        const mask = upsampleMask(blockMask(b, grid, o.maskRatio, rng), b, grid, [d, h, w]).to(batch.images.device);
        const visible = batch.images.mul(mask.neg().add(1));
        const pred = heads.forward(decoderOutput(net, visible)).float();
        return maskedMse(pred, batch.images, mask);
      },
    };
  },
};

export default mae;
