// Layers and networks.
export * from "./module.ts";
export * from "./layers.ts";
export * from "./init.ts";
export * from "./unet.ts";
export * from "./resenc_unet.ts";
export * from "./unetr.ts";
export * from "./networks.ts";
