// Evaluation speed: N synthetic 200³ cases (the challenge's patch size; contiguous and isolated types in
// turn, the prediction an eroded, shifted, speckled copy of the truth), scored by lsmseg evaluate in one
// thread and with its worker pool, and in the same run by the Python reference of the challenge's
// metrics (fixtures/eval/make_metric_fixtures.py: numpy + scikit-image, single-threaded as the
// challenge's code is), skipped with a note when python3-skimage or python3-nibabel is absent. Both read
// the same .nii.gz files. The numbers are compared as well as the times. The shared method (bench/common.ts): a
// warm-up, then interleaved repetitions of lsmseg (one thread, and its worker pool) and the Python reference (as
// shipped, and with lsmseg's heap settings); `ratio` is lsmseg in one thread over the fair reference, minima.
// Then the whole processes on a folder of many small cases (--small N of 64³, 0 to skip): `lsmseg evaluate` against
// bench/evaluate_peer.py, each started afresh (results.process).
//   npm run bench -- evaluate [N] [SIDE] [--reps 5] [--small 48]
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { evaluateFolder, type MetricsJson } from "../src/eval/evaluate.ts";
import { makeVolume, writeVolume, type Vec3 } from "../src/io/index.ts";
import { makeCanvas, Rng, structureType } from "../src/synth/index.ts";
import { FAIR_GLIBC_TUNABLES, Peer, benchArgs, compare, interleave, load, machine, peerPython, root, round, seconds } from "./common.ts";

const { positionals, values, reps } = benchArgs("evaluate", { small: { type: "string", default: "48" } });
const n = Number(positionals[0] ?? 6);
const side = Number(positionals[1] ?? 200);
const small = Number(values.small);
const TYPES = ["blood_vessel", "cell_nuclei", "gutnerve", "microglia", "lymphatic_vessel", "AD_plaques", "peripheral_nerve", "cfos_neuron"];
const dir = mkdtempSync(join(tmpdir(), "lsmseg-bench-evaluate-"));
const gtDir = join(dir, "gt"), predDir = join(dir, "pred");

/** `count` cases of side³ in `at`/gt and `at`/pred: the structure types in turn, the prediction an eroded, shifted, speckled truth. */
async function writeCases(at: string, count: number, sideVoxels: number): Promise<void> {
  mkdirSync(join(at, "gt"), { recursive: true });
  mkdirSync(join(at, "pred"), { recursive: true });
  const shape: Vec3 = [sideVoxels, sideVoxels, sideVoxels];
  const [nz, ny, nx] = shape;
  for (let k = 0; k < count; k++) {
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
    await writeVolume(join(at, "gt", name), makeVolume("uint8", shape, [1, 1, 1], gt.map((v) => (v > 0 ? 1 : 0))));
    await writeVolume(join(at, "pred", name), makeVolume("uint8", shape, [1, 1, 1], pred));
  }
}

console.log(`evaluate: ${n} cases of ${side}³ (${TYPES.slice(0, Math.min(n, TYPES.length)).join(", ")}${n > TYPES.length ? ", …" : ""}); ${machine()}, node ${process.version}; load ${load().join(" ")}`);
await writeCases(dir, n, side);

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
if (small > 0 && peer) results.process = await wholeProcesses(small);
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ bench: "evaluate", ...results, machine: machine() }));

/**
 * The whole processes on a folder of `count` small cases (64³): `lsmseg evaluate` (compiled dist/, built here when
 * stale, as an installed lsmseg runs; its default workers, and one thread) against bench/evaluate_peer.py (the
 * reference's imports, metrics and aggregates, as shipped and with lsmseg's heap settings), each started afresh.
 */
async function wholeProcesses(count: number): Promise<Record<string, unknown>> {
  const at = join(dir, "small");
  await writeCases(at, count, 64);
  const build = spawnSync(process.execPath, [join(root, "scripts", "build.mjs"), "--if-stale"], { stdio: ["ignore", "ignore", "inherit"] });
  if (build.status !== 0) throw new Error("bench evaluate: scripts/build.mjs --if-stale failed");
  const out = join(at, "metrics.json");
  const lsmseg = (...extra: string[]) => [process.execPath, join(root, "bin", "lsmseg.js"), "evaluate", "--pred", join(at, "pred"), "--gt", join(at, "gt"), "--out", out, ...extra];
  const python = [peerPython(), join(root, "bench", "evaluate_peer.py"), join(at, "pred"), join(at, "gt"), join(at, "python.json")];
  const env = (fair: boolean) => {
    const e: NodeJS.ProcessEnv = { ...process.env };
    if (fair) e.GLIBC_TUNABLES = FAIR_GLIBC_TUNABLES;
    else delete e.GLIBC_TUNABLES;
    return e;
  };
  const proc = (argv: string[], fair = false) => () => seconds(() => {
    const r = spawnSync(argv[0], argv.slice(1), { env: env(fair), stdio: ["ignore", "ignore", "pipe"] });
    if (r.status !== 0) throw new Error(`${argv.slice(0, 3).join(" ")} failed (${r.status}): ${r.stderr.toString().slice(-2000)}`);
  });
  console.log(`  whole processes on ${count} cases of 64³: warm-up, then ${reps} interleaved repetitions`);
  const { times, load: l } = await interleave([
    { label: "lsmseg", rep: proc(lsmseg()) }, { label: "lsmseg_1worker", rep: proc(lsmseg("--workers", "1")) },
    { label: "python", rep: proc(python) }, { label: "python_fair", rep: proc(python, true) },
  ], reps);
  const used = (JSON.parse(readFileSync(out, "utf8")) as MetricsJson).workers;
  const ratio = (a: string, b: string, key: "min" | "median") => round(times[a][key] / times[b][key], 3);
  const fmt = (k: string) => `${k} ${times[k].min.toFixed(2)} / ${times[k].median.toFixed(2)} s`;
  console.log(`  whole processes (min / median): ${["lsmseg", "lsmseg_1worker", "python", "python_fair"].map(fmt).join(", ")}; lsmseg's default: ${used} workers`);
  const r = { ratio: ratio("lsmseg", "python_fair", "min"), ratio_median: ratio("lsmseg", "python_fair", "median"), ratio_shipped: ratio("lsmseg", "python", "min") };
  console.log(`  whole-process ratio lsmseg/python: fair ${r.ratio} (minima) ${r.ratio_median} (medians); as shipped ${r.ratio_shipped}; load ${l.before[0]} → ${l.after[0]}`);
  return { cases: count, side: 64, default_workers: used, ...times, ...r, load: l };
}
