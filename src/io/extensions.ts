// The volume file extensions lsmseg reads and writes, and the format each one names: the one list behind io's
// reader dispatch (formatOf, isVolumeEntry) and the dataset folder's names (src/dataset/names.ts). No imports, so
// that name rules never load a reader.

export type VolumeFormat = "nifti" | "metaimage" | "tiff" | "tiff-folder" | "zarr";

/** Extension → format, longest first so that `.ome.tif` wins over `.tif` and `.ome.zarr` over `.zarr`. */
const FORMATS: ReadonlyArray<readonly [string, VolumeFormat]> = [
  [".ome.zarr", "zarr"], [".ome.tiff", "tiff"], [".ome.tif", "tiff"], [".nii.gz", "nifti"], [".nii", "nifti"],
  [".mha", "metaimage"], [".mhd", "metaimage"], [".tiff", "tiff"], [".tif", "tiff"], [".btf", "tiff"], [".tf8", "tiff"],
  [".zarr", "zarr"],
];

/** Every volume extension, longest first. */
export const VOLUME_EXTENSIONS: readonly string[] = FORMATS.map(([e]) => e);

/** The format a path's extension names (any case, trailing slashes ignored), or null for another extension. */
export function formatOfExtension(path: string): VolumeFormat | null {
  const p = path.toLowerCase().replace(/\/+$/, "");
  return FORMATS.find(([e]) => p.endsWith(e))?.[1] ?? null;
}

/** The volume extension of a file name (as written, keeping its case), or null when it is not a volume. */
export function volumeExtensionOf(fileName: string): string | null {
  const lower = fileName.toLowerCase();
  const ext = VOLUME_EXTENSIONS.find((e) => lower.endsWith(e) && lower.length > e.length);
  return ext ? fileName.slice(fileName.length - ext.length) : null;
}
