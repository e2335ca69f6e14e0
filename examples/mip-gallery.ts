// Pictures for the README: for one synthetic patch of every structure type, the maximum-intensity projection
// of the image beside that of its label, as PNG under docs/img/.
//   npx tsx examples/mip-gallery.ts [OUTDIR] [SIZE]
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../src/util/atomic.ts";
import { encodePngGray, mipZ, toGray } from "../src/io/png.ts";
import { makeVolume } from "../src/io/volume.ts";
import { STRUCTURES, drawSpecimen, Rng, synthPatch } from "../src/synth/index.ts";

const outDir = process.argv[2] ?? "docs/img";
const size = Number(process.argv[3] ?? 96);
mkdirSync(outDir, { recursive: true });
for (const t of STRUCTURES) {
  const specimen = drawSpecimen(new Rng(`gallery/specimen/${t.name}`));
  const shape: [number, number, number] = [size / 2, size, size];
  const p = synthPatch(0, t, specimen, `gallery/${t.name}`, shape);
  const img = toGray(mipZ(makeVolume("uint16", shape, [1, 1, 1], p.image)));
  const lab = toGray(mipZ(makeVolume("uint8", shape, [1, 1, 1], p.label)), 0, 100);
  // image | 2-pixel gap | label
  const w = 2 * size + 2;
  const px = new Uint8Array(w * size).fill(255);
  for (let y = 0; y < size; y++) {
    px.set(img.subarray(y * size, (y + 1) * size), y * w);
    px.set(lab.subarray(y * size, (y + 1) * size), y * w + size + 2);
  }
  writeFileAtomic(join(outDir, `mip_${t.name}.png`), encodePngGray(px, w, size));
  console.log(`${outDir}/mip_${t.name}.png  ${t.category} ${t.density} (${t.role})`);
}
