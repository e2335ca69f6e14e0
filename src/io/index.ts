// Volume I/O by file name: readVolume/writeVolume for whole volumes, readRegion for a box, openVolume and
// createVolume for streaming slab by slab (volumes larger than memory).
//   .nii .nii.gz          NIfTI-1/2            .mha .mhd           MetaImage
//   .tif .tiff            multi-page / BigTIFF  folder of .tif     one file per z-plane (natural sort)
//   .zarr .ome.zarr       OME-Zarr 0.4 (Zarr v2) or 0.5 (Zarr v3), bioformats2raw, bare arrays; http(s) URLs
import { statSync } from "node:fs";
import { createMetaImage, openMetaImage, type MetaImageWriteOptions } from "./metaimage.ts";
import { createNifti, openNifti, type NiftiWriteOptions } from "./nifti.ts";
import { readAll, writeAll, type VolumeSink, type VolumeSource } from "./stream.ts";
import { createTiff, createTiffFolder, openTiff, openTiffFolder, type TiffWriteOptions } from "./tiff.ts";
import { type Box, type Volume, type VolumeHeader } from "./volume.ts";
import { createZarr, isUrl, isZarrDir, openZarr, type ZarrOpenOptions, type ZarrWriteOptions } from "./zarr.ts";

export * from "./volume.ts";
export type { SourceInfo, VolumeSink, VolumeSource } from "./stream.ts";
export { isUrl, ZARR_CODECS, type ZarrCodec } from "./zarr.ts";

/** Which image of a multi-image file to read: series, pyramid level (OME-Zarr), channel and time point. */
export type OpenOptions = ZarrOpenOptions;

export type VolumeFormat = "nifti" | "metaimage" | "tiff" | "tiff-folder" | "zarr";

export type WriteOptions = NiftiWriteOptions & MetaImageWriteOptions & TiffWriteOptions & ZarrWriteOptions;

/** The format a path names: by extension, or by content for a directory. */
export function formatOf(path: string): VolumeFormat {
  const p = path.toLowerCase().replace(/\/+$/, "");
  if (isUrl(path)) {
    if (/\.(nii(\.gz)?|mha|mhd|tiff?)$/.test(p)) throw new Error(`${path}: over HTTP(S) lsmseg reads OME-Zarr stores only; download the file first`);
    return "zarr";
  }
  if (p.endsWith(".nii") || p.endsWith(".nii.gz")) return "nifti";
  if (p.endsWith(".mha") || p.endsWith(".mhd")) return "metaimage";
  if (p.endsWith(".tif") || p.endsWith(".tiff") || p.endsWith(".btf") || p.endsWith(".tf8")) return "tiff";
  if (p.endsWith(".zarr")) return "zarr";
  let dir = false;
  try {
    dir = statSync(path).isDirectory();
  } catch {
    // a path that does not exist yet: a folder of TIFF planes when it has no extension
  }
  if (dir) return isZarrDir(path) ? "zarr" : "tiff-folder";
  if (!/\.[a-z0-9]+$/.test(p.split("/").pop() ?? "")) return "tiff-folder";
  throw new Error(`${path}: unknown volume format (expected .nii, .nii.gz, .mha, .mhd, .tif, .tiff, .zarr or a folder of .tif planes)`);
}

/** Opens a volume for streaming reads (any box, or z-slabs in order). */
export async function openVolume(path: string, o: OpenOptions = {}): Promise<VolumeSource> {
  const format = formatOf(path);
  if (format !== "zarr" && format !== "tiff") {
    for (const [k, v] of Object.entries(o)) if (v !== undefined) throw new Error(`${path}: --${k} applies to OME-Zarr and TIFF inputs, not ${format}`);
  }
  switch (format) {
    case "nifti": return openNifti(path);
    case "metaimage": return openMetaImage(path);
    case "tiff": return openTiff(path, o);
    case "tiff-folder": return openTiffFolder(path);
    case "zarr": return openZarr(path, o);
  }
}

/** Creates a volume for streaming writes: z-slabs in order, renamed into place on close. */
export async function createVolume(path: string, header: VolumeHeader, opts: WriteOptions = {}): Promise<VolumeSink> {
  switch (formatOf(path)) {
    case "nifti": return createNifti(path, header, opts);
    case "metaimage": return createMetaImage(path, header, opts);
    case "tiff": return createTiff(path, header, opts);
    case "tiff-folder": return createTiffFolder(path, header, opts);
    case "zarr": return createZarr(path, header, opts);
  }
}

/** Reads a whole volume. */
export async function readVolume(path: string, o: OpenOptions = {}): Promise<Volume> {
  return readAll(await openVolume(path, o));
}

/** Reads the box `box` (z, y, x) of a volume, reading as little of the file as its format allows. */
export async function readRegion(path: string, box: Box): Promise<Volume> {
  const source = await openVolume(path);
  try {
    return await source.readRegion(box);
  } finally {
    await source.close();
  }
}

/** Writes a whole volume (temporary name, then rename). */
export async function writeVolume(path: string, vol: Volume, opts: WriteOptions = {}): Promise<void> {
  await writeAll(await createVolume(path, vol, opts), vol);
}

/** Yields `source`'s z-slabs of at most `planes` planes, in order. */
export async function* slabs(source: VolumeSource, planes: number): AsyncGenerator<Volume & { z0: number }> {
  const [nz, ny, nx] = source.header.shape;
  for (let z0 = 0; z0 < nz; z0 += planes) {
    const dz = Math.min(planes, nz - z0);
    yield { ...(await source.readRegion({ start: [z0, 0, 0], size: [dz, ny, nx] })), z0 };
  }
}
