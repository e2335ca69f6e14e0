// nnU-Net v2's plans (plans.json, or the copy a checkpoint carries in init_args) and dataset.json → the
// lsmseg plan of the same network: architecture (PlainConvUNet / ResidualEncoderUNet arch_kwargs, or the
// older UNet_class_name fields), patch size, batch size, spacing, normalisation, class count. What lsmseg
// cannot reproduce is refused with the field that says so: 2D configurations, transposed axes, region-based
// labels, normalisations other than ZScoreNormalization, dropout, other norms and non-linearities.
import type { NetworkConfig } from "../nn/networks.ts";
import type { Triple } from "../nn/layers.ts";
import type { Plan } from "../seg/plan.ts";

type Json = Record<string, unknown>;

const obj = (v: unknown, what: string): Json => {
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error(`${what}: expected an object`);
  return v as Json;
};
const ints = (v: unknown, what: string): number[] => {
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) throw new Error(`${what}: expected a list of integers, got ${JSON.stringify(v)}`);
  return v as number[];
};
const triples = (v: unknown, what: string): Triple[] => {
  if (!Array.isArray(v)) throw new Error(`${what}: expected a list of [z, y, x] triples`);
  return v.map((t, i) => {
    const a = ints(t, `${what}[${i}]`);
    if (a.length !== 3) throw new Error(`${what}[${i}]: [${a}] has ${a.length} axes; lsmseg's networks are 3D (a 2D configuration cannot be imported)`);
    return a as [number, number, number];
  });
};
const uniform = (v: unknown, n: number, what: string): number => {
  const a = typeof v === "number" ? Array(n).fill(v) as number[] : ints(v, what);
  if (a.length !== n) throw new Error(`${what}: ${a.length} entries for ${n} stages`);
  if (!a.every((x) => x === a[0])) throw new Error(`${what}: [${a}] differs between stages; lsmseg's networks have one count for all stages`);
  return a[0];
};

/** A configuration with its inherits_from chain resolved (nnU-Net's cascade configurations inherit 3d_fullres). */
function configuration(plans: Json, name: string, where: string): Json {
  const configs = obj(plans.configurations, `${where}: configurations`);
  const seen = new Set<string>();
  const resolve = (n: string): Json => {
    if (seen.has(n)) throw new Error(`${where}: configuration '${n}' inherits from itself`);
    seen.add(n);
    const c = configs[n];
    if (!c) throw new Error(`${where}: no configuration '${n}' (there are: ${Object.keys(configs).join(", ")})`);
    const cj = obj(c, `${where}: configurations.${n}`);
    return typeof cj.inherits_from === "string" ? { ...resolve(cj.inherits_from), ...cj } : cj;
  };
  return resolve(name);
}

/** The network of a configuration, in lsmseg's terms. */
function networkOf(c: Json, inChannels: number, numClasses: number, where: string): NetworkConfig {
  let cls: string, kw: Json;
  if (c.architecture) {
    const a = obj(c.architecture, `${where}: architecture`);
    cls = String(a.network_class_name);
    kw = obj(a.arch_kwargs, `${where}: architecture.arch_kwargs`);
  } else if (typeof c.UNet_class_name === "string") { // nnU-Net v2 before 2.4
    cls = c.UNet_class_name;
    const strides = c.pool_op_kernel_sizes as unknown[];
    const base = Number(c.UNet_base_num_features), cap = Number(c.unet_max_num_features);
    kw = {
      features_per_stage: strides.map((_, i) => Math.min(cap, base * 2 ** i)), kernel_sizes: c.conv_kernel_sizes, strides,
      n_conv_per_stage: c.n_conv_per_stage_encoder, n_blocks_per_stage: c.n_conv_per_stage_encoder,
      n_conv_per_stage_decoder: c.n_conv_per_stage_decoder,
      conv_bias: true, norm_op: "InstanceNorm3d", norm_op_kwargs: { eps: 1e-5, affine: true }, nonlin: "LeakyReLU", nonlin_kwargs: { inplace: true },
    };
  } else throw new Error(`${where}: the configuration names no architecture (neither architecture.network_class_name nor UNet_class_name)`);
  return networkFromNnUNetKwargs(cls, kw, inChannels, numClasses, where);
}

