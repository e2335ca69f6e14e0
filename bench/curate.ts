// Curation speed: MB/s of uint16 raw data scanned (the overview pass reads everything; the tile pass reads the
// tissue again) and tiles/s, on a generated raw volume (TIFF plane folder) in os.tmpdir()/data/.
// With --reps N the curation runs N times after a warm-up run and the fastest run is reported (one long run by
// default: it already averages over thousands of tiles); the load average is recorded before and after.
//   npm run bench -- curate [--shape Z,Y,X] [--patch N] [--workers N] [--reps N]   defaults 200,1024,1024 (400 MB), 100, cores, 1
import { rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { curate } from "../src/curate/index.ts";
import type { Vec3 } from "../src/io/index.ts";
import { benchArgs, load, machine, round } from "./common.ts";
import { rawVolume } from "./raw_volume.ts";

const { values, reps } = benchArgs("curate", { shape: { type: "string", default: "200,1024,1024" }, patch: { type: "string", default: "100" }, workers: { type: "string", default: "" } }, 1);
const shape = values.shape.split(",").map(Number) as Vec3;
const patch = Number(values.patch);
const workers = Number(values.workers || availableParallelism());
const loadBefore = load();
const input = join(tmpdir(), "data", `bench_raw_${shape.join("x")}_cfos_neuron`);
const out = join(tmpdir(), "data", "bench_curate_out");
const t0 = performance.now();
await rawVolume(input, shape);
console.log(`raw volume ${input}: ${shape.join("×")} uint16, ${((shape[0] * shape[1] * shape[2] * 2) / 2 ** 20).toFixed(0)} MB (ready in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
let s: Awaited<ReturnType<typeof curate>> | null = null;
for (let r = 0; r < (reps > 1 ? reps + 1 : 1); r++) {
  rmSync(out, { recursive: true, force: true });
  const run = await curate({ inputs: [input], out, patch, workers, quiet: true });
  if (reps > 1 && r === 0) continue; // warm-up
  if (!s || run.seconds.total < s.seconds.total) s = run;
}
if (!s) throw new Error("curate: no run");
const mb = (shape[0] * shape[1] * shape[2] * 2) / 2 ** 20;
const read = s.volumes[0].tiles - s.rejected.background;
console.log(`machine: ${machine()}; workers ${workers}, patch ${patch}; ${reps > 1 ? `fastest of ${reps} runs after a warm-up` : "one run"}; load ${loadBefore[0]} → ${load()[0]}`);
console.log(`scan (overview, mask, normalisation): ${s.seconds.scan.toFixed(2)} s = ${(mb / s.seconds.scan).toFixed(0)} MB/s`);
console.log(`tiles: ${s.tiles} (${read} read and measured, kept ${s.kept}) in ${s.seconds.tiles.toFixed(2)} s = ${(s.tiles / s.seconds.tiles).toFixed(1)} tiles/s, ${(read / s.seconds.tiles).toFixed(1)} measured tiles/s`);
console.log(`whole run incl. summary and contact sheets: ${s.seconds.total.toFixed(2)} s = ${(mb / s.seconds.total).toFixed(0)} MB/s of raw volume`);
rmSync(out, { recursive: true, force: true });
console.log(JSON.stringify({
  bench: "curate", machine: machine(), shape, patch, workers, rawMB: round(mb, 1), tiles: s.tiles, measuredTiles: read, kept: s.kept,
  scanMBps: round(mb / s.seconds.scan, 1), tilesPerS: round(s.tiles / s.seconds.tiles, 2), measuredTilesPerS: round(read / s.seconds.tiles, 2),
  totalMBps: round(mb / s.seconds.total, 1), seconds: s.seconds, reps, load: { before: loadBefore, after: load() },
}));
