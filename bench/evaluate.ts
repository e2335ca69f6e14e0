// Evaluation speed: N synthetic 200³ cases (the challenge's patch size; contiguous and isolated types in
// turn, the prediction an eroded, shifted, speckled copy of the truth), scored by lsmseg evaluate in one
// thread and with its worker pool, and in the same run by the Python reference of the challenge's
// metrics (fixtures/eval/make_metric_fixtures.py: numpy + scikit-image, single-threaded as the
// challenge's code is), skipped with a note when python3-skimage or python3-nibabel is absent. Both read
// the same .nii.gz files. The numbers are compared as well as the times. The shared method (bench/common.ts): a
// warm-up, then interleaved repetitions of lsmseg (one thread, and its worker pool) and the Python reference (as
// shipped, and with lsmseg's heap settings); `ratio` is lsmseg in one thread over the fair reference, minima.
//   npm run bench -- evaluate [N] [SIDE] [--reps 5]
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { evaluateFolder, type MetricsJson } from "../src/eval/evaluate.ts";
import { makeVolume, writeVolume, type Vec3 } from "../src/io/index.ts";
import { makeCanvas, Rng, structureType } from "../src/synth/index.ts";
import { Peer, benchArgs, compare, load, machine, round, seconds } from "./common.ts";

const { positionals, reps } = benchArgs("evaluate", {});
const n = Number(positionals[0] ?? 6);
const side = Number(positionals[1] ?? 200);
const shape: Vec3 = [side, side, side];
const TYPES = ["blood_vessel", "cell_nuclei", "gutnerve", "microglia", "lymphatic_vessel", "AD_plaques", "peripheral_nerve", "cfos_neuron"];
const dir = mkdtempSync(join(tmpdir(), "lsmseg-bench-evaluate-"));
const gtDir = join(dir, "gt"), predDir = join(dir, "pred");
mkdirSync(gtDir);
mkdirSync(predDir);

console.log(`evaluate: ${n} cases of ${side}³ (${TYPES.slice(0, Math.min(n, TYPES.length)).join(", ")}${n > TYPES.length ? ", …" : ""}); ${machine()}, node ${process.version}; load ${load().join(" ")}`);
const [nz, ny, nx] = shape;
for (let k = 0; k < n; k++) {
  const type = TYPES[k % TYPES.length];
  const rng = new Rng(`bench/evaluate/${k}`);
  const cv = makeCanvas(shape);
  structureType(type).draw(rng, cv);
  const gt = cv.label;
  // prediction: keep voxels whose x-neighbours are set, shift one voxel along y, add sparse speckle
  const pred = new Uint8Array(gt.length);
  for (let z = 0; z < nz; z++) for (let y = 1; y < ny; y++) for (let x = 1; x < nx - 1; x++) {
    const i = (z * ny + y - 1) * nx + x;
    if (gt[i] && gt[i - 1] && gt[i + 1]) pred[(z * ny + y) * nx + x] = 1;
  }
  for (let i = 0; i < pred.length; i++) if (rng.uniform(0, 1) < 2e-5) pred[i] = 1;
  const name = `${type}_${String(k + 1).padStart(4, "0")}.nii.gz`;
  await writeVolume(join(gtDir, name), makeVolume("uint8", shape, [1, 1, 1], gt.map((v) => (v > 0 ? 1 : 0))));
  await writeVolume(join(predDir, name), makeVolume("uint8", shape, [1, 1, 1], pred));
}

const pool = Math.min(availableParallelism(), 8, n);
let metrics: MetricsJson | null = null;
const one = () => seconds(async () => { metrics = await evaluateFolder(predDir, gtDir, { workers: 1, quiet: true }); });
const withPool = () => seconds(() => evaluateFolder(predDir, gtDir, { workers: pool, quiet: true }));
const needs = ["numpy", "scipy", "skimage", "nibabel"];
const peer = await Peer.start("Python reference", "evaluate", [predDir, gtDir], { needs, anchors: false });
const fair = peer ? await Peer.start("Python reference (fair)", "evaluate", [predDir, gtDir], { needs, anchors: false, fair: true }) : null;
const c = await compare("evaluate", one, peer, fair, reps, { others: [{ label: `lsmseg_${pool}workers`, rep: withPool }] });
peer?.close();
fair?.close();
const m = metrics as MetricsJson | null;
const perCase = (s: number) => `${((s / n) * 1000).toFixed(0)} ms/case`;
const poolTimes = c.others![`lsmseg_${pool}workers`];
console.log(`  lsmseg, 1 thread: ${perCase(c.lsmseg.min)} at the minimum; ${pool} workers: ${perCase(poolTimes.min)}; 96 cases would take about ${((poolTimes.min / n) * 96).toFixed(0)} s`);
if (m) {
  const slowest = [...m.results].sort((a, b) => b.seconds - a.seconds).slice(0, 3);
  console.log(`  slowest cases (1 thread, last repetition): ${slowest.map((r) => `${r.case} ${r.seconds.toFixed(2)} s`).join(", ")}`);
}
const results: Record<string, unknown> = { cases: n, side, reps, workers: pool, ...c };
const ref = (fair ?? peer)?.last as { cases: Record<string, [number | null, number]> } | null | undefined;
if (ref && m) {
  let maxDiff = 0;
  for (const r of m.results) {
    const [other, d] = ref.cases[r.case];
    const mine = r.cldice ?? r.panoptic_quality!;
    const diff = other === null ? (Number.isNaN(mine) ? 0 : Infinity) : Math.abs(mine - other);
    maxDiff = Math.max(maxDiff, diff, Math.abs(r.dice - d));
  }
  console.log(`  largest difference in any case's numbers (lsmseg vs Python): ${maxDiff}`);
  results.max_abs_diff = maxDiff;
  if (c.peer_fair) results.ratio_pool = round(poolTimes.min / c.peer_fair.min, 3);
}
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ bench: "evaluate", ...results, machine: machine() }));
