// The one interface every self-supervised method implements, and the registry that finds them: each
// method is one file in src/ssl/methods/ whose default export is an SslMethod, listed once in
// src/ssl/methods/index.ts (an explicit list, so compiled or bundled output finds them too).
import type { AugmentConfig } from "../data/augment.ts";
import type { Rng } from "../data/rng.ts";
import { Conv3d } from "../nn/layers.ts";
import { Module } from "../nn/module.ts";
import type { SegNetwork } from "../nn/networks.ts";
import type { Tensor } from "../torch/index.ts";

/** One batch as a method sees it: tensors for the network, the same voxels on the host for JS-side transforms. */
export interface SslBatch {
  /** [B, 1, D, H, W], normalised per volume */
  images: Tensor;
  /** [B, 1, D, H, W], a second, independently augmented view of the same crops (methods with views: 2) */
  images2: Tensor | null;
  /** images on the host, row-major [B, 1, D, H, W] */
  host: Float32Array;
  /** [B, D, H, W] */
  shape: [number, number, number, number];
}

/** What a method adds to the network for one run: its own modules and its loss. */
export interface SslObjective {
  /** Modules that exist only for pretraining (projectors, reconstruction heads); saved under "ssl." keys, which fine-tuning ignores. */
  heads: Module;
  /**
   * The scalar loss of one batch. Called inside a tidy() scope and, with bf16, inside autocast; `rng` is the
   * stream of this step (seed, step), so a resumed run draws the same masks and transforms.
   */
  loss(batch: SslBatch, rng: Rng): Tensor;
}

export interface SslMethod {
  name: string;
  /** One line for --help and logs. */
  describe: string;
  /** 2: the loader delivers two augmented views of every crop (contrastive methods). */
  views: 1 | 2;
  /** Augmentation the loader applies to the crops (null: plain crops; the method transforms them itself). */
  augment: AugmentConfig | null;
  /** The parts of the segmentation network the loss trains: only these are saved and transferred. */
  trains: ("encoder" | "decoder")[];
  /** A batch size that suits the method when the user gives none (contrastive losses want more negatives). */
  batchSize?: number;
  /** The method's own settings with their defaults (e.g. { maskRatio: 0.75 }), overridable by --opt key=value. */
  defaults: Record<string, number>;
  create(net: SegNetwork, options: Record<string, number>): SslObjective;
}

let cache: Map<string, SslMethod> | null = null;

/** Every method listed in src/ssl/methods/index.ts, by name (loaded on first use: they load libtorch). */
export async function sslMethods(): Promise<Map<string, SslMethod>> {
  if (cache) return cache;
  const { METHODS } = await import("./methods/index.ts");
  const found = new Map<string, SslMethod>();
  for (const [file, m] of Object.entries(METHODS)) {
    if (!m || typeof m.create !== "function" || typeof m.name !== "string") throw new Error(`src/ssl/methods/${file}.ts: the default export is not an SslMethod`);
    if (found.has(m.name)) throw new Error(`src/ssl/methods/${file}.ts: a second method named '${m.name}'`);
    found.set(m.name, m);
  }
  cache = found;
  return found;
}

/** The method called `name`, or an error listing the ones there are. */
export async function sslMethod(name: string): Promise<SslMethod> {
  const all = await sslMethods();
  const m = all.get(name);
  if (!m) throw new Error(`unknown SSL method '${name}' (available: ${[...all.keys()].join(", ")})`);
  return m;
}

/** A method's defaults overridden by `options`; unknown keys are an error naming the method's settings. */
export function methodOptions(m: SslMethod, options: Record<string, number> = {}): Record<string, number> {
  for (const k of Object.keys(options)) {
    if (!(k in m.defaults)) throw new Error(`${m.name}: unknown option '${k}' (settings: ${Object.keys(m.defaults).join(", ") || "none"})`);
  }
  return { ...m.defaults, ...options };
}

/** Keys of `net` that a method trains: the encoder, and the decoder without the segmentation heads (head, ds). */
export function trainedKeys(net: SegNetwork, parts: SslMethod["trains"]): string[] {
  const g = net.keyGroups();
  const decoder = g.decoder.filter((k) => !k.startsWith("head.") && !k.startsWith("ds."));
  return [...(parts.includes("encoder") ? g.encoder : []), ...(parts.includes("decoder") ? decoder : [])];
}

/** The full-resolution decoder features [B, f0, D, H, W] of x (the coarser levels are freed). */
export function decoderOutput(net: SegNetwork, x: Tensor): Tensor {
  const feats = net.decodeFeatures(net.encode(x));
  const last = feats.pop()!;
  for (const f of feats) f.dispose();
  return last;
}

/** The bottleneck's grid for a patch: patch / product of the strides, per axis. */
export function bottleneckShape(net: SegNetwork, patch: readonly number[]): [number, number, number] {
  const out = [...patch];
  for (const s of net.config.strides) {
    const t = Array.isArray(s) ? s : [s, s, s];
    for (let a = 0; a < 3; a++) {
      if (out[a] % t[a] !== 0) throw new Error(`patch ${patch.join("×")} is not divisible by the network's strides (axis ${a})`);
      out[a] /= t[a];
    }
  }
  return out as [number, number, number];
}

/** The reconstruction head: 1×1×1 conv from the full-resolution decoder features to one channel. */
export class ReconstructionHead extends Module {
  readonly recon: Conv3d;
  constructor(channels: number) {
    super();
    this.recon = this.child("recon", new Conv3d(channels, 1, 1));
  }
  forward(features: Tensor): Tensor {
    return this.recon.forward(features);
  }
}

