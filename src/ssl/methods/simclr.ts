// Contrastive pretraining, SimCLR (Chen et al. 2020): two independently augmented views of each crop go
// through the encoder; the bottleneck is pooled and projected by a 2-layer MLP, and the NT-Xent
// loss pulls each view towards its partner and away from the other 2N − 2 views of the batch. Only the
// encoder is trained (the decoder is left to fine-tuning).
// Pooling is average and max, concatenated: in a plain U-Net the bottleneck ends in instance norm + LeakyReLU,
// so its spatial mean is nearly the same for every input (each channel was just normalised to mean 0, std 1)
// and average pooling alone gives every view the same embedding (the loss sits at log(2N − 1) and never moves).
import { augmentConfig } from "../../data/augment.ts";
import { BatchNorm3d, Linear, ReLU } from "../../nn/layers.ts";
import { Module, Sequential } from "../../nn/module.ts";
import type { SegNetwork } from "../../nn/networks.ts";
import { type Tensor, cat, crossEntropy, tensor } from "../../torch/index.ts";
import type { SslMethod } from "../method.ts";

export class Projector extends Module {
  readonly mlp: Sequential;
  constructor(channels: number, hidden: number, out: number) {
    super();
    this.mlp = this.child("mlp", new Sequential(new Linear(2 * channels, hidden), new BatchNorm3d(hidden), new ReLU(), new Linear(hidden, out)));
  }
  /** bottleneck: [B, C, d, h, w] → embedding [B, out] */
  forward(bottleneck: Tensor): Tensor {
    return this.mlp.forward(cat([bottleneck.mean([2, 3, 4]), bottleneck.amax([2, 3, 4])], 1));
  }
}

/**
 * NT-Xent (normalised temperature-scaled cross-entropy) of paired embeddings z1, z2: [N, d]. With
 * z = normalise([z1; z2]) and s_ij = z_i·z_j / τ, the loss of view i with partner p(i) is
 * −log( exp(s_i,p(i)) / Σ_{k≠i} exp(s_ik) ), averaged over all 2N views.
 */
export function ntXent(z1: Tensor, z2: Tensor, temperature: number): Tensor {
  const n = z1.shape[0];
  const z = cat([z1, z2], 0).float();
  const zn = z.div(z.norm(2, 1, true).clamp(1e-12));
  const eye = new Float32Array(4 * n * n);
  for (let i = 0; i < 2 * n; i++) eye[i * 2 * n + i] = 1;
  // self-similarity is excluded by pushing it to −1e9 before the softmax
  const sim = zn.matmul(zn.T).div(temperature).sub(tensor(eye, [2 * n, 2 * n]).to(z.device).mul(1e9));
  const partner = new BigInt64Array(2 * n);
  for (let i = 0; i < n; i++) { partner[i] = BigInt(i + n); partner[i + n] = BigInt(i); }
  return crossEntropy(sim, tensor(partner, [2 * n]).to(z.device));
}

/** The deepest encoder output of x (the shallower skips are freed). */
export function bottleneck(net: SegNetwork, x: Tensor): Tensor {
  const skips = net.encode(x);
  const last = skips.pop()!;
  for (const s of skips) s.dispose();
  return last;
}

const simclr: SslMethod = {
  name: "simclr",
  describe: "contrastive (SimCLR): NT-Xent on two augmented views, encoder bottleneck → avg+max pool → 2-layer MLP",
  views: 2,
  // stronger than segmentation augmentation: the views must differ for the contrast to teach anything
  augment: augmentConfig({
    pRotation: 0.5, pScale: 0.5, pNoise: 0.3, pBlur: 0.3, pBrightness: 0.5, pContrast: 0.5, pGamma: 0.5, pMirror: 0.5, pLowRes: 0.2,
  }),
  trains: ["encoder"],
  batchSize: 4,
  defaults: { temperature: 0.2, hidden: 256, projDim: 128 },
  create(net: SegNetwork, o: Record<string, number>) {
    const f = net.config.features;
    const heads = new Projector(f[f.length - 1], o.hidden, o.projDim);
    return {
      heads,
      loss(batch) {
        if (!batch.images2) throw new Error("simclr: the loader gave one view; it needs two (views: 2)");
        const b = batch.shape[0];
        // both views in one pass: [2B, 1, D, H, W]; instance norm keeps the samples independent
        const z = heads.forward(bottleneck(net, cat([batch.images, batch.images2], 0))).float();
        const [z1, z2] = z.split(b, 0);
        return ntXent(z1, z2, o.temperature);
      },
    };
  },
};

export default simclr;
