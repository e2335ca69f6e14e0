// Volume I/O by file name: readVolume/writeVolume for whole volumes, readRegion for a box, openVolume and
// createVolume for streaming slab by slab (volumes larger than memory).
//   .nii .nii.gz          NIfTI-1/2            .mha .mhd           MetaImage
//   .tif .tiff            multi-page / BigTIFF  folder of .tif     one file per z-plane (natural sort)
//   .zarr .ome.zarr       OME-Zarr 0.4 (Zarr v2) or 0.5 (Zarr v3), bioformats2raw, bare arrays; http(s) URLs
import { readdirSync, statSync } from "node:fs";
import { totalmem } from "node:os";
import { join } from "node:path";
import { createMetaImage, openMetaImage, type MetaImageWriteOptions } from "./metaimage.ts";
import { createNifti, openNifti, type NiftiWriteOptions } from "./nifti.ts";
import { readAll, writeAll, type VolumeSink, type VolumeSource } from "./stream.ts";
import { OutputExistsError, prepareOutput } from "../util/output.ts";
import { checkPlaneFolderOutput, createTiff, createTiffFolder, isPlaneName, openTiff, openTiffFolder, tiffPageCount, tiffPlaneFiles, type TiffWriteOptions } from "./tiff.ts";
import { type Box, DTYPES, type Volume, type VolumeHeader } from "./volume.ts";
import { formatOfExtension, type VolumeFormat } from "./extensions.ts";
import { createZarr, isUrl, isZarrDir, labelHostOf, openZarr, type ZarrOpenOptions, type ZarrWriteOptions } from "./zarr.ts";
import { fsError } from "../util/fserror.ts";

export * from "./volume.ts";
export type { SourceInfo, VolumeSink, VolumeSource } from "./stream.ts";
export { isUrl, ZARR_CODECS, type ZarrCodec } from "./zarr.ts";
export { VOLUME_EXTENSIONS, volumeExtensionOf, type VolumeFormat } from "./extensions.ts";

/** Which image of a multi-image file to read: series, pyramid level (OME-Zarr), channel and time point. */
export type OpenOptions = ZarrOpenOptions;

export type WriteOptions = NiftiWriteOptions & MetaImageWriteOptions & TiffWriteOptions & ZarrWriteOptions;

/** The format a path names: by extension, or by content for a directory. */
export function formatOf(path: string): VolumeFormat {
  const p = path.toLowerCase().replace(/\/+$/, "");
  const byExtension = formatOfExtension(p);
  if (isUrl(path)) {
    if (byExtension !== null && byExtension !== "zarr") throw new Error(`${path}: over HTTP(S) lsmseg reads OME-Zarr stores only; download the file first`);
    return "zarr";
  }
  if (byExtension !== null) return byExtension;
  let dir = false;
  try {
    dir = statSync(path).isDirectory();
  } catch (err) {
    // a path that does not exist yet: a folder of TIFF planes when it has no extension; any other error is said
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ENOTDIR") throw fsError(path, err);
  }
  if (dir) return isZarrDir(path) ? "zarr" : "tiff-folder";
  if (labelHostOf(path)) return "zarr"; // IMAGE.zarr/labels/NAME: a label into an existing OME-Zarr image
  if (!/\.[a-z0-9]+$/.test(p.split("/").pop() ?? "")) return "tiff-folder";
  throw new Error(`${path}: unknown volume format (expected .nii, .nii.gz, .mha, .mhd, .tif, .tiff, .zarr or a folder of .tif planes)`);
}

/**
 * Whether `path` is a folder of z-plane TIFFs, which is ONE volume: a folder (not a Zarr) whose first TIFF in
 * natural order holds a single page. A folder of multi-page TIFF volumes (a dataset's images/) is not one.
 */
export function isPlaneFolder(path: string): boolean {
  try {
    if (!statSync(path).isDirectory() || path.toLowerCase().replace(/\/+$/, "").endsWith(".zarr") || isZarrDir(path)) return false;
    const planes = tiffPlaneFiles(path);
    return planes.length > 0 && tiffPageCount(join(path, planes[0])) === 1;
  } catch {
    return false;
  }
}

