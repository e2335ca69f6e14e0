// Volume file names in a dataset folder: which names are volumes, and the case name a file stands for. The
// case name pairs images with labels and predictions with truths: the file name without its volume extension
// and, in nnU-Net's layout, without the channel suffix `_0000` (nnU-Net names images <case>_<channel>.<ext>,
// labels and predictions <case>.<ext>).

import { volumeExtensionOf } from "../io/extensions.ts";

/** The volume extensions are io's (the formats it reads), longest first. */
export { VOLUME_EXTENSIONS, volumeExtensionOf } from "../io/extensions.ts";

function baseName(path: string): string {
  return path.replace(/\/+$/, "").split(/[\\/]/).pop() ?? path;
}

/** The file name without its directory and volume extension, or null when it is not a volume file. */
export function stemOf(fileName: string): string | null {
  const base = baseName(fileName);
  const ext = volumeExtensionOf(base);
  return ext ? base.slice(0, base.length - ext.length) : null;
}

/** nnU-Net's channel suffix: `_` and four digits at the end of an image's stem. */
const CHANNEL_SUFFIX = /_(\d{4})$/;

/** The nnU-Net channel of an image stem (`case_0000` → 0), or null without the suffix. */
export function channelOf(stem: string): number | null {
  const m = CHANNEL_SUFFIX.exec(stem);
  return m ? Number(m[1]) : null;
}

/**
 * The case name of a file: its stem, without nnU-Net's channel suffix when `nnunet` (a file of imagesTr/ or
 * imagesTs/). The suffix is not stripped elsewhere, since SELMA3D ids have four digits too (cell_nuclei_2301).
 */
export function caseNameOf(fileName: string, nnunet = false): string {
  const stem = stemOf(fileName) ?? baseName(fileName);
  return nnunet ? stem.replace(CHANNEL_SUFFIX, "") : stem;
}

/** Whether a folder is one of nnU-Net's image folders, whose file names carry the channel suffix. */
export function isNnunetImageFolder(dir: string): boolean {
  return /^images(Tr|Ts)$/.test(baseName(dir));
}
