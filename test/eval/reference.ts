// Slow, obvious references shared by the evaluation tests.
import type { Shape3 } from "../../src/eval/components.ts";

/** Connected components by flood fill from each unlabelled voxel in raster order (labels in order of first voxel). */
export function floodFill(mask: Uint8Array, shape: Shape3, connectivity: 6 | 18 | 26 = 26): { labels: Int32Array; count: number } {
  const [nz, ny, nx] = shape;
  const labels = new Int32Array(mask.length);
  let count = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start]) continue;
    labels[start] = ++count;
    const stack = [start];
    while (stack.length) {
      const i = stack.pop()!;
      const z = Math.floor(i / (ny * nx)), y = Math.floor(i / nx) % ny, x = i % nx;
      for (let dz = -1; dz <= 1; dz++) for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const order = Math.abs(dz) + Math.abs(dy) + Math.abs(dx);
        if ((connectivity === 6 && order > 1) || (connectivity === 18 && order > 2)) continue;
        const zz = z + dz, yy = y + dy, xx = x + dx;
        if (zz < 0 || yy < 0 || xx < 0 || zz >= nz || yy >= ny || xx >= nx) continue;
        const j = (zz * ny + yy) * nx + xx;
        if (mask[j] && !labels[j]) { labels[j] = count; stack.push(j); }
      }
    }
  }
  return { labels, count };
}
