// One entry point for the segmentation networks: a config (plain object, saved with checkpoints)
// in, a network out. Pretraining and fine-tuning build the same network from the same config.
import { type ResEncUNetConfig, ResEncUNet } from "./resenc_unet.ts";
import { type SwinUNETRConfig, SwinUNETR } from "./swin_unetr.ts";
import { type UNETRConfig, UNETR } from "./unetr.ts";
import { type UNetConfig, UNet } from "./unet.ts";

export type NetworkConfig = UNetConfig | ResEncUNetConfig | UNETRConfig | SwinUNETRConfig;
export type SegNetwork = UNet | ResEncUNet | UNETR | SwinUNETR;

/** The architectures `--arch` accepts: two CNNs (nnU-Net's plain and residual-encoder U-Nets) and two transformers (MONAI's). */
export const ARCHS = ["unet", "resenc", "unetr", "swinunetr"] as const;
export type Arch = (typeof ARCHS)[number];
export const isArch = (s: string): s is Arch => (ARCHS as readonly string[]).includes(s);
/** The transformer architectures (SimMIM trains them; their input size is tied to the patch). */
export const isTransformer = (net: SegNetwork): net is UNETR | SwinUNETR => net instanceof UNETR || net instanceof SwinUNETR;

export function buildNetwork(config: Partial<NetworkConfig> & { arch: NetworkConfig["arch"] }): SegNetwork {
  if (config.arch === "unet") return new UNet(config as Partial<UNetConfig>);
  if (config.arch === "resenc") return new ResEncUNet(config as Partial<ResEncUNetConfig>);
  if (config.arch === "unetr") return new UNETR(config as Partial<UNETRConfig>);
  if (config.arch === "swinunetr") return new SwinUNETR(config as Partial<SwinUNETRConfig>);
  throw new Error(`unknown network architecture '${(config as { arch: string }).arch}' (expected ${ARCHS.join(", ")})`);
}