/** Whether a folder entry is one volume: a volume file, a Zarr folder or a TIFF plane folder (listVolumes, evaluate, inspect). */
export function isVolumeEntry(path: string, isDirectory: boolean): boolean {
  const format = formatOfExtension(path);
  return isDirectory ? format === "zarr" || isZarrDir(path) || isPlaneFolder(path) : format !== null && format !== "zarr";
}

/**
 * The volumes a path names: itself when it is one (a file, a Zarr, a TIFF plane folder), else the volumes in
 * the folder (volume files, Zarr folders and plane folders; hidden and temporary entries skipped), sorted.
 */
export function listVolumes(path: string): string[] {
  if (isUrl(path)) return [path];
  const st = statSync(path);
  if (!st.isDirectory() || path.toLowerCase().replace(/\/+$/, "").endsWith(".zarr") || isZarrDir(path) || isPlaneFolder(path)) return [path];
  const out: string[] = [];
  for (const e of readdirSync(path, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name.startsWith(".")) continue;
    const p = join(path, e.name);
    if (isVolumeEntry(p, e.isDirectory())) out.push(p);
  }
  return out;
}

/**
 * Checks a volume output before any work (src/util/output.ts): stale temporary files beside it are removed,
 * its parent is created, and an existing output is refused unless `overwrite`. Even then a plane folder may
 * hold only lsmseg's planes (other files stay; another TIFF refuses), and an existing .zarr must be a Zarr.
 */
export function prepareVolumeOutput(path: string, o: { overwrite?: boolean; flag?: string } = {}): void {
  const f = formatOf(path);
  const folder = f === "tiff-folder" || f === "zarr";
  prepareOutput(path, { kind: folder ? "folder" : "file", overwrite: o.overwrite, flag: o.flag, owns: isPlaneName, exclusive: false });
  if (f === "tiff-folder") checkPlaneFolderOutput(path);
  if (f === "zarr" && o.overwrite) {
    let st = null;
    try { st = statSync(path); } catch { /* not there yet */ }
    if (st?.isDirectory() && readdirSync(path).length && !isZarrDir(path)) throw new OutputExistsError(`${path}: is a folder but not a Zarr; lsmseg replaces only a Zarr it can recognise, so choose another name`);
  }
}

/** The largest size along one axis lsmseg accepts from a header (typed arrays and TIFF index below 2³¹). */
export const MAX_DIMENSION = 2 ** 31 - 1;

/** Refuses a header whose shape no reader or writer can hold (a damaged or hostile header), before any allocation. */
export function checkHeaderShape(path: string, h: VolumeHeader): void {
  if (h.shape.length !== 3 || h.shape.some((n) => !Number.isInteger(n) || n < 1 || n > MAX_DIMENSION)) {
    throw new Error(`${path}: the header's shape ${h.shape.join("×")} is not three sizes from 1 to ${MAX_DIMENSION}`);
  }
  const voxels = h.shape[0] * h.shape[1] * h.shape[2];
  if (voxels > Number.MAX_SAFE_INTEGER / 8) throw new Error(`${path}: the header's shape ${h.shape.join("×")} has ${voxels.toExponential(2)} voxels, more than any volume lsmseg can process`);
}

/** Opens a volume for streaming reads (any box, or z-slabs in order). */
export async function openVolume(path: string, o: OpenOptions = {}): Promise<VolumeSource> {
  const source = await openSource(path, o);
  try {
    checkHeaderShape(path, source.header);
  } catch (err) {
    await source.close();
    throw err;
  }
  return source;
}

async function openSource(path: string, o: OpenOptions): Promise<VolumeSource> {
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

/** Reads a whole volume; refused, with the numbers, when it cannot fit in this machine's memory. */
export async function readVolume(path: string, o: OpenOptions = {}): Promise<Volume> {
  const source = await openVolume(path, o);
  const h = source.header;
  const bytes = h.shape[0] * h.shape[1] * h.shape[2] * DTYPES[h.dtype].bytes;
  if (bytes > totalmem()) {
    await source.close();
    const gb = (b: number) => `${(b / 2 ** 30).toFixed(1)} GB`;
    throw new Error(`${path}: the volume (${h.shape.join("×")} ${h.dtype}) needs ${gb(bytes)} in memory, but this machine has ${gb(totalmem())}`);
  }
  return readAll(source);
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