/** dynamic_network_architectures' class name and constructor kwargs (as plans.json and nnssl write them) → an lsmseg network. */
export function networkFromNnUNetKwargs(cls: string, kw: Json, inChannels: number, numClasses: number, where: string): NetworkConfig {
  const arch = cls.endsWith("PlainConvUNet") ? "unet" : cls.endsWith("ResidualEncoderUNet") ? "resenc" : null;
  if (!arch) throw new Error(`${where}: network class '${cls}' has no lsmseg counterpart (PlainConvUNet and ResidualEncoderUNet have)`);
  const features = ints(kw.features_per_stage, `${where}: features_per_stage`);
  const n = features.length;
  const kernelSizes = triples(kw.kernel_sizes, `${where}: kernel_sizes`);
  const strides = triples(kw.strides, `${where}: strides`);
  if (kernelSizes.some((k) => (k as number[]).some((x) => x % 2 === 0))) throw new Error(`${where}: kernel_sizes with an even size; lsmseg pads (k - 1) / 2 as nnU-Net does, for odd kernels`);
  const norm = String(kw.norm_op ?? "");
  if (!/InstanceNorm3d$/.test(norm)) throw new Error(`${where}: norm_op '${norm}'; lsmseg's key map covers InstanceNorm3d only`);
  const nk = (kw.norm_op_kwargs ?? {}) as Json;
  if (nk.affine === false) throw new Error(`${where}: norm_op_kwargs.affine is false; lsmseg's instance norms are affine`);
  if (nk.eps !== undefined && Math.abs(Number(nk.eps) - 1e-5) > 1e-12) throw new Error(`${where}: norm_op_kwargs.eps ${String(nk.eps)}; lsmseg's instance norm uses 1e-5`);
  if (kw.dropout_op) throw new Error(`${where}: dropout_op '${String(kw.dropout_op)}'; lsmseg's networks have no dropout`);
  const nonlin = String(kw.nonlin ?? "");
  if (!/LeakyReLU$/.test(nonlin)) throw new Error(`${where}: nonlin '${nonlin}'; lsmseg's U-Nets use LeakyReLU(0.01)`);
  const slope = (kw.nonlin_kwargs as Json | undefined)?.negative_slope;
  if (slope !== undefined && Number(slope) !== 0.01) throw new Error(`${where}: nonlin_kwargs.negative_slope ${String(slope)}; lsmseg's U-Nets use 0.01`);
  if (kw.conv_bias === false) throw new Error(`${where}: conv_bias false; lsmseg's up-convolutions and residual blocks always have biases`);
  if (kw.pool && kw.pool !== "conv") throw new Error(`${where}: pool '${String(kw.pool)}'; lsmseg downsamples with strided convolutions (pool 'conv')`);
  const common = { inChannels, numClasses, features, strides, kernelSizes, norm: "instance" as const, deepSupervision: true };
  const decoder = uniform(kw.n_conv_per_stage_decoder, n - 1, `${where}: n_conv_per_stage_decoder`);
  if (arch === "unet") {
    return { arch, ...common, convsPerStage: uniform(kw.n_conv_per_stage, n, `${where}: n_conv_per_stage`), convsPerStageDecoder: decoder, convBias: true, init: "nnunet" };
  }
  if (kw.block && !String(kw.block).endsWith("BasicBlockD")) throw new Error(`${where}: block '${String(kw.block)}'; lsmseg's residual encoder has BasicBlockD only`);
  if (kw.stem_channels !== undefined && kw.stem_channels !== null && kw.stem_channels !== features[0]) throw new Error(`${where}: stem_channels ${String(kw.stem_channels)}; lsmseg's stem has features[0] channels`);
  return { arch, ...common, blocksPerStage: ints(kw.n_blocks_per_stage, `${where}: n_blocks_per_stage`), convsPerStageDecoder: decoder, projectStridedShortcut: false };
}

/** The lsmseg plan of an nnU-Net configuration (plans.json + dataset.json). */
export function planFromNnUNet(plansRaw: unknown, datasetRaw: unknown, configName: string, where: string): Plan {
  const plans = obj(plansRaw, `${where}: plans`);
  const dataset = obj(datasetRaw, `${where}: dataset.json`);
  const tf = plans.transpose_forward as number[] | undefined;
  if (tf && tf.some((a, i) => a !== i)) throw new Error(`${where}: transpose_forward [${tf}]; nnU-Net transposed the axes of its inputs, which lsmseg does not (only [0, 1, 2] imports)`);
  const c = configuration(plans, configName, where);
  const labels = obj(dataset.labels, `${where}: dataset.json labels`);
  if (Object.values(labels).some((v) => Array.isArray(v))) throw new Error(`${where}: dataset.json labels are regions (lists); region-based training has sigmoid outputs, lsmseg's networks softmax classes`);
  const numClasses = Object.keys(labels).length;
  const channels = obj(dataset.channel_names ?? dataset.modality, `${where}: dataset.json channel_names`);
  const schemes = (c.normalization_schemes as string[] | undefined) ?? [];
  if (schemes.some((s) => s !== "ZScoreNormalization")) throw new Error(`${where}: normalization_schemes [${schemes}]; lsmseg reproduces ZScoreNormalization only`);
  if ((c.use_mask_for_norm as boolean[] | undefined)?.some(Boolean)) throw new Error(`${where}: use_mask_for_norm is set (z-score inside the nonzero region after cropping); lsmseg normalises the whole volume`);
  const patchSize = ints(c.patch_size, `${where}: patch_size`);
  if (patchSize.length !== 3) throw new Error(`${where}: patch_size [${patchSize}] is not 3D`);
  const network = networkOf(c, Object.keys(channels).length, numClasses, where);
  const spacing = (c.spacing as number[] | undefined) ?? [1, 1, 1];
  const median = (c.median_image_size_in_voxels as number[] | undefined) ?? patchSize;
  return {
    version: 1,
    patchSize: patchSize as [number, number, number],
    batchSize: Number(c.batch_size ?? 2),
    spacingUm: spacing.slice(0, 3) as [number, number, number],
    normalization: { scheme: "zscore", percentiles: [0, 100] },
    network,
    fingerprint: {
      cases: Number(dataset.numTraining ?? 0), medianShape: median.map(Number), minShape: median.map(Number),
      maxVoxelsPerPatch: patchSize.reduce((a, b) => a * b, 1),
    },
  };
}
