// One entry point for the segmentation networks: a config (plain object, saved with checkpoints)
// in, a network out. Pretraining and fine-tuning build the same network from the same config.
import { type ResEncUNetConfig, RESENC_DEFAULTS, ResEncUNet } from "./resenc_unet.ts";
import { type UNetConfig, UNET_DEFAULTS, UNet } from "./unet.ts";

export type NetworkConfig = UNetConfig | ResEncUNetConfig;
export type SegNetwork = UNet | ResEncUNet;

export function buildNetwork(config: Partial<NetworkConfig> & { arch: NetworkConfig["arch"] }): SegNetwork {
  if (config.arch === "unet") return new UNet(config as Partial<UNetConfig>);
  if (config.arch === "resenc") return new ResEncUNet(config as Partial<ResEncUNetConfig>);
  throw new Error(`unknown network architecture '${(config as { arch: string }).arch}' (expected 'unet' or 'resenc')`);
}

export function defaultConfig(arch: NetworkConfig["arch"]): NetworkConfig {
  return arch === "unet" ? { ...UNET_DEFAULTS } : { ...RESENC_DEFAULTS };
}
