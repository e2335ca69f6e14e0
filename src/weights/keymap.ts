// Key maps between lsmseg's networks and other frameworks' state dicts. A key map is a list of entries in
// the target's state-dict order: the target's key, the lsmseg key holding the same tensor, and whether the
// target key is an alias (the same tensor again, as dynamic_network_architectures' ConvDropoutNormReLU
// registers conv/norm twice: as .conv/.norm and inside .all_modules, and its UNetDecoder holds the encoder, so
// every encoder tensor appears under decoder.encoder.* too). Import reads primary keys and checks that each
// alias holds the same values; export writes every key, aliases sharing their primary's storage.
import type { NetworkConfig } from "../nn/networks.ts";
import type { ResEncUNetConfig } from "../nn/resenc_unet.ts";
import type { UNetConfig } from "../nn/unet.ts";

export interface KeyEntry {
  target: string;
  lsmseg: string;
  alias: boolean;
}

const isOne = (s: number | number[]) => (Array.isArray(s) ? s.every((v) => v === 1) : s === 1);

/** Which parts of an lsmseg network a dynamic_network_architectures U-Net can hold. */
function checkDnaCompatible(cfg: NetworkConfig, where: string): asserts cfg is UNetConfig | ResEncUNetConfig {
  if (cfg.arch !== "unet" && cfg.arch !== "resenc") throw new Error(`${where}: architecture '${cfg.arch}' has no key map to nnU-Net (only unet and resenc do)`);
  if (cfg.norm !== "instance") throw new Error(`${where}: norm '${cfg.norm}' has no key map to nnU-Net (its networks use affine InstanceNorm3d)`);
  if (cfg.arch === "unet" && !cfg.convBias) throw new Error(`${where}: a U-Net without conv biases: lsmseg's up-convolutions always have one, nnU-Net's follow conv_bias; no key map`);
}

/**
 * ConvDropoutNormReLU's keys: conv, norm, then all_modules.<i> repeating them (conv at 0, the optional
 * dropout at 1 (no parameters), then the norm).
 */
function convNormKeys(out: KeyEntry[], prefix: string, conv: string, norm: string, convBias: boolean, dropout = false): void {
  const params = (from: string, to: string, names: string[], alias: boolean) => {
    for (const n of names) out.push({ target: `${prefix}.${to}.${n}`, lsmseg: `${from}.${n}`, alias });
  };
  const convParams = convBias ? ["weight", "bias"] : ["weight"];
  params(conv, "conv", convParams, false);
  params(norm, "norm", ["weight", "bias"], false);
  params(conv, "all_modules.0", convParams, true);
  params(norm, `all_modules.${dropout ? 2 : 1}`, ["weight", "bias"], true);
}

/** The decoder of dynamic_network_architectures' UNetDecoder after its copy of the encoder's keys. */
function decoderKeys(
  out: KeyEntry[], encoder: KeyEntry[], nStages: number, convsPerStage: number, convBias: boolean, deepSupervision: boolean,
): void {
  for (const e of encoder) out.push({ target: `decoder.${e.target}`, lsmseg: e.lsmseg, alias: true });
  for (let j = 0; j < nStages - 1; j++) {
    for (let i = 0; i < convsPerStage; i++) convNormKeys(out, `decoder.stages.${j}.convs.${i}`, `dec.${j}.${3 * i}`, `dec.${j}.${3 * i + 1}`, convBias);
  }
  for (let j = 0; j < nStages - 1; j++) for (const n of ["weight", "bias"]) out.push({ target: `decoder.transpconvs.${j}.${n}`, lsmseg: `up.${j}.${n}`, alias: false });
  // seg_layers exist for every decoder stage (nnU-Net builds them all so that either setting loads); the last is the full-resolution head
  for (let j = 0; j < nStages - 1; j++) {
    const ls = j === nStages - 2 ? "head" : deepSupervision ? `ds.${j}` : null;
    if (ls) for (const n of ["weight", "bias"]) out.push({ target: `decoder.seg_layers.${j}.${n}`, lsmseg: `${ls}.${n}`, alias: false });
  }
}

/** lsmseg UNet ↔ dynamic_network_architectures PlainConvUNet (pool 'conv', InstanceNorm, LeakyReLU, no dropout). */
function plainConvUNetKeys(cfg: UNetConfig): KeyEntry[] {
  const encoder: KeyEntry[] = [];
  for (let s = 0; s < cfg.features.length; s++) {
    for (let i = 0; i < cfg.convsPerStage; i++) convNormKeys(encoder, `encoder.stages.${s}.0.convs.${i}`, `enc.${s}.${3 * i}`, `enc.${s}.${3 * i + 1}`, cfg.convBias);
  }
  const out = [...encoder];
  decoderKeys(out, encoder, cfg.features.length, cfg.convsPerStageDecoder, cfg.convBias, cfg.deepSupervision);
  return out;
}

/** lsmseg ResEncUNet ↔ dynamic_network_architectures ResidualEncoderUNet (BasicBlockD, stem of one conv). */
function residualEncoderUNetKeys(cfg: ResEncUNetConfig): KeyEntry[] {
  const encoder: KeyEntry[] = [];
  convNormKeys(encoder, "encoder.stem.convs.0", "encoder.stem.0", "encoder.stem.1", true);
  const f = cfg.features;
  for (let s = 0; s < f.length; s++) {
    for (let b = 0; b < cfg.blocksPerStage[s]; b++) {
      const t = `encoder.stages.${s}.blocks.${b}`, l = `encoder.stages.${s}.${b}`;
      convNormKeys(encoder, `${t}.conv1`, `${l}.conv1`, `${l}.norm1`, true);
      convNormKeys(encoder, `${t}.conv2`, `${l}.conv2`, `${l}.norm2`, true);
      const cin = b === 0 ? (s === 0 ? f[0] : f[s - 1]) : f[s];
      const strided = b === 0 && !isOne(cfg.strides[s]);
      const projected = cin !== f[s] || (strided && cfg.projectStridedShortcut !== false);
      if (projected && cin === f[s]) throw new Error(`stage ${s}: lsmseg's shortcut projects a strided block of ${cin} → ${cin} channels, nnU-Net's BasicBlockD only pools there (build with projectStridedShortcut: false)`);
      if (projected) convNormKeys(encoder, `${t}.skip.${strided ? 1 : 0}`, `${l}.skip.${strided ? 1 : 0}`, `${l}.skip.${strided ? 2 : 1}`, false);
    }
  }
  const out = [...encoder];
  decoderKeys(out, encoder, f.length, cfg.convsPerStageDecoder, true, cfg.deepSupervision);
  return out;
}

/** The key map of dynamic_network_architectures' class for an lsmseg network. */
export function dnaKeys(cfg: NetworkConfig, where: string): KeyEntry[] {
  checkDnaCompatible(cfg, where);
  return cfg.arch === "unet" ? plainConvUNetKeys(cfg) : residualEncoderUNetKeys(cfg);
}

/** dynamic_network_architectures' class name for an lsmseg architecture. */
export const DNA_CLASS = {
  unet: "dynamic_network_architectures.architectures.unet.PlainConvUNet",
  resenc: "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
} as const;
