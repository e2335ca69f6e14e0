// Streaming conversion between any two formats: z-slab by z-slab, so that volumes larger than memory convert in
// bounded memory (lsmseg convert, convert-dataset).
import { castVoxels, createVolume, type DType, type OpenOptions, openVolume, type WriteOptions } from "./index.ts";
import { DTYPES } from "./volume.ts";
import { Progress } from "../util/progress.ts";

/** Streams `input` into `output` slab by slab. */
export async function convertVolume(
  input: string, output: string, o: { dtype?: DType; slabBytes?: number; write?: WriteOptions; quiet?: boolean; open?: OpenOptions } = {},
): Promise<void> {
  const src = await openVolume(input, o.open);
  try {
    const h = src.header;
    const dtype = o.dtype ?? h.dtype;
    const [nz, ny, nx] = h.shape;
    const planeBytes = ny * nx * Math.max(DTYPES[h.dtype].bytes, DTYPES[dtype].bytes);
    // a multiple of the Zarr chunk depth keeps slabs aligned with chunk layers
    const align = o.write?.chunks?.[0] ?? 64;
    let planes = Math.max(1, Math.floor((o.slabBytes ?? 256 * 2 ** 20) / planeBytes));
    if (planes > align) planes -= planes % align;
    const sink = await createVolume(output, { ...h, dtype }, o.write);
    const progress = new Progress(`convert ${input} → ${output}`, nz, { unit: "planes", silent: o.quiet });
    try {
      for (let z0 = 0; z0 < nz; z0 += planes) {
        const dz = Math.min(planes, nz - z0);
        const slab = await src.readRegion({ start: [z0, 0, 0], size: [dz, ny, nx] });
        await sink.writeSlab(castVoxels(slab.data, dtype));
        progress.tick(dz);
      }
      await sink.close();
      progress.finish();
    } catch (err) {
      await sink.abort();
      throw err;
    }
  } finally {
    await src.close();
  }
}
