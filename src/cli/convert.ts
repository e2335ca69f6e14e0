// lsmseg convert IN OUT: between NIfTI, MetaImage, TIFF (file or plane folder) and OME-Zarr, streaming z-slab by
// z-slab so that volumes larger than memory convert in bounded memory.
import { intFlag, OVERWRITE_HELP, parseFlags, UsageError } from "./args.ts";
import { OPEN_FLAGS, OPEN_HELP, openOptions } from "./open-flags.ts";
import { convertVolume } from "../io/convert.ts";
import { type DType, isDType, prepareVolumeOutput, type WriteOptions, ZARR_CODECS, type ZarrCodec } from "../io/index.ts";
import { DTYPES } from "../io/volume.ts";

export { convertVolume };

const HELP = `usage: lsmseg convert IN OUT [--dtype D] [--slab-mb N] [--zarr-version 2|3] [--zarr-codec C] [--chunks Z,Y,X]
                      [--tiff-compression deflate|lzw|none] [--bigtiff] [--series N] [--level L]
                      [--channel C] [--time T] [--overwrite] [--quiet]

Formats by name: .nii .nii.gz .mha .mhd .tif .tiff .zarr (OME-Zarr) or a folder of z-plane .tif files
(an output path without extension); IN may be an http(s):// OME-Zarr URL. Reads and writes z-slabs of
about --slab-mb MB at a time. See docs/formats.md.
  --dtype             convert voxel type (uint8, int8, uint16, int16, uint32, int32, float32, float64)
  --slab-mb           memory per slab in MB                                     [256]
  --zarr-version      2 (OME-Zarr 0.4) or 3 (OME-Zarr 0.5)                       [2]
  --zarr-codec        Zarr chunk codec: blosc, zstd, zlib (v2 only), gzip, none  [zlib for v2, gzip for v3]
  --chunks            Zarr chunk shape                                          [64,64,64]
  --tiff-compression  TIFF compression                                          [deflate]
  --bigtiff           force BigTIFF
${OPEN_HELP}
${OVERWRITE_HELP}`;

export async function run(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, {
    dtype: { type: "string" }, "slab-mb": { type: "string" }, "zarr-version": { type: "string" }, chunks: { type: "string" },
    "tiff-compression": { type: "string" }, bigtiff: { type: "boolean" }, quiet: { type: "boolean" }, overwrite: { type: "boolean" },
    "zarr-codec": { type: "string" },
    ...OPEN_FLAGS,
  }, HELP, true);
  if (!parsed) return 0;
  const [input, output] = parsed.positionals;
  if (!input || !output || parsed.positionals.length > 2) throw new UsageError(`convert needs IN and OUT\n\n${HELP}`);
  const v = parsed.values;
  if (v.dtype !== undefined && !isDType(v.dtype)) throw new UsageError(`--dtype must be one of ${Object.keys(DTYPES).join(", ")}, got '${v.dtype}'`);
  const opts: WriteOptions = {};
  if (v["zarr-version"] !== undefined) {
    const zv = intFlag("zarr-version", v["zarr-version"], 2);
    if (zv !== 2 && zv !== 3) throw new UsageError("--zarr-version must be 2 or 3");
    opts.zarrVersion = zv;
  }
  if (v["zarr-codec"] !== undefined) {
    if (!ZARR_CODECS.includes(v["zarr-codec"] as ZarrCodec)) throw new UsageError(`--zarr-codec must be one of ${ZARR_CODECS.join(", ")}, got '${v["zarr-codec"]}'`);
    if (v["zarr-codec"] === "zlib" && opts.zarrVersion === 3) throw new UsageError("--zarr-codec zlib is Zarr v2 only; use gzip, zstd or blosc with --zarr-version 3");
    opts.zarrCompression = v["zarr-codec"] as ZarrCodec;
  }
  if (v.chunks) {
    const c = v.chunks.split(",").map(Number);
    if (c.length !== 3 || c.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`--chunks must be three positive integers Z,Y,X, got '${v.chunks}'`);
    opts.chunks = c as [number, number, number];
  }
  if (v["tiff-compression"]) {
    if (!["deflate", "lzw", "none"].includes(v["tiff-compression"])) throw new UsageError("--tiff-compression must be deflate, lzw or none");
    opts.tiffCompression = v["tiff-compression"] as WriteOptions["tiffCompression"];
  }
  if (v.bigtiff) opts.bigtiff = true;
  const slabMb = intFlag("slab-mb", v["slab-mb"], 256, { min: 1 });
  prepareVolumeOutput(output, { overwrite: v.overwrite });
  await convertVolume(input, output, {
    dtype: v.dtype as DType | undefined, slabBytes: slabMb * 2 ** 20, write: opts, quiet: v.quiet, open: openOptions(v),
  });
  return 0;
}
